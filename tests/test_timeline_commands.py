"""``/cio golive`` refusals (each a sentence, nothing changed), permissions, cancel and re-plan
keeping the history, catch-up after downtime with late actions waiting for confirmation,
pause on rollback and resume, and CIO_CONFIG overrides."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.config import ConfigError, Settings
from bot.sandbox.harness import BotHarness
from bot.sandbox.world import SANDBOX_VIEWER
from bot.timeline_plan import TimelineConfig
from tests.timeline_helpers import OWNER_GROUP, milestone_posts, toml, utc

pytest_plugins = ["tests.fixtures_timeline"]

NOW = "2026-10-23T12:00:00+00:00"

REFUSALS = [
    ("2026-10-20 10:00 UTC", "in the past"),
    ("in 2h", "too close for the plan: its first milestone, T-24h (Final staging validation)"),
    ("2026-10-24 11:00 Europe/Berlin", "too close for the plan"),
    ("2026-10-25 02:30 Europe/Berlin", "happens twice in Europe/Berlin"),
    ("2027-03-28 02:30 Europe/Berlin", "does not exist in Europe/Berlin"),
    ("2026-12-10 15:00 Mars/Olympus_Mons", "`Mars/Olympus_Mons` is not a time zone I know"),
    ("2026-12-10 15:00 ../etc/passwd", "is not a time zone I know"),
    ("next tuesday-ish", "I could not read `next tuesday-ish` as a go-live time"),
    ("in soon", "I could not read"),
    ("2026-13-40 10:00", "is not a real date and time"),
    ("2026-12-10", "has no time of day"),
    ("2026-12-10T25:00", "I could not read"),
    ("in 500d", "more than a year away"),
]


@pytest.mark.parametrize(("when", "sentence"), REFUSALS)
async def test_bad_when_is_refused_with_a_sentence_and_changes_nothing(timeline_bot, clock, when, sentence):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    answer = await bot.command(f"/cio golive {when}")
    assert sentence in answer.text, answer.text
    assert answer.text.count("\n") <= 1 and len(answer.text) < 400
    assert bot.store.query("SELECT * FROM timelines") == []
    assert bot.store.query("SELECT * FROM timeline_milestones") == []
    assert bot.slack.channel_messages() == []
    assert bot.store.audit.recent(1)[0]["outcome"] == "rejected"


async def test_a_bad_replan_leaves_the_plan_as_it_was(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    await bot.command("/cio golive 2026-12-10 15:00")
    before = bot.store.query("SELECT * FROM timeline_milestones ORDER BY id")
    posts = len(bot.slack.channel_messages())
    for when, sentence in [("in 3h", "too close for the plan"), ("2026-10-25 02:30", "happens twice"),
                           ("2026-12-10 15:00 Nowhere/City", "not a time zone")]:
        answer = await bot.command(f"/cio golive {when}")
        assert sentence in answer.text
    assert bot.store.query("SELECT * FROM timeline_milestones ORDER BY id") == before
    assert len(bot.slack.channel_messages()) == posts


async def test_only_operators_plan_anyone_reads(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    for text in ("/cio golive in 26h", "/cio golive cancel", "/cio golive resume"):
        answer = await bot.command(text, user=SANDBOX_VIEWER)
        assert "Only launch operators" in answer.text
    assert bot.store.query("SELECT * FROM timelines") == []
    assert "No go-live is planned" in (await bot.command("/cio timeline", user=SANDBOX_VIEWER)).text
    assert "Say when T-0 is" in (await bot.command("/cio golive")).text
    assert "takes nothing after it" in (await bot.command("/cio golive cancel now")).text
    assert "no go-live planned here to cancel" in (await bot.command("/cio golive cancel")).text
    assert "no go-live planned here" in (await bot.command("/cio golive resume")).text


async def test_cancel_and_replan_keep_the_history(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    service = bot.services.timeline
    await bot.command("/cio golive 2026-10-25 15:00")
    clock.set(utc("2026-10-24T14:00:00+00:00"))
    assert await service.tick() == 1  # T-24h done
    moved = await bot.command("/cio golive 2026-10-26 15:00")
    assert "6 pending milestones moved, 1 kept" in moved.text
    rows = {m["key"]: m for m in bot.store.timeline.milestones(1)}
    assert rows["t-24h"]["state"] == "posted"
    assert rows["t-24h"]["due_at"] == "2026-10-24T14:00:00+00:00", "a done milestone keeps its time"
    assert rows["t-12h"]["due_at"] == "2026-10-26T02:00:00+00:00"
    assert "Go-live plan moved" in bot.slack.channel_messages()[-1].text or any(
        "Go-live plan moved" in json.dumps(m.blocks) for m in bot.slack.channel_messages())
    clock.set(utc("2026-10-25T02:00:00+00:00"))  # the old T-12h: nothing fires
    assert await service.tick() == 0
    clock.set(utc("2026-10-26T02:00:00+00:00"))
    assert await service.tick() == 1
    cancelled = await bot.command("/cio golive cancel")
    assert "5 pending milestones will not fire" in cancelled.text
    assert ":x:" in bot.slack.channel_messages()[-1].text
    clock.set(utc("2026-10-26T14:00:00+00:00"))
    assert await service.tick() == 0, "cancelled milestones never fire"
    view = (await bot.command("/cio timeline", user=SANDBOX_VIEWER)).text
    assert "timeline :x: cancelled" in view.replace("*", "")
    assert view.count("_done_") == 2 and view.count("_cancelled_") == 5
    again = await bot.command("/cio golive 2026-10-30 15:00")
    assert "Planned" in again.text
    view = (await bot.command("/cio timeline")).all_text()
    assert "Earlier plans: 5 cancelled, 2 posted." in view
    for word in ("planned T-0 2026-10-25 15:00 CET", "moved T-0 from 2026-10-25 15:00 CET to 2026-10-26 15:00 CET",
                 "cancelled the go-live planned for 2026-10-26 15:00 CET", "planned T-0 2026-10-30 15:00 CET"):
        assert word in view
    assert len(bot.store.timeline.milestones(1)) == 14


async def test_catch_up_after_downtime_late_actions_wait_for_an_operator(tmp_path, sandbox, timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    await bot.command("/cio golive 2026-10-25 15:00")
    await bot.stop()
    # the bot is down from before T-24h until 40 min after T-12h (02:40Z)
    clock.set(utc("2026-10-25T02:40:00+00:00"))
    actions = []
    bot = await BotHarness.start(tmp_path / "bot.db", sandbox=sandbox, clock=clock,
                                 env={"CIO_CONFIG": str(tmp_path / "cio-bot.db.toml"),
                                      "CIO_OPERATORS": "U0OPERATOR", "CIO_TIMEZONE": "Europe/Berlin"})
    try:
        async def on_action(p):
            actions.append(p)

        bot.services.events.subscribe("timeline.action", on_action)
        assert await bot.services.timeline.tick() == 2
        await bot.services.idle()
        t24, t12 = milestone_posts(bot.slack, "T-24h")[0], milestone_posts(bot.slack, "T-12h")[0]
        assert bot.slack.messages.index(t24) < bot.slack.messages.index(t12), "caught up in order"
        assert "posted 12 h 40 min late" in t24.text and "posted 40 min late" in t12.text
        assert actions == [], "actions more than the grace period late are not run by themselves"
        assert "Not run automatically" in json.dumps(t12.blocks)
        assert "run or skip" in (await bot.command("/cio status")).all_text()
        refused = await bot.click(t12, "timeline_run_late", user=SANDBOX_VIEWER)
        assert "Only launch operators" in refused.text and actions == []
        ran = await bot.click(t12, "timeline_run_late")
        assert "Running T-12h" in ran.text
        await bot.services.idle()
        assert [(a["action"], a["thread_ts"]) for a in actions] == [("smoke_test", t12.ts)]
        assert "Run on confirmation by <@U0OPERATOR>" in json.dumps(bot.slack.find("C0LAUNCH01", t12.ts).blocks)
        twice = await bot.press("timeline_run_late", str(bot.store.timeline.milestones(1)[1]["id"]))
        assert "already answered" in twice.text and len(actions) == 1
        skipped = await bot.click(t24, "timeline_skip")
        assert "Skipped T-24h" in skipped.text and len(actions) == 1
        view = (await bot.command("/cio timeline")).text
        assert "T-24h" in view and "_skipped_ by <@U0OPERATOR>" in view
        assert "_late_ (posted 40 min late), run on confirmation by <@U0OPERATOR>" in view
        # a milestone a little late (within the grace period) still runs by itself
        clock.set(utc("2026-10-25T13:05:00+00:00"))
        assert await bot.services.timeline.tick() == 1
        assert "posted 5 min late" in milestone_posts(bot.slack, "T-1h")[0].text
    finally:
        await bot.stop()


async def test_rollback_pauses_the_timeline_and_resume_catches_up(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    service = bot.services.timeline
    await bot.command("/cio golive 2026-10-25 15:00")
    launch_id = bot.store.launches.current("C0LAUNCH01")["id"]
    await bot.services.events.publish("traffic.rolled_back", {"launch_id": launch_id, "actor": "U0OPERATOR",
                                                              "reason": "bounces <!channel>",
                                                              "channel_id": "C0LAUNCH01"})
    # (the alerts domain also answers traffic.rolled_back, paging tier 1: pick the pause notice)
    def pause_notices() -> list[str]:
        return [m.text for m in bot.slack.channel_messages() if "pending milestone(s) will not fire" in m.text]

    [paused] = pause_notices()
    assert "(bounces &lt;!channel&gt;)" in paused, "a reason is shown as text, never a ping"
    assert "paused" in paused and "7 pending milestone(s) will not fire" in paused and "/cio golive resume" in paused
    await bot.services.events.publish("traffic.rolled_back", {"launch_id": launch_id, "actor": "U0OPERATOR",
                                                              "reason": "again", "channel_id": "C0LAUNCH01"})
    assert pause_notices() == [paused], "a second rollback says nothing twice"
    clock.set(utc("2026-10-24T14:30:00+00:00"))
    assert await service.tick() == 0
    assert milestone_posts(bot.slack) == []
    assert "on hold" in (await bot.command("/cio timeline")).text
    assert "paused after a rollback: bounces &lt;!channel&gt;" in (await bot.command("/cio status")).all_text()
    resumed = await bot.command("/cio golive resume")
    assert "1 missed milestone" in resumed.text
    assert any("came due during the pause (T-24h)" in m.text for m in bot.slack.channel_messages())
    await service.tick()  # the resumed loop may have posted it already: once either way
    assert len(milestone_posts(bot.slack, "T-24h")) == 1
    post = milestone_posts(bot.slack, "T-24h")[0]
    assert "posted 30 min late" in post.text and "Not run automatically" in json.dumps(post.blocks)
    assert "not paused" in (await bot.command("/cio golive resume")).text


async def test_config_overrides_milestones(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot(grace_minutes=60, milestones=[
        {"key": "t-24h", "offset": "-36h", "name": "Staging sign-off", "owners": [OWNER_GROUP, "U0QA"]},
        {"key": "t-12h", "enabled": False},
        {"key": "t+30m", "offset": "+30m", "name": "Check the dashboards", "action": "dashboards:prod"},
        {"key": "t+1h", "ramp_to": 25, "name": "Verify and go to 25%"},
    ])
    await bot.command("/cio golive 2026-10-26 15:00")
    rows = bot.store.timeline.milestones(1)
    assert [m["label"] for m in rows] == ["T-36h", "T-1h", "T-0", "T+30m", "T+1h", "T+2h", "T+24h"]
    clock.set(utc("2026-10-25T03:00:00+00:00"))
    await bot.services.timeline.tick()
    post = milestone_posts(bot.slack, "T-36h")[0]
    assert f"<!subteam^{OWNER_GROUP}> <@U0QA>" in post.text and "Staging sign-off" in post.text
    clock.set(utc("2026-10-26T14:30:00+00:00"))
    await bot.services.timeline.tick()
    assert [b["value"] for b in bot.buttons(milestone_posts(bot.slack, "T-0")[0])] == ["10"]
    assert "runs `dashboards:prod`" in json.dumps(milestone_posts(bot.slack, "T+30m")[0].blocks)


@pytest.mark.parametrize(("timeline", "milestones", "sentence"), [
    ({"grace_minutes": -1}, None, "grace_minutes in CIO_CONFIG must be a number"),
    ({}, [{"key": "t-24h", "offset": "yesterday"}], "has offset 'yesterday'"),
    ({}, [{"key": "t-1h", "owners": ["alice"]}], "owners must be Slack user IDs"),
    ({}, [{"key": "new", "name": "x"}], "needs an offset and a name"),
    ({}, [{"key": "t0", "ramp_to": 150}], "ramp_to must be a whole percentage"),
    ({}, [{"key": "t-12h", "offset": "-24h"}], "must each have a different offset"),
    ({"heads_up_minutes": 60}, None, "falls on the same instant"),
    ({}, [{"key": "t0", "action": "Run Stuff!"}], "action must be a name"),
    ({"claim_lease_seconds": 30, "post_timeout_seconds": 20}, None, "at least twice post_timeout_seconds"),
    ({"action_lease_seconds": 10}, None, "action_lease_seconds in CIO_CONFIG must be a number from 60"),
    ({"grace_minutez": 5}, None, "timeline] in CIO_CONFIG has unknown key(s) grace_minutez; known keys are"),
    ({}, [{"key": "t0", "ramp": 10}], "entry 1 (t0) in CIO_CONFIG has unknown key(s) ramp; known keys are key,"),
])
def test_bad_timeline_config_stops_start_up_with_a_sentence(tmp_path, timeline, milestones, sentence):
    path = tmp_path / "cio.toml"
    path.write_text(toml(timeline, milestones))
    settings = Settings.from_env({"CIO_CONFIG": str(path)})
    with pytest.raises(ConfigError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        TimelineConfig.from_section(settings.section("timeline"), ())


async def test_heads_up_skipped_when_it_would_come_after_t0(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot(heads_up_minutes=10)
    await bot.command("/cio golive 2026-10-25 15:00")
    clock.set(utc("2026-10-25T14:00:00+00:00") + timedelta(minutes=5))  # down through heads-up and T-0
    await bot.services.timeline.tick()
    assert milestone_posts(bot.slack, "heads-up") == []
    rows = {m["key"]: m for m in bot.store.timeline.milestones(1)}
    assert rows["heads-up"]["state"] == "skipped" and "T-0 had passed" in rows["heads-up"]["note"]
    assert rows["t0"]["state"] == "posted"


async def test_replan_while_paused_stays_paused_and_late_actions_wait_for_resume(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    await bot.command("/cio golive 2026-10-25 15:00")
    clock.set(utc("2026-10-24T15:00:00+00:00"))  # T-24h an hour late: waits for confirmation
    await bot.services.timeline.tick()
    t24 = milestone_posts(bot.slack, "T-24h")[0]
    launch_id = bot.store.launches.current("C0LAUNCH01")["id"]
    await bot.services.events.publish("traffic.rolled_back", {"launch_id": launch_id, "actor": "U0OPERATOR",
                                                              "reason": "", "channel_id": "C0LAUNCH01"})
    refused = await bot.click(t24, "timeline_run_late")
    assert "The timeline is paused, so T-24h was not run; resume it first" in refused.text
    moved = await bot.command("/cio golive 2026-10-27 15:00")
    assert "Moved T-0" in moved.text
    plan = bot.slack.channel_messages()[-1]
    assert "paused" in json.dumps(plan.blocks) and "/cio golive resume" in json.dumps(plan.blocks)
    assert bot.store.timeline.for_channel("C0LAUNCH01")["state"] == "paused"
    await bot.command("/cio golive resume")
    ran = await bot.click(t24, "timeline_run_late")
    assert "Running T-24h" in ran.text


async def test_plan_kept_when_slack_cannot_take_the_announcement(timeline_bot, clock):
    clock.set(utc(NOW))
    bot = await timeline_bot()
    bot.slack.fail("chat.postMessage", status=200, body={"ok": False, "error": "not_in_channel"}, times=None)
    answer = await bot.command("/cio golive 2026-10-30 15:00")
    assert "I could not post the plan in <#C0LAUNCH01>" in answer.text
    bot.slack.clear_faults()
    assert "T-24h" in (await bot.command("/cio timeline")).text


async def test_an_action_lease_shorter_than_a_check_run_stops_start_up(tmp_path, sandbox):
    """A lease at or under the checks' deadline would take a run still going for a dead one."""
    path = tmp_path / "cio.toml"
    path.write_text(toml({"action_lease_seconds": 300}) + "[checks]\ndeadline_seconds = 600\n")
    with pytest.raises(ConfigError, match=r"action_lease_seconds in CIO_CONFIG must be longer than \[checks\] "
                                          r"deadline_seconds \(600 s\), got 300"):
        await BotHarness.start(tmp_path / "bot.db", env={"CIO_CONFIG": str(path)}, sandbox=sandbox)
