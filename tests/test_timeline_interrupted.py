"""An action another process is running is left alone while its lease runs, and a process never
takes its own running action for interrupted. In-process with the fake clock: a second
TimelineService on the same database plays the second process (its own worker id); the
SIGKILL cases run real processes in test_timeline_kill.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.timeline import TimelineService
from tests.timeline_helpers import milestone_posts, utc

pytest_plugins = ["tests.fixtures_timeline"]

T24 = utc("2026-12-02T12:00:00+00:00")


async def test_an_action_within_its_lease_is_left_alone(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot(action_lease_seconds=600)
    assert "Planned" in (await bot.command("/cio golive 2026-12-03T12:00Z")).text
    running = bot.services.timeline
    assert running.config.action_lease_s == 600
    other = TimelineService(bot.services, running.config)
    acting, release = asyncio.Event(), asyncio.Event()
    actions = []

    async def hold(m):
        acting.set()
        await release.wait()  # the staging checks take their time

    async def on_action(p):
        actions.append(p)

    running.in_action = hold
    bot.services.events.subscribe("timeline.action", on_action)
    clock.set(T24)
    assert await running.tick() == 1
    await asyncio.wait_for(acting.wait(), 5)

    def row():
        return bot.store.timeline.milestones(1)[0]

    assert row()["action_state"] == "started" and row()["action_worker"] == running.worker_id
    assert row()["action_started_ts"] == T24.timestamp()
    clock.set(T24 + timedelta(seconds=599))
    assert await other.tick() == 0
    assert row()["state"] == "posted" and row()["action_state"] == "started", "another process waits out the lease"
    clock.set(T24 + timedelta(hours=1))
    assert await running.tick() == 0
    assert row()["action_state"] == "started", "a process never takes its own running action for interrupted"
    release.set()
    await bot.services.idle(timeout=30)
    assert [a["milestone"] for a in actions] == ["t-24h"]
    assert row()["action_state"] == "done"
    assert await other.tick() == 0
    assert row()["state"] == "posted" and row()["action_state"] == "done" and row()["action_interrupted_ts"] is None
    assert [m for m in bot.slack.messages if "restart" in m.text] == []
    assert len(milestone_posts(bot.slack, "T-24h")) == 1


async def test_the_action_is_done_only_once_its_checks_have_finished(timeline_bot, clock):
    """``done`` means the staging checks ran to the end: a process killed while they run leaves the
    action ``started``, which is what the restart notice is built on."""
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    await bot.command("/cio golive 2026-12-03T12:00Z")
    seen = []

    async def on_completed(p):
        seen.append((p["environment"], p["source"], bot.store.timeline.milestones(1)[0]["action_state"]))

    bot.services.events.subscribe("checks.completed", on_completed)
    clock.set(T24)
    assert await bot.services.timeline.tick() == 1
    await bot.services.idle(timeout=30)
    assert seen == [("staging", "timeline", "started")]
    assert bot.store.timeline.milestones(1)[0]["action_state"] == "done"
