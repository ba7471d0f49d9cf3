"""The probe, auto-rollback, the rollback page, PagerDuty, Slack outages and configuration."""

from __future__ import annotations

import json

import pytest

from bot.alerts import AlertsConfig, fmt_value, percentile
from bot.config import ConfigError, Settings
from bot.sandbox.pagerduty import SANDBOX_ROUTING_KEY, FakePagerDuty
from tests.fixtures_alerts import (
    BASE_CONFIG,
    alert_messages,
    am_alert,
    am_payload,
    evaluate,
    post_am,
    send_metrics,
    thread,
    tick,
    wait_for,
    write_config,
)

PROBE_CONFIG = BASE_CONFIG + """
[alerts.thresholds.api_error_rate]
limit = "1%"
min_samples = 3
[alerts.thresholds.api_p99_latency]
limit = "300ms"
min_samples = 3
"""


async def probe_and_evaluate(bot, clock, rounds: int) -> None:
    svc = bot.services.alerts
    for _ in range(rounds):
        before = svc.probes
        await evaluate(bot, clock)  # the probe loop wakes on the same minute
        await wait_for(lambda before=before: svc.probes > before, what="a probe")


async def test_probe_failures_raise_the_api_error_rate_alert_and_recovery_resolves_it(start_bot, clock, tmp_path,
                                                                                      sandbox):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, PROBE_CONFIG)})
    sandbox.customerio.fail("/api/v1/accounts/region", status=503, times=None)
    await probe_and_evaluate(bot, clock, 6)
    rows = [r for r in bot.store.alerts.all_alerts() if r["metric"] == "api_error_rate"]
    assert len(rows) == 1 and rows[0]["value"] == 1.0
    samples = bot.store.query("SELECT * FROM probe_samples")
    assert samples and all(s["ok"] == 0 and s["status"] == 503 for s in samples)
    # one call per probe: the probe does not retry (a retried error would hide the error rate)
    assert len(sandbox.customerio.calls("/api/v1/accounts/region")) == len(samples)

    sandbox.customerio.clear_faults()
    await probe_and_evaluate(bot, clock, 9)
    assert [r["status"] for r in bot.store.alerts.all_alerts() if r["metric"] == "api_error_rate"] == ["resolved"]


async def test_probe_latency_gives_the_p99_alert(start_bot, clock, tmp_path, sandbox):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, PROBE_CONFIG)})
    sandbox.customerio.latency = 0.35
    await probe_and_evaluate(bot, clock, 6)
    [row] = [r for r in bot.store.alerts.all_alerts() if r["metric"] == "api_p99_latency"]
    assert row["value"] >= 0.35 and "p99 of" in row["detail"]
    [msg] = [m for m in alert_messages(bot) if "p99 latency" in m.text]
    assert "ms" in msg.text


def test_percentile_and_formatting():
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 99) == 100.0
    assert percentile([0.1] * 200 + [9.0], 99) == 0.1
    assert fmt_value(0.05, "ratio") == "5%" and fmt_value(0.0012, "ratio") == "0.12%"
    assert fmt_value(0.123, "seconds") == "123 ms" and fmt_value(5.5, "seconds") == "5.5 s"


AUTO_CONFIG = BASE_CONFIG.replace("resolve_after = 3", "resolve_after = 3\nauto_rollback = true")


async def test_critical_breach_during_a_ramp_requests_a_rollback_once(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, AUTO_CONFIG)})
    launch = bot.store.launches.ensure(bot.channel, "U0OPERATOR")
    requested: list[dict] = []

    async def on_request(payload):
        requested.append(payload)

    bot.services.events.subscribe("rollback.requested", on_request)
    await bot.services.events.publish("traffic.changed", {"launch_id": launch["id"], "from_pct": 0, "to_pct": 10,
                                                          "actor": "U0OPERATOR", "reason": "", "forced": False})
    await send_metrics(bot, sent=200, bounced=20)  # 10%: a warning, not critical (20%)
    for _ in range(3):
        await evaluate(bot, clock)
    assert len(alert_messages(bot)) == 1 and requested == []
    await send_metrics(bot, sent=100, bounced=80)  # 100/300 = 33%: critical
    await evaluate(bot, clock)
    await evaluate(bot, clock)
    assert len(requested) == 1
    payload = requested[0]
    assert payload["launch_id"] == launch["id"] and payload["actor"] == "alerts"
    assert payload["channel_id"] == bot.channel and "Bounce rate" in payload["reason"]
    assert "Auto-rollback" in json.dumps(alert_messages(bot)[0].blocks)


async def test_no_auto_rollback_when_not_ramping_or_disabled(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, AUTO_CONFIG)})
    requested: list[dict] = []

    async def on_request(payload):
        requested.append(payload)

    bot.services.events.subscribe("rollback.requested", on_request)
    await post_am(bot, am_payload("firing", [am_alert("firing", "crit1", severity="critical")]))
    await bot.services.idle(5)
    assert requested == [], "no ramp under way: nothing to roll back"
    launch = bot.store.launches.current(bot.channel)
    await bot.services.events.publish("traffic.changed", {"launch_id": launch["id"], "from_pct": 0, "to_pct": 50})
    assert len(requested) == 1, "the open critical alert triggers it once the ramp starts"
    await bot.services.events.publish("traffic.changed", {"launch_id": launch["id"], "from_pct": 50, "to_pct": 10})
    assert len(requested) == 1, "requested once per alert"


async def test_traffic_rolled_back_pages_the_first_tier(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    await bot.services.events.publish("traffic.rolled_back", {"launch_id": 1, "actor": "U0OPERATOR",
                                                              "reason": "bounce spike", "channel_id": bot.channel})
    [page] = [m for m in bot.slack.channel_messages(bot.channel) if "rolled back" in m.text]
    assert "<@U0ONCALL>" in page.text and "bounce spike" in page.text and "<@U0OPERATOR>" in page.text
    assert "<!subteam^S0SRELEADS>" not in page.text
    assert any(r["action"] == "traffic.rolled_back: page tier 1" and r["outcome"] == "paged"
               for r in bot.store.audit.recent(10))


async def test_pagerduty_follows_the_alert_with_one_dedup_key(start_bot, clock, tmp_path):
    async with FakePagerDuty() as pd:
        bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG),
                                                "PAGERDUTY_ROUTING_KEY": SANDBOX_ROUTING_KEY,
                                                "PAGERDUTY_EVENTS_URL": pd.url})
        await post_am(bot, am_payload("firing", [am_alert("firing", "pd1")]))
        await bot.services.idle(5)
        [msg] = alert_messages(bot)
        pd.fail("/v2/enqueue", status=500, times=4)  # PagerDuty down: the ack is retried later
        await bot.click(msg, "alerts.ack", user="U0ONCALL")
        await bot.services.idle(5)
        assert [e["event_action"] for e in pd.events] == ["trigger"]
        await tick(bot, clock, 15)
        await bot.click(msg, "alerts.resolve", user="U0ONCALL")
        await bot.services.idle(5)
        actions = [e["event_action"] for e in pd.events]
        assert actions == ["trigger", "acknowledge", "resolve"]
        assert len({e["dedup_key"] for e in pd.events}) == 1
        assert pd.events[0]["payload"]["severity"] == "warning"
        assert SANDBOX_ROUTING_KEY not in json.dumps([m.blocks for m in bot.slack.messages])
        await bot.services.events.publish("traffic.rolled_back", {"launch_id": 1, "actor": "U0OPERATOR",
                                                                  "reason": "kill switch"})
        assert pd.events[-1]["event_action"] == "trigger" and "kill switch" in pd.events[-1]["payload"]["summary"]


async def test_a_slack_outage_delays_the_alert_message_but_never_loses_it(start_bot, clock, tmp_path, sandbox):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    sandbox.slack.fail("/api/chat.postMessage", status=500, times=None)
    await post_am(bot, am_payload("firing", [am_alert("firing", "out1")]))
    await bot.services.idle(10)
    assert alert_messages(bot) == []
    assert bot.store.alerts.all_alerts()[0]["message_ts"] is None
    sandbox.slack.clear_faults()
    await tick(bot, clock, 15)
    [msg] = alert_messages(bot)
    pages = [m for m in thread(bot, msg.ts) if "Escalation tier 1" in m.text]
    assert len(pages) == 1, "the claimed tier-1 page is posted once the message exists"


async def test_manual_resolve_during_a_breach_needs_a_fresh_streak_to_fire_again(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    await send_metrics(bot, sent=200, bounced=20)
    for _ in range(3):
        await evaluate(bot, clock)
    [msg] = alert_messages(bot)
    await bot.click(msg, "alerts.resolve")
    await evaluate(bot, clock)
    await evaluate(bot, clock)
    assert len(alert_messages(bot)) == 1
    await evaluate(bot, clock)
    assert len(alert_messages(bot)) == 2, "still breaching after 3 more evaluations: a new alert"


def settings_with(tmp_path, text: str) -> Settings:
    return Settings.from_env({"CIO_CONFIG": write_config(tmp_path, text), "CIO_OPERATORS": "U0OPS"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[alerts.thresholds]\nbounce_rate = "lots"', 'bounce_rate.limit in CIO_CONFIG must be like "5%"'),
        ("[alerts.thresholds]\nopen_rate = 0.2", "unknown metric(s) open_rate"),
        ("[alerts.thresholds]\nbounce_rate = { limit = 0.05, critical = 0.01 }", "must not be below its limit"),
        ("[alerts.thresholds]\nbounce_rate = { min_samples = 0 }", "min_samples"),
        ("[alerts]\nfire_after = 0", "fire_after in CIO_CONFIG must be a whole number from 1"),
        ("[alerts]\nfire_after = 2.5", "fire_after in CIO_CONFIG must be a whole number from 1 to 60, got 2.5"),
        ("[alerts]\nfire_aftr = 2", "[alerts] in CIO_CONFIG has unknown key(s) fire_aftr; known keys are"),
        ("[alerts]\nauto_rollback = 'yes'", "auto_rollback in CIO_CONFIG must be true or false"),
        ("[alerts]\nalertmanager_token = 'short'", "at least 16 characters"),
        ("[[alerts.escalation]]\ndelay_minutes = 5\nmentions = ['#oncall']", "'#oncall' is not a Slack user ID"),
        ("[[alerts.escalation]]\ndelay_minutes = -1\nmentions = ['U0A']", "delay_minutes must be a number"),
        ("[[alerts.escalation]]\ndelay_minutes = 1", "mentions must list"),
    ],
)
def test_bad_alert_configuration_stops_with_one_sentence(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        AlertsConfig.from_settings(settings_with(tmp_path, text))
    assert message in str(info.value)


def test_configuration_defaults_and_escalation_plan(tmp_path):
    config = AlertsConfig.from_settings(settings_with(tmp_path, ""))
    assert {k: (t.limit, t.min_samples) for k, t in config.thresholds.items()} == {
        "bounce_rate": (0.05, 100), "complaint_rate": (0.001, 1000), "api_error_rate": (0.01, 5),
        "api_p99_latency": (5.0, 5)}
    assert config.tiers[0].mentions == ("U0OPS",), "without tiers the operators are tier 1"
    config = AlertsConfig.from_settings(settings_with(tmp_path, BASE_CONFIG.replace(
        "resolve_after = 3", "resolve_after = 3\nescalation_repeat = 1\nescalation_repeat_minutes = 30")))
    # 3 tiers, repeated once: steps 0..5, then Escalate-now beyond the plan stays on the last tier
    t0 = 1000.0
    assert config.plan(0, t0) == (0, 0, t0 + 600)
    assert config.plan(1, t0) == (1, 0, t0 + 900)
    assert config.plan(2, t0) == (2, 0, t0 + 1800)
    assert config.plan(3, t0) == (0, 1, t0 + 600)
    assert config.plan(5, t0) == (2, 1, None)
    assert config.plan(9, t0) == (2, 1, None)
    token = AlertsConfig.from_settings(settings_with(tmp_path, BASE_CONFIG)).alertmanager_token
    assert str(token) == "***"


async def test_dedup_ids_and_probe_samples_are_pruned_after_their_retention(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    await send_metrics(bot, sent=5)
    await evaluate(bot, clock)
    repo = bot.store.alerts
    assert repo.counted_events() == 5 and repo.counter_total("email_sent") == 5
    clock.advance(8 * 86400)  # past the 7-day dedup retention
    await evaluate(bot, clock)
    assert repo.counted_events() == 0, "event ids are not kept forever"
    assert repo.counter_total("email_sent") == 5, "per-minute counters are kept for 30 days"
    assert bot.store.query("SELECT count(*) AS n FROM probe_samples WHERE at < ?",
                           (clock.timestamp() - 86400,))[0]["n"] == 0


async def test_alertmanager_without_a_token_configured_says_how_to_configure_it(start_bot, clock):
    bot = await start_bot(clock=clock)
    status, body = await post_am(bot, am_payload("firing", [am_alert("firing", "x1")]))
    assert status == 503 and "CIO_ALERTMANAGER_TOKEN" in body["error"]


async def test_alertmanager_token_from_the_environment(start_bot, clock):
    token = "env-token-0123456789abcdef"
    bot = await start_bot(clock=clock, env={"CIO_ALERTMANAGER_TOKEN": token})
    status, _ = await post_am(bot, am_payload("firing", [am_alert("firing", "env1")]), token=token)
    assert status == 200
    await bot.services.idle(5)
    assert len(alert_messages(bot)) == 1
    assert token not in json.dumps([m.text for m in bot.slack.messages])


async def test_a_post_whose_answer_was_lost_is_read_back_not_posted_twice(start_bot, clock, tmp_path):
    """The state a crash leaves between Slack accepting a post and the bot recording it."""
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    await post_am(bot, am_payload("firing", [am_alert("firing", "lost1")]))
    await bot.services.idle(5)
    [msg] = alert_messages(bot)
    assert len(thread(bot, msg.ts)) == 1
    with bot.store.transaction() as conn:  # the answers of both posts were "lost"
        conn.execute("UPDATE alerts SET message_ts = NULL, dirty = 1")
        conn.execute("UPDATE alert_escalations SET notified_at = NULL, message_ts = NULL")
    await tick(bot, clock, 15)
    assert len(alert_messages(bot)) == 1, "the alert message was found in the channel, not re-posted"
    assert len(thread(bot, msg.ts)) == 1, "the tier-1 page was found in the thread, not re-posted"
    row = bot.store.alerts.all_alerts()[0]
    assert row["message_ts"] == msg.ts
    assert bot.store.alerts.escalations(row["id"])[0]["message_ts"] == thread(bot, msg.ts)[0].ts


async def test_a_rollback_reason_is_shown_as_text_never_a_ping(start_bot, clock, tmp_path):
    bot = await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})
    await bot.services.events.publish("traffic.rolled_back", {"launch_id": 1, "actor": "<!here>",
                                                              "reason": "bounces <!channel> & <@U0CEO>"})
    [page] = [m for m in bot.slack.channel_messages(bot.channel) if "rolled back" in m.text]
    assert "<!channel>" not in page.text and "<@U0CEO>" not in page.text and "<!here>" not in page.text
    assert "bounces &lt;!channel&gt; &amp; &lt;@U0CEO&gt;" in page.text
