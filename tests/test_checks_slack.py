"""/cio check in Slack: one message updated in place, the verdict, sign-off buttons,
/cio status, and the timeline's actions."""

from __future__ import annotations

import asyncio
import json

from bot.readiness_blocks import ReportView, render
from checks.base import CheckResult, Status
from tests import fixtures_checks as fx
from tests.process_helpers import OTHER_HOST_OWNER, dead_owner

kit = fx.kit  # fixture


def _updates(slack) -> int:
    return len(slack.calls("/api/chat.update"))


async def _ready_bot(start_bot, tmp_path, sandbox, **env):
    return await start_bot(env={**fx.ready_env(tmp_path, sandbox), **env})


async def test_check_posts_one_message_updated_progressively_to_a_verdict(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    sandbox.customerio.latency = 0.1
    answer = await bot.command("/cio check")
    assert answer.status == 200 and answer.ack is None  # acknowledged at once, nothing to say yet
    messages = sandbox.slack.channel_messages(bot.channel)
    assert len(messages) == 1
    message = messages[0]
    first = message.history[0]
    assert first["text"].startswith(f"Running {bot.services.readiness.engine().planned} readiness checks")
    updates = _updates(sandbox.slack)
    assert updates >= 3  # progress, then the final report
    run = bot.store.checks.last_run()
    # at most one progress update per interval (0.05 s here), plus the final one
    assert updates <= run["wall_ms"] / 1000 / 0.05 + 2
    assert "NO-GO" in message.text  # sign-offs are pending
    text = json.dumps(message.blocks)
    assert "NO-GO: production is not ready for launch" in text
    assert text.index("Sign-off: Test sends reviewed") > 0
    assert len(message.blocks) <= 50
    assert run["verdict"] == "no-go" and run["actor"] == "U0OPERATOR" and run["source"] == "slack"
    assert run["message_ts"] == message.ts
    assert len(bot.store.checks.results(run["id"])) == run["planned"]


async def test_failures_come_first_with_their_fix(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    fx.confirm_all_signoffs(bot.store)
    sandbox.customerio_prod.region = "eu"
    await bot.command("/cio check credentials")
    message = sandbox.slack.channel_messages(bot.channel)[-1]
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    failure = next(i for i, s in enumerate(sections) if "credentials.region" in s)
    assert "*Fix:* Set CUSTOMERIO_REGION=eu" in sections[failure]
    assert failure == 1  # right after the counts
    assert "NO-GO" in message.text


async def test_go_when_everything_passes(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    fx.confirm_all_signoffs(bot.store)
    await bot.command("/cio check")
    message = sandbox.slack.channel_messages(bot.channel)[-1]
    assert message.text.startswith("Readiness GO (production)"), message.text
    assert "GO: production is ready for launch" in json.dumps(message.blocks)


async def test_unknown_category_and_bad_flag_get_one_sentence(bot):
    answer = await bot.command("/cio check credentails")
    assert "`credentails` is not a check category" in answer.text
    assert "credentials, integration, campaigns, deliverability, monitoring, testing, documentation, rollback" \
        in answer.text
    answer = await bot.command("/cio check --fast")
    assert "`--fast` is not an option" in answer.text
    answer = await bot.command("/cio check --env qa")
    assert "--env takes production or staging" in answer.text
    assert bot.sandbox.slack.channel_messages() == []


async def test_env_staging_runs_against_staging(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    await bot.command("/cio check credentials testing --env staging")
    run = bot.store.checks.last_run()
    assert run["environment"] == "staging" and run["categories"] == ["credentials", "testing"]
    assert any(c.startswith("cio-launchbot-smoke-test-staging-") for c in sandbox.customerio_staging.deleted)
    assert not sandbox.customerio_prod.deleted
    message = sandbox.slack.channel_messages(bot.channel)[-1]
    assert "(staging)" in message.text


async def test_signoff_round_trip_through_the_buttons(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    await bot.command("/cio check campaigns")
    message = sandbox.slack.channel_messages(bot.channel)[-1]
    confirm = [b for b in bot.buttons(message) if b["action_id"] == "checks.signoff.confirm"]
    assert [b["value"] for b in confirm] == ["campaigns.signoff.test_sends"]

    refused = await bot.click(message, "checks.signoff.confirm", user="U0VIEWER")
    assert "Only launch operators" in refused.text
    launch_id = bot.store.launches.current(bot.channel)["id"]  # begun by the check run
    assert bot.store.checks.signoffs(launch_id) == {}

    answer = await bot.click(message, "checks.signoff.confirm")
    assert "You confirmed the sign-off “Test sends reviewed”" in answer.text
    assert "The verdict is now GO" in answer.text
    row = bot.store.checks.signoffs(launch_id)["campaigns.signoff.test_sends"]
    assert row["state"] == "confirmed" and row["by_user"] == "U0OPERATOR" and row["at"] > 0
    assert "Confirmed by <@U0OPERATOR> <!date^" in json.dumps(message.blocks)
    assert message.text.startswith("Readiness GO")
    assert [b["action_id"] for b in bot.buttons(message)] == ["checks.signoff.revoke"]
    audit = [r for r in bot.store.audit.recent(10) if r["kind"] == "button"]
    assert audit[0]["action"] == "checks.signoff.confirm:campaigns.signoff.test_sends"
    assert audit[0]["outcome"] == "ok" and audit[1]["outcome"] == "refused"

    again = await bot.press("checks.signoff.confirm", "campaigns.signoff.test_sends", message_ts=message.ts)
    assert "already confirmed" in again.text

    revoked = await bot.click(message, "checks.signoff.revoke")
    assert "You revoked" in revoked.text and "NO-GO" in revoked.text
    assert bot.store.checks.signoffs(launch_id)["campaigns.signoff.test_sends"]["state"] == "revoked"
    assert "revoked by <@U0OPERATOR>" in json.dumps(message.blocks)
    assert [b["action_id"] for b in bot.buttons(message)] == ["checks.signoff.confirm"]
    history = bot.store.checks.signoff_history(launch_id, "campaigns.signoff.test_sends")
    assert [h["action"] for h in history] == ["confirmed", "revoked"]

    # the next run sees the stored state
    await bot.click(message, "checks.signoff.confirm")
    await bot.command("/cio check campaigns")
    latest = sandbox.slack.channel_messages(bot.channel)[-1]
    assert latest.ts != message.ts and latest.text.startswith("Readiness GO")


async def test_unknown_signoff_item_is_refused(bot):
    answer = await bot.press("checks.signoff.confirm", "campaigns.signoff.nonsense")
    assert "is not a sign-off item" in answer.text


async def test_status_shows_the_last_run(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    before = await bot.command("/cio status")
    assert "No readiness check has run yet" in before.all_text()
    sandbox.customerio_prod.region = "eu"
    await bot.command("/cio check credentials")
    after = (await bot.command("/cio status")).all_text()
    assert "NO-GO (production), run #1 by <@U0OPERATOR>" in after
    assert "`credentials.region`" in after and "Sign-offs:* 0/3 confirmed" in after


async def test_timeline_actions_run_staging_checks_and_the_smoke_test(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    thread = await bot.services.slack.post_message(bot.channel, "T-24h: readiness")
    await bot.services.events.publish("timeline.action", {
        "launch_id": None, "milestone": "T-24h", "action": "readiness_check:staging",
        "channel_id": bot.channel, "thread_ts": thread})
    await bot.services.idle(timeout=30)
    report = sandbox.slack.channel_messages(bot.channel)[-1]
    assert report.thread_ts == thread and "(staging)" in report.text
    run = bot.store.checks.last_run()
    assert run["environment"] == "staging" and run["source"] == "timeline" and run["categories"] == []

    await bot.services.events.publish("timeline.action", {
        "launch_id": None, "milestone": "T-12h", "action": "smoke_test", "channel_id": bot.channel,
        "thread_ts": None})
    await bot.services.idle(timeout=30)
    run = bot.store.checks.last_run()
    assert run["environment"] == "production" and run["categories"] == ["testing"]
    smoke = next(r for r in bot.store.checks.results(run["id"]) if r["id"] == "testing.smoke_test")
    assert smoke["status"] == "pass"
    assert sandbox.slack.channel_messages(bot.channel)[-1].thread_ts is None

    await bot.services.events.publish("timeline.action", {"action": "something_else", "channel_id": bot.channel})
    await bot.services.idle(timeout=30)
    assert bot.store.checks.last_run()["id"] == run["id"]


def test_report_stays_within_block_kit_limits_however_many_checks():
    results = [CheckResult(f"integration.c{n}", "integration", f"Check {n} " + "t" * 80, Status.FAIL,
                           "s" * 900, fix="f" * 900) for n in range(300)]
    results += [CheckResult(f"testing.w{n}", "testing", "warn", Status.WARN, "w" * 300, fix="x") for n in range(40)]
    results += [CheckResult(f"documentation.s{n}", "documentation", "skip", Status.SKIP, "k" * 200)
                for n in range(40)]
    text, blocks = render(ReportView("production", len(results), results, True, 7, "U1", 1234, 1764547200))
    dicts = [b.to_dict() for b in blocks]  # the models validate lengths
    assert len(dicts) <= 50
    for d in dicts:
        for t in [d.get("text", {}).get("text", "")] + [e.get("text", "") for e in d.get("elements", [])]:
            assert len(t) <= 3000
    assert "more failure(s)" in json.dumps(dicts)
    assert text.startswith("Readiness NO-GO")


async def test_check_in_a_channel_without_the_bot_says_how_to_fix_it(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    sandbox.slack.channels["C0OTHER001"] = {"id": "C0OTHER001", "name": "random", "is_member": False}
    answer = await bot.command("/cio check", channel="C0OTHER001")
    assert "I cannot post in this channel" in answer.text and "/invite" in answer.text
    assert bot.store.checks.last_run(finished=False) is None  # nothing was run


async def test_a_failed_final_update_posts_the_verdict_afresh(start_bot, tmp_path, sandbox):
    bot = await _ready_bot(start_bot, tmp_path, sandbox)
    sandbox.slack.fail("/api/chat.update", status=200, times=None, body={"ok": False, "error": "msg_too_long"})
    await bot.command("/cio check monitoring")
    messages = sandbox.slack.channel_messages(bot.channel)
    assert len(messages) == 2
    assert messages[-1].text.startswith("Readiness ")
    assert bot.store.checks.last_run()["message_ts"] == messages[-1].ts


async def test_a_run_cut_short_by_a_restart_is_marked_interrupted(start_bot, tmp_path, sandbox):
    env = fx.ready_env(tmp_path, sandbox)
    bot = await start_bot(env=env)
    ts = await bot.services.slack.post_message(bot.channel, "Running 38 readiness checks…")
    run_id = bot.store.checks.start_run(started_at=1764547200.0, environment="production", actor="U0OPERATOR",
                                        source="slack", categories=[], planned=38, channel_id=bot.channel)
    bot.store.checks.set_message(run_id, bot.channel, ts)
    await bot.stop()
    restarted = await start_bot(env=env, db_name="bot.db")
    for _ in range(100):
        if "interrupted" in sandbox.slack.find(bot.channel, ts).text:
            break
        await asyncio.sleep(0.02)
    message = sandbox.slack.find(bot.channel, ts)
    assert "did not finish: the bot restarted" in message.text and "No verdict" in message.text
    assert restarted.store.checks.get_run(run_id)["verdict"] == "interrupted"
    assert restarted.store.checks.last_run() is None  # an interrupted run is no verdict


async def test_a_restart_marks_only_the_runs_of_processes_that_are_gone(start_bot, tmp_path, sandbox, clock):
    """A run of a dead process on this host is marked at once; a run of a replica on another
    host (a rolling deploy) is left running until it is past any deadline a run can have."""
    bot = await start_bot(env=fx.ready_env(tmp_path, sandbox), clock=clock)
    checks = bot.store.checks
    now = clock.timestamp()

    def run(runner: str) -> int:
        return checks.start_run(started_at=now, environment="production", actor="U0OPERATOR", source="slack",
                                categories=[], planned=38, channel_id=bot.channel, runner=runner)

    dead, replica, ours = run(dead_owner()), run(OTHER_HOST_OWNER), run(bot.services.readiness.owner_id)
    await bot.services.readiness.interrupt_abandoned()
    assert [checks.get_run(i)["verdict"] for i in (dead, replica, ours)] == ["interrupted", "running", "running"]
    clock.advance(bot.services.readiness.config.deadline + 31)
    await bot.services.readiness.interrupt_abandoned()
    assert [checks.get_run(i)["verdict"] for i in (dead, replica, ours)] == ["interrupted", "interrupted", "running"]
