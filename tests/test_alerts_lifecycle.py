"""Evaluation and the alert lifecycle over real HTTP with a fake clock: one message per
alert updated in place, no flapping, Alertmanager relay, escalation tiers, buttons."""

from __future__ import annotations

import json

import pytest

from bot.sandbox.world import SANDBOX_OPERATOR
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


@pytest.fixture
async def abot(start_bot, clock, tmp_path):
    return await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)})


def collect(bot, *names):
    seen: list[tuple[str, dict]] = []
    for name in names:
        async def sub(payload, name=name):
            seen.append((name, payload))
        bot.services.events.subscribe(name, sub)
    return seen


async def test_bounce_spike_fires_exactly_one_alert_updates_it_and_resolves_it(abot, clock):
    events = collect(abot, "alert.fired", "alert.resolved")
    await send_metrics(abot, sent=200, bounced=16)  # 8% > 5%
    await evaluate(abot, clock)
    await evaluate(abot, clock)
    assert alert_messages(abot) == [], "a breach must hold 3 evaluations before firing"
    await evaluate(abot, clock)
    [msg] = alert_messages(abot)
    text = json.dumps(msg.blocks, ensure_ascii=False)
    assert "Bounce rate above 5%" in msg.text and "8%" in msg.text
    assert "16 bounced of 200 sent" in text and "last 1 h" in text and "Trend" in text
    assert [b["action_id"] for b in abot.buttons(msg)] == ["alerts.ack", "alerts.escalate", "alerts.resolve"]
    assert [n for n, _ in events] == ["alert.fired"]
    fired = events[0][1]
    assert fired["metric"] == "bounce_rate" and fired["threshold"] == 0.05 and fired["value"] == 0.08
    assert fired["launch_id"] == abot.store.launches.current(abot.channel)["id"]
    # tier 1 (delay 0) is paged at once, in the alert's thread
    [page] = thread(abot, msg.ts)
    assert "<@U0ONCALL>" in page.text and "tier 1 of 3" in page.text

    await send_metrics(abot, sent=100, bounced=20)  # 36/300 = 12%: worse
    await evaluate(abot, clock)
    assert len(alert_messages(abot)) == 1, "updated in place, never re-posted"
    assert "12%" in msg.text and msg.history, "the same message was updated (chat.update)"
    assert "↑ rising" in json.dumps(msg.blocks, ensure_ascii=False)

    await send_metrics(abot, sent=900)  # 36/1200 = 3%: recovered
    for _ in range(2):
        await evaluate(abot, clock)
    assert abot.store.alerts.open_alerts(), "recovery must hold 3 evaluations before resolving"
    await evaluate(abot, clock)
    assert abot.store.alerts.open_alerts() == []
    assert len(alert_messages(abot)) == 1
    assert msg.text.startswith(":white_check_mark: Resolved")
    assert abot.buttons(msg) == [], "a resolved alert has no buttons"
    notices = [m for m in thread(abot, msg.ts) if "Resolved automatically" in m.text]
    assert len(notices) == 1 and "back within 5%" in notices[0].text
    assert [n for n, _ in events] == ["alert.fired", "alert.resolved"]
    # more good evaluations change nothing
    await evaluate(abot, clock)
    assert len(alert_messages(abot)) == 1 and len(thread(abot, msg.ts)) == 2


async def test_an_alert_whose_data_stops_stays_open_until_good_data_or_a_person(abot, clock):
    """Traffic rolled back, nothing sent for an hour: no data is no evidence of recovery, so the
    alert is not declared resolved "back within" its limit; good readings, when they come, do."""
    await send_metrics(abot, sent=200, bounced=40)  # 20%
    for _ in range(3):
        await evaluate(abot, clock)
    [msg] = alert_messages(abot)
    for _ in range(65):  # the window empties and stays empty: many evaluations without data
        await evaluate(abot, clock)
    assert abot.services.alerts.readings()["bounce_rate"].value is None
    assert abot.store.alerts.open_alerts(), "no data must not resolve an alert"
    shown = json.dumps(msg.blocks, ensure_ascii=False)
    assert "Bounce rate above 5%: not enough data" in msg.text
    assert "*Trend*\\nno data in the last " in shown and " evaluations; before that 20% → 20%" in shown
    assert not [m for m in thread(abot, msg.ts) if "Resolved" in m.text]
    await send_metrics(abot, sent=500, bounced=5)  # traffic back, 1%
    for _ in range(3):
        await evaluate(abot, clock)
    assert abot.store.alerts.open_alerts() == []
    [notice] = [m for m in thread(abot, msg.ts) if "Resolved automatically" in m.text]
    assert "back within 5% (1%)" in notice.text


async def test_two_processes_on_one_database_count_each_period_once(start_bot, clock, tmp_path):
    """During a rolling deploy two processes evaluate the same metrics: each period still counts
    once, so a breach takes its 3 periods to fire (not 2 minutes) and fires one alert."""
    env = {"CIO_CONFIG": write_config(tmp_path, BASE_CONFIG)}
    one = await start_bot(clock=clock, env=env)
    two = await start_bot(clock=clock, env=env)  # the same database file
    await send_metrics(one, sent=200, bounced=40)  # 20%
    for period in (1, 2, 3):
        await wait_for(lambda: len(clock._waiters) >= 6, what="both processes' loops to sleep")
        before = one.services.alerts.evaluations, two.services.alerts.evaluations
        clock.advance(60)
        await wait_for(lambda before=before: one.services.alerts.evaluations > before[0]
                       and two.services.alerts.evaluations > before[1], what="both to evaluate")
        assert await one.services.idle(5) and await two.services.idle(5)
        assert one.store.alerts.metric_state("bounce_rate")["breach_streak"] == period
        assert len(alert_messages(one)) == (1 if period == 3 else 0)
    [msg] = alert_messages(one)
    assert len([m for m in thread(one, msg.ts) if "<@U0ONCALL>" in m.text]) == 1, "tier 1 paged once"


async def test_flapping_data_fires_nothing(abot, clock):
    events = collect(abot, "alert.fired")
    # alternate breach / fine every evaluation: never 3 in a row
    steps = [dict(sent=100, bounced=10), dict(sent=300), dict(bounced=20), dict(sent=400), dict(bounced=25),
             dict(sent=500), dict(bounced=30), dict(sent=600)]
    states = []
    for counts in steps:
        await send_metrics(abot, **counts)
        await evaluate(abot, clock)
        states.append(abot.store.alerts.metric_state("bounce_rate")["breaching"])
    assert states == [1, 0, 1, 0, 1, 0, 1, 0]
    assert events == [] and alert_messages(abot) == []


async def test_small_samples_page_nobody(abot, clock):
    await send_metrics(abot, sent=10, bounced=9)  # 90%, but 10 sends are below min_samples = 100
    for _ in range(4):
        await evaluate(abot, clock)
    assert alert_messages(abot) == []
    findings = await abot.services.health.findings(None)
    bounce = next(f for f in findings if f.name == "bounce rate")
    assert bounce.ok and "not enough data yet (10 of 100 sent" in bounce.detail


async def test_old_counts_leave_the_one_hour_window(abot, clock):
    await send_metrics(abot, sent=200, bounced=40)
    await evaluate(abot, clock)
    reading = abot.services.alerts.readings()["bounce_rate"]
    assert reading.value == 0.2
    clock.advance(3600)
    assert abot.services.alerts.readings()["bounce_rate"].value is None


async def test_alertmanager_firing_and_resolved_round_trip(abot, clock):
    events = collect(abot, "alert.fired", "alert.resolved")
    status, body = await post_am(abot, am_payload("firing", [am_alert("firing", "aaa1"),
                                                             am_alert("firing", "bbb2", severity="critical")]))
    assert status == 200 and body == {"status": "ok", "firing": 2, "resolved": 0}
    await abot.services.idle(5)
    msgs = alert_messages(abot)
    assert len(msgs) == 2
    assert "CustomerIOApiErrors on aaa1" in msgs[0].text and "3.4%" in msgs[0].text
    assert "Alertmanager" in json.dumps(msgs[0].blocks, ensure_ascii=False)

    # Alertmanager repeats the notification (repeat_interval) with a new value: update, no re-post
    status, _ = await post_am(abot, am_payload("firing", [am_alert("firing", "aaa1", value="0.05")]))
    assert status == 200
    await abot.services.idle(5)
    assert len(alert_messages(abot)) == 2 and "5%" in msgs[0].text

    status, body = await post_am(abot, am_payload("resolved", [am_alert("resolved", "aaa1"),
                                                               am_alert("resolved", "bbb2")]))
    assert status == 200 and body["resolved"] == 2
    await abot.services.idle(5)
    assert abot.store.alerts.open_alerts() == []
    assert all(m.text.startswith(":white_check_mark: Resolved") for m in msgs)
    for m in msgs:
        assert any("Alertmanager reports it resolved" in t.text for t in thread(abot, m.ts))
    assert sorted(n for n, _ in events) == ["alert.fired"] * 2 + ["alert.resolved"] * 2
    # a resolved notification for an alert already resolved changes nothing
    status, body = await post_am(abot, am_payload("resolved", [am_alert("resolved", "aaa1")]))
    assert status == 200 and body["resolved"] == 0


@pytest.mark.parametrize(
    ("payload", "token", "status", "reason"),
    [
        (am_payload("firing", [am_alert("firing", "f1")]), None, 401, "bearer token"),
        (am_payload("firing", [am_alert("firing", "f1")]), "wrong-token-wrong-token", 401, "bearer token"),
        (b"{nope", "ok", 400, "not valid JSON"),
        ({**am_payload("firing", [am_alert("firing", "f1")]), "version": "3"}, "ok", 422, "version 4"),
        (am_payload("firing", []), "ok", 422, "no alerts"),
        (am_payload("pending", [{**am_alert("firing", "f1"), "status": "pending"}]), "ok", 422, "firing or resolved"),
    ],
)
async def test_alertmanager_refusals(abot, payload, token, status, reason):
    from tests.fixtures_alerts import AM_TOKEN

    got, body = await post_am(abot, payload, token=AM_TOKEN if token == "ok" else token)
    assert got == status and reason in body["error"]
    assert abot.store.alerts.all_alerts() == []


async def test_escalation_climbs_two_tiers_and_an_acknowledgement_stops_it(abot, clock):
    await post_am(abot, am_payload("firing", [am_alert("firing", "esc1")]))
    await abot.services.idle(5)
    [msg] = alert_messages(abot)
    pages = lambda: [m for m in thread(abot, msg.ts) if "Escalation tier" in m.text]  # noqa: E731
    assert len(pages()) == 1 and "<@U0ONCALL>" in pages()[0].text
    assert "next: tier 2 (SRE leads)" in json.dumps(msg.blocks, ensure_ascii=False)

    await tick(abot, clock, 9 * 60)
    assert len(pages()) == 1, "tier 2 waits for its 10 minutes"
    await tick(abot, clock, 60)
    assert len(pages()) == 2 and "<!subteam^S0SRELEADS>" in pages()[1].text
    assert "tier 2 of 3" in pages()[1].text and "unacknowledged for 10 min" in pages()[1].text

    answer = await abot.click(msg, "alerts.ack", user="U0ONCALL")
    assert "escalation has stopped" in answer.text
    await abot.services.idle(5)
    assert "Acknowledged by <@U0ONCALL>" in json.dumps(msg.blocks, ensure_ascii=False)
    assert "stopped (acknowledged)" in json.dumps(msg.blocks, ensure_ascii=False)

    await tick(abot, clock, 16 * 60)
    await tick(abot, clock, 60 * 60)
    assert len(pages()) == 2, "no tier after the acknowledgement"
    steps = abot.store.alerts.escalations(abot.store.alerts.all_alerts()[0]["id"])
    assert [(s["step"], s["tier"]) for s in steps] == [(0, 0), (1, 1)]
    audit = abot.store.audit.recent(20)
    assert any(r["action"].startswith("alerts.ack:") and r["user_id"] == "U0ONCALL" and r["outcome"] == "ok"
               for r in audit)
    # pressing again says who already did it
    again = await abot.click(msg, "alerts.ack", user=SANDBOX_OPERATOR)
    assert "already acknowledged by <@U0ONCALL>" in again.text


async def test_escalate_now_and_manual_resolve(abot, clock):
    await post_am(abot, am_payload("firing", [am_alert("firing", "man1")]))
    await abot.services.idle(5)
    [msg] = alert_messages(abot)
    answer = await abot.click(msg, "alerts.escalate")
    assert "tier 2 (SRE leads) now" in answer.text
    await abot.services.idle(5)
    pages = [m for m in thread(abot, msg.ts) if "Escalation tier" in m.text]
    assert len(pages) == 2 and f"escalated now by <@{SANDBOX_OPERATOR}>" in pages[1].text
    # the timer restarts from the manual step: tier 3 comes 15 minutes after it, not earlier
    await tick(abot, clock, 14 * 60)
    assert len([m for m in thread(abot, msg.ts) if "Escalation tier" in m.text]) == 2
    await tick(abot, clock, 60)
    assert len([m for m in thread(abot, msg.ts) if "Escalation tier" in m.text]) == 3

    answer = await abot.click(msg, "alerts.resolve")
    assert "You resolved alert" in answer.text
    await abot.services.idle(5)
    assert msg.text.startswith(":white_check_mark: Resolved")
    assert any(f"Resolved by <@{SANDBOX_OPERATOR}>" in m.text for m in thread(abot, msg.ts))
    alert_id = abot.store.alerts.all_alerts()[0]["id"]
    again = await abot.press("alerts.resolve", str(alert_id), message_ts=msg.ts)
    assert "already resolved" in again.text


async def test_buttons_check_who_pressed_server_side(abot, clock, sandbox):
    await post_am(abot, am_payload("firing", [am_alert("firing", "perm1")]))
    await abot.services.idle(5)
    [msg] = alert_messages(abot)
    alert_id = abot.store.alerts.all_alerts()[0]["id"]

    refused = await abot.click(msg, "alerts.ack", user="U0STRANGER")
    assert "Only people in <#C0LAUNCH01> can handle alerts" in refused.text
    assert abot.store.alerts.get(alert_id)["status"] == "open"

    other = await abot.press("alerts.ack", str(alert_id), user=SANDBOX_OPERATOR, channel="C0ELSEWHERE")
    assert "can only be handled from <#C0LAUNCH01>" in other.text

    missing = await abot.press("alerts.resolve", "9999", message_ts=msg.ts)
    assert "does not exist" in missing.text

    sandbox.slack.channels["C0LAUNCH01"]["members"] = ["U0MEMBER"]
    ok = await abot.click(msg, "alerts.ack", user="U0MEMBER")
    assert "You acknowledged" in ok.text
    assert abot.store.alerts.get(alert_id)["acknowledged_by"] == "U0MEMBER"

    outcomes = [(r["user_id"], r["outcome"]) for r in abot.store.audit.recent(30) if r["kind"] == "button"]
    assert ("U0STRANGER", "rejected") in outcomes and ("U0MEMBER", "ok") in outcomes


async def test_alerts_command_health_and_status(abot, clock):
    await send_metrics(abot, sent=300, bounced=3)
    await post_am(abot, am_payload("firing", [am_alert("firing", "cmd1")]))
    await abot.services.idle(5)
    answer = await abot.command("/cio alerts", user="U0VIEWER", settle=False)
    assert answer.ack is not None
    text = answer.all_text()
    assert "Open (1)" in text and "CustomerIOApiErrors on cmd1" in text
    assert "Bounce rate: 1% (limit 5%; 3 bounced of 300 sent in the last 1 h)" in text
    assert "Complaint rate: not enough data" in text

    findings = {f.name: f for f in await abot.services.health.findings(None)}
    assert not findings["no open alert"].ok and "cmd1" in findings["no open alert"].detail
    assert findings["bounce rate"].ok and "1% within 5%" in findings["bounce rate"].detail

    status = await abot.command("/cio status")
    assert "Open alerts:* 1" in status.all_text()

    bad = await abot.command("/cio alerts everything", settle=False)
    assert "takes no arguments" in bad.text


async def test_breach_above_threshold_fails_the_health_gate(abot, clock):
    await send_metrics(abot, sent=100, bounced=10)
    findings = {f.name: f for f in await abot.services.health.findings(None)}
    assert not findings["bounce rate"].ok and "10% above 5%" in findings["bounce rate"].detail
    assert findings["no open alert"].ok


async def test_alertmanager_text_cannot_mention_the_channel(abot):
    alert = am_alert("firing", "inj1", summary="<!channel> latency > 5s <@U0CEO>")
    alert["annotations"]["description"] = "see <https://evil.example|this>"
    await post_am(abot, am_payload("firing", [alert]))
    await abot.services.idle(5)
    [msg] = alert_messages(abot)
    rendered = msg.text + json.dumps(msg.blocks) + " ".join(m.text for m in thread(abot, msg.ts))
    assert "<!channel>" not in rendered and "<@U0CEO>" not in rendered and "<https://evil" not in rendered
    assert "latency › 5s" in msg.text
