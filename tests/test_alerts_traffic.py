"""Alerts with the traffic domain, end to end: the health gate of /cio ramp reads the alerts,
and a critical alert during a ramp rolls traffic back and pages the first tier."""

from __future__ import annotations

import json

from tests.fixtures_alerts import (
    BASE_CONFIG,
    am_alert,
    am_payload,
    post_am,
    send_metrics,
    write_config,
)
from tests.traffic_helpers import ld_of, ramp

CONFIG = "[traffic]\nmin_soak_minutes = 0\n" + BASE_CONFIG.replace(
    "resolve_after = 3", "resolve_after = 3\nauto_rollback = true")


async def start(start_bot, clock, tmp_path):
    return await start_bot(clock=clock, env={"CIO_CONFIG": write_config(tmp_path, CONFIG)})


async def test_an_open_alert_or_a_breach_blocks_the_ramp_health_gate(start_bot, clock, tmp_path):
    bot = await start(start_bot, clock, tmp_path)
    await post_am(bot, am_payload("firing", [am_alert("firing", "gate1")]))
    await bot.services.idle(5)
    blocked = await bot.command("/cio ramp 50")
    text = blocked.all_text()
    assert "no open alert" in text and "CustomerIOApiErrors on gate1" in text
    assert ld_of(bot).served_weight() == 0, "nothing moved"

    await post_am(bot, am_payload("resolved", [am_alert("resolved", "gate1")]))
    await send_metrics(bot, sent=200, bounced=30)  # 15%: a breach the gate sees before any alert fires
    blocked = await bot.command("/cio ramp 50")
    assert "bounce rate" in blocked.all_text() and "15% above 5%" in blocked.all_text()


async def test_a_critical_alert_during_a_ramp_rolls_back_and_pages_tier_one(start_bot, clock, tmp_path):
    bot = await start(start_bot, clock, tmp_path)
    await ramp(bot, 10)
    assert ld_of(bot).served_weight() > 0
    await post_am(bot, am_payload("firing", [am_alert("firing", "auto1", severity="critical",
                                                      summary="Track API errors 30%", value="0.3")]))
    await bot.services.idle(10)
    assert ld_of(bot).env()["on"] is False, "traffic rolled back (flag off)"
    texts = [m.text for m in bot.slack.channel_messages(bot.channel)]
    pages = [t for t in texts if "Traffic was rolled back" in t]
    assert len(pages) == 1 and "<@U0ONCALL>" in pages[0] and "Track API errors 30%" in pages[0]
    alert = bot.store.alerts.all_alerts()[0]
    assert alert["rollback_requested_at"] is not None
    audit = [r for r in bot.store.audit.recent(50) if r["action"] == "rollback.requested"]
    assert {r["outcome"] for r in audit} == {"started", "verified"}, "the traffic domain performed it"
    assert "Auto-rollback" in json.dumps([m.blocks for m in bot.slack.channel_messages(bot.channel)])
