"""An action another process is running is left alone while its lease runs, and a process never
takes its own running action for interrupted. In-process with the fake clock: a second
TimelineService on the same database plays the second process (its own worker id); the
SIGKILL cases run real processes in test_timeline_kill.py."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

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


#: [timeline] action_lease_seconds by default
LEASE = timedelta(seconds=300)


async def _killed_mid_action(timeline_bot, clock):
    """T-24h posted and its action started, then the action dies half-way without finishing (as
    when its process is SIGKILLed: the row says ``started`` by that process); a second
    TimelineService on the same database plays the process that finds it.
    Returns (bot, the other service, the milestone's post)."""
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    assert "Planned" in (await bot.command("/cio golive 2026-12-03T12:00Z")).text
    running = bot.services.timeline
    acting = asyncio.Event()

    async def hold(m):
        acting.set()
        await asyncio.Event().wait()  # until cancelled below

    running.in_action = hold
    clock.set(T24)
    assert await running.tick() == 1
    await asyncio.wait_for(acting.wait(), 5)
    (task,) = [t for t in bot.services.tasks if t.get_name().startswith("timeline-action-")]
    task.cancel()
    assert await bot.services.idle(timeout=5)
    row = bot.store.timeline.milestones(1)[0]
    assert row["action_state"] == "started" and row["action_worker"] == running.worker_id
    (post,) = milestone_posts(bot.slack, "T-24h")
    return bot, TimelineService(bot.services, running.config), post


def _thread(bot, post) -> list:
    return [m for m in bot.slack.messages if m.thread_ts == post.ts]


def _buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b.get("elements", [])]


@pytest.mark.parametrize("after", ["cancelled", "replaced by a newer plan"])
async def test_an_interrupted_action_of_a_plan_that_no_longer_runs_is_recorded_not_offered(timeline_bot, clock,
                                                                                            after):
    bot, other, post = await _killed_mid_action(timeline_bot, clock)
    clock.set(T24 + timedelta(minutes=1))
    assert "Cancelled" in (await bot.command("/cio golive cancel")).text
    if after != "cancelled":
        assert "Planned" in (await bot.command("/cio golive 2026-12-10T12:00Z")).text
    posted = list(bot.slack.messages)
    clock.set(T24 + LEASE)
    assert await other.tick() == 0
    assert await other.tick() == 0
    assert bot.slack.messages == posted, "no notice, no other post"
    assert _thread(bot, post) == [] and post.history == [], "the milestone's message is left as it was"
    assert not any(_buttons(m) for m in bot.slack.messages)
    row = bot.store.timeline.milestones(1, 1)[0]
    assert row["state"] == "posted" and row["action_state"] == "orphaned"
    assert row["action_interrupted_ts"] == (T24 + LEASE).timestamp() and row["action_notice_ts"] is None
    (note,) = [h["detail"] for h in bot.store.timeline.history(1) if h["kind"] == "interrupted"]
    assert f"running T-24h (readiness_check:staging) of a plan since {after}" in note
    assert "not offered to run again" in note
    (audit,) = [a for a in bot.store.audit.recent(50) if a["outcome"].startswith("action interrupted")]
    assert audit["outcome"] == f"action interrupted by a restart; its plan was {after}, so it is not offered to anyone"
    assert json.loads(audit["detail"])["plan_no"] == 1
    if after == "cancelled":
        view = (await bot.command("/cio timeline")).all_text()
        assert "its plan no longer runs, so it was not offered again" in view
    clock.set(T24 + 3 * LEASE)
    assert await other.tick() == 0
    assert _thread(bot, post) == [] and post.history == [], "nor later"
    assert bot.store.timeline.milestones(1, 1)[0]["action_state"] == "orphaned"


async def test_a_notice_not_yet_posted_when_the_plan_is_cancelled_is_never_posted(timeline_bot, clock):
    bot, other, post = await _killed_mid_action(timeline_bot, clock)
    bot.slack.fail("chat.postMessage", status=200, body={"ok": False, "error": "fatal_error"})
    clock.set(T24 + LEASE)
    assert await other.tick() == 0
    row = bot.store.timeline.milestones(1)[0]
    assert row["state"] == "awaiting" and row["action_notice_ts"] is None, "taken; Slack refused the notice"
    assert "Cancelled" in (await bot.command("/cio golive cancel")).text
    clock.set(T24 + LEASE + timedelta(minutes=5))  # the notice's lease ran out long ago
    assert await other.tick() == 0
    assert _thread(bot, post) == [] and post.history == []
    row = bot.store.timeline.milestones(1)[0]
    assert row["state"] == "posted" and row["action_state"] == "orphaned"
    assert "of a plan since cancelled" in bot.store.timeline.history(1)[-1]["detail"]


async def test_the_milestone_message_says_the_action_was_interrupted_then_who_answered(timeline_bot, clock):
    bot, other, post = await _killed_mid_action(timeline_bot, clock)
    clock.set(T24 + LEASE)
    assert await other.tick() == 0  # no milestone is posted; the notice is
    (notice,) = _thread(bot, post)
    assert [b["action_id"] for b in _buttons(notice)] == ["timeline_run_late", "timeline_skip"]
    assert post.text == ("T-24h · Final staging validation: its action was interrupted by a restart; waiting for "
                         "an operator to run it again or skip it.")
    status = json.dumps(post.blocks, ensure_ascii=False)
    assert ":alarm_clock: *T-24h · Final staging validation*" in status
    assert ":warning: *Interrupted:* the bot restarted while running this (runs the readiness checks against " \
           "staging); it is not known whether it finished" in status
    assert "the buttons are in this thread" in status and "Results follow" not in status
    assert _buttons(post) == [] and "Posted" not in status, "posted on time: no lateness line"
    assert len(post.history) == 1
    assert await other.tick() == 0 and len(post.history) == 1, "updated once"

    clock.set(T24 + LEASE + timedelta(minutes=2))
    assert "Skipped T-24h" in (await bot.click(notice, "timeline_skip")).text
    assert post.text == ("T-24h · Final staging validation: interrupted by a restart; skipped by <@U0OPERATOR>")
    status = json.dumps(post.blocks, ensure_ascii=False)
    assert ":warning: Interrupted by a restart. Skipped by <@U0OPERATOR>" in status
    assert "runs the readiness checks against staging was not run again." in status
    assert "waits for a launch operator" not in status and _buttons(post) == []
    assert "Skipped by <@U0OPERATOR>" in json.dumps(bot.slack.find("C0LAUNCH01", notice.ts).blocks)


async def test_a_milestone_message_slack_does_not_update_still_gets_its_notice(timeline_bot, clock, caplog):
    bot, other, post = await _killed_mid_action(timeline_bot, clock)
    bot.slack.fail("chat.update", status=200, body={"ok": False, "error": "cant_update_message"})
    clock.set(T24 + LEASE)
    with caplog.at_level(logging.WARNING, logger="bot.timeline"):
        assert await other.tick() == 0  # no milestone is posted; the notice is
    (notice,) = _thread(bot, post)
    assert bot.store.timeline.milestones(1)[0]["action_notice_ts"] == notice.ts
    assert post.history == [] and "Now: runs the readiness checks" in json.dumps(post.blocks, ensure_ascii=False)
    assert "could not update T-24h's message with its interrupted action: " in caplog.text
    assert "cant_update_message" in caplog.text
    assert await other.tick() == 0 and len(_thread(bot, post)) == 1, "the notice is not posted again"


async def test_a_notice_whose_answer_was_lost_is_found_in_the_thread_not_posted_twice(timeline_bot, clock):
    """Slack took the notice but its answer never came back (a timeout): the next try reads the
    milestone's thread, finds the notice by its metadata and records it instead of posting again."""
    bot, other, post = await _killed_mid_action(timeline_bot, clock)
    other = TimelineService(bot.services, replace(other.config, post_timeout_s=0.3))
    bot.slack.answer_delays["chat.postMessage"] = 1.0
    clock.set(T24 + LEASE)
    assert await other.tick() == 0
    assert len(_thread(bot, post)) == 1, "Slack has the notice"
    assert bot.store.timeline.milestones(1)[0]["action_notice_ts"] is None, "the bot never heard back"
    bot.slack.answer_delays.clear()
    clock.set(T24 + LEASE + timedelta(seconds=other.config.lease_s + 1))  # the notice's lease ran out
    assert await other.tick() == 0
    (notice,) = _thread(bot, post)
    assert bot.store.timeline.milestones(1)[0]["action_notice_ts"] == notice.ts
    assert await other.tick() == 0 and len(_thread(bot, post)) == 1
