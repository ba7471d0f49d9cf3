"""The timeline over real HTTP with a fake clock: plans across DST changes, each milestone
posted at its instant (not a second before), actions published, health gate and ramp button,
heads-up, the loop waking by itself, and a failed post retried without doubling."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

from bot.health import HealthFinding
from tests.timeline_helpers import milestone_posts, utc

pytest_plugins = ["tests.fixtures_timeline"]

AUTUMN = [  # T-0 2026-10-25 15:00 Europe/Berlin = 14:00 UTC (CET, the clocks went back at 03:00 CEST)
    ("T-24h", "2026-10-24T14:00:00+00:00"),  # 16:00 CEST: 24 elapsed hours, not "same wall time"
    ("T-12h", "2026-10-25T02:00:00+00:00"),  # 03:00 CET, just after the change
    ("heads-up", "2026-10-25T13:50:00+00:00"),
    ("T-1h", "2026-10-25T13:00:00+00:00"),
    ("T-0", "2026-10-25T14:00:00+00:00"),
    ("T+1h", "2026-10-25T15:00:00+00:00"),
    ("T+2h", "2026-10-25T16:00:00+00:00"),
    ("T+24h", "2026-10-26T14:00:00+00:00"),
]


def _order(points):
    return sorted(points, key=lambda p: utc(p[1]))


async def _walk(bot, clock, points, captured):
    """Each milestone: nothing a second before its instant, exactly it at its instant."""
    service = bot.services.timeline
    for label, due in _order(points):
        before = len(milestone_posts(bot.slack))
        clock.set(utc(due) - timedelta(seconds=1))
        assert await service.tick() == 0, f"{label} must not fire before {due}"
        assert len(milestone_posts(bot.slack)) == before
        clock.set(utc(due))
        assert await service.tick() == 1, f"{label} must fire at {due}"
        await bot.services.idle()
        posts = milestone_posts(bot.slack)
        assert len(posts) == before + 1
        assert len(milestone_posts(bot.slack, label)) == 1, f"{label} posted once"
        assert "late" not in posts[-1].text
    return captured


async def test_autumn_dst_plan_posts_each_milestone_at_its_instant(timeline_bot, clock):
    clock.set(utc("2026-10-23T12:00:00+00:00"))
    bot = await timeline_bot(heads_up_minutes=10)
    actions, milestones = [], []

    async def on_action(p):
        actions.append(p)

    async def on_milestone(p):
        milestones.append(p)

    bot.services.events.subscribe("timeline.action", on_action)
    bot.services.events.subscribe("timeline.milestone", on_milestone)

    async def gate(launch_id):
        return [HealthFinding("bounce rate", True, "0.4% within 5%")]

    bot.services.health.register("test gate", gate)

    answer = await bot.command("/cio golive 2026-10-25 15:00 Europe/Berlin")
    assert "Planned" in answer.text and "8 milestones" in answer.text
    (plan,) = [m for m in bot.slack.messages if m.text.startswith("Go-live plan")]
    body = json.dumps(plan.blocks)
    # each reader sees their own local time; the fallback is the plan zone's wall time, DST-correct
    assert f"<!date^{int(utc('2026-10-25T14:00:00+00:00').timestamp())}^" in body
    assert "Sat 2026-10-24 16:00 CEST" in body and "Sun 2026-10-25 15:00 CET" in body
    assert "Sun 2026-10-25 03:00 CET" in body  # T-12h, right after the clocks went back

    await _walk(bot, clock, AUTUMN, actions)
    assert [a["action"] for a in actions] == ["readiness_check:staging", "smoke_test", "review"]
    first = actions[0]
    t24 = milestone_posts(bot.slack, "T-24h")[0]
    assert first["thread_ts"] == t24.ts and first["channel_id"] == "C0LAUNCH01"
    assert first["milestone"] == "t-24h" and isinstance(first["launch_id"], int)
    assert [m["milestone"] for m in milestones] == ["t-24h", "t-12h", "t-1h", "heads-up", "t0", "t+1h", "t+2h",
                                                    "t+24h"]
    # owners mentioned (default: the operators), the ramp offered with the gate's verdict
    assert "<@U0OPERATOR>" in t24.text
    t0 = milestone_posts(bot.slack, "T-0")[0]
    buttons = bot.buttons(t0)
    assert [(b["action_id"], b["value"]) for b in buttons] == [("traffic_ramp_request", "10")]
    assert "Health gate:* passes" in json.dumps(t0.blocks) and "bounce rate" in json.dumps(t0.blocks)
    assert [b["value"] for b in bot.buttons(milestone_posts(bot.slack, "T+2h")[0])] == ["100"]
    heads_up = milestone_posts(bot.slack, "heads-up")[0]
    assert "Go-live in 10 minutes" in heads_up.text
    timeline = (await bot.command("/cio timeline")).text
    assert timeline.count("done") == 8 and "planned" not in timeline


async def test_spring_dst_plan_and_a_failing_gate(timeline_bot, clock):
    clock.set(utc("2027-03-25T09:00:00+00:00"))
    bot = await timeline_bot()

    async def gate(launch_id):
        return [HealthFinding("open alerts", False, "1 open alert: bounce rate 7%")]

    bot.services.health.register("test gate", gate)
    answer = await bot.command("/cio golive 2027-03-28 12:00")  # CIO_TIMEZONE=Europe/Berlin: CEST
    assert "Planned" in answer.text
    plan = json.dumps([m for m in bot.slack.messages if m.text.startswith("Go-live plan")][0].blocks)
    assert "Sat 2027-03-27 11:00 CET" in plan and "Sun 2027-03-28 12:00 CEST" in plan
    points = [("T-24h", "2027-03-27T10:00:00+00:00"), ("T-12h", "2027-03-27T22:00:00+00:00"),
              ("T-1h", "2027-03-28T09:00:00+00:00"), ("T-0", "2027-03-28T10:00:00+00:00")]
    await _walk(bot, clock, points, [])
    t0 = milestone_posts(bot.slack, "T-0")[0]
    assert "Health gate:* *FAILS*" in json.dumps(t0.blocks) and "bounce rate 7%" in json.dumps(t0.blocks)
    assert "style" not in bot.buttons(t0)[0], "a failing gate does not make the ramp the primary button"


async def test_iso_and_relative_plans_and_a_repeated_command_changes_nothing(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    answer = await bot.command("/cio golive 2026-12-10T14:00Z")
    assert "Planned" in answer.text
    again = await bot.command("/cio golive 2026-12-10 15:00 Europe/Berlin")  # the same instant
    assert "already" in again.text and "nothing changed" in again.text
    assert len([m for m in bot.slack.messages if m.text.startswith("Go-live plan")]) == 1
    moved = await bot.command("/cio golive in 2d 3h UTC")
    assert "Moved T-0" in moved.text
    row = bot.store.timeline.for_channel("C0LAUNCH01")
    assert row["t0_ts"] == (utc("2026-12-01T12:00:00+00:00") + timedelta(days=2, hours=3)).timestamp()
    assert row["timezone"] == "UTC"
    assert bot.store.launches.current("C0LAUNCH01")["t0"] == row["t0"]


async def test_the_loop_wakes_on_time_by_itself(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    await bot.command("/cio golive in 26h")
    clock.set(utc("2026-12-01T14:00:00+00:00"))  # T-24h, no explicit tick: the scheduler loop posts it
    for _ in range(200):
        if milestone_posts(bot.slack):
            break
        await asyncio.sleep(0.01)
    assert [m.text.split(" ·")[0] for m in milestone_posts(bot.slack)] == ["T-24h"]


async def test_a_failed_post_is_retried_once_without_doubling(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    await bot.command("/cio golive in 25h")
    # a 5xx may come after Slack accepted the message: the post is not blindly retried
    bot.slack.fail("chat.postMessage", status=500)
    clock.set(utc("2026-12-01T13:00:00+00:00"))
    assert await bot.services.timeline.tick() == 0
    assert len(bot.slack.calls("chat.postMessage")) == 2, "the plan, then one attempt: no SDK retry"
    (row,) = [m for m in bot.store.timeline.milestones(1) if m["key"] == "t-24h"]
    assert row["state"] == "claimed" and row["message_ts"] is None and "500" in (row["last_error"] or "")
    bot.slack.fail("chat.postMessage", status=200, body={"ok": False, "error": "fatal_error"})
    clock.set(utc("2026-12-01T13:00:05+00:00"))
    assert await bot.services.timeline.tick() == 0
    (row,) = [m for m in bot.store.timeline.milestones(1) if m["key"] == "t-24h"]
    assert "fatal_error" in row["last_error"] and row["attempts"] == 2
    assert await bot.services.timeline.tick() == 0, "not before the backoff (10 s after the second failure)"
    clock.set(utc("2026-12-01T13:00:15+00:00"))
    assert await bot.services.timeline.tick() == 1
    assert await bot.services.timeline.tick() == 0
    assert len(milestone_posts(bot.slack, "T-24h")) == 1
    assert len(bot.slack.calls("conversations.history")) == 2, "each retry first looks for an earlier post"
    (row,) = [m for m in bot.store.timeline.milestones(1) if m["key"] == "t-24h"]
    assert row["state"] == "posted" and row["attempts"] == 3 and row["late_s"] == 15


async def test_status_shows_the_next_milestone(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    assert "No go-live planned" in (await bot.command("/cio status")).all_text()
    await bot.command("/cio golive 2026-12-10 15:00")
    status = (await bot.command("/cio status")).all_text()
    assert "Next: *T-24h* Final staging validation" in status and "in 8 d 2 h" in status


async def test_a_graceful_stop_before_the_post_hands_the_claim_back(timeline_bot, clock):
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    await bot.command("/cio golive in 25h")
    service = bot.services.timeline
    held = asyncio.Event()

    async def hold(m):
        held.set()
        await asyncio.Event().wait()

    service.after_claim = hold
    for loop in bot.runtime.loop_tasks:  # only this test's tick runs the scheduler
        loop.cancel()
    clock.set(utc("2026-12-01T13:00:00+00:00"))
    task = asyncio.create_task(service.tick())
    await asyncio.wait_for(held.wait(), 5)
    assert bot.store.timeline.milestones(1)[0]["state"] == "claimed"
    task.cancel()  # what Runtime.stop does to the scheduler loop
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert bot.store.timeline.milestones(1)[0]["state"] == "pending", "handed back, no lease to wait for"
    service.after_claim = None
    assert await service.tick() == 1
    assert len(milestone_posts(bot.slack, "T-24h")) == 1
