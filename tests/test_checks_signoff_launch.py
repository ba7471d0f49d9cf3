"""Sign-offs given before the launch is planned belong to the launch `/cio golive` plans."""

from __future__ import annotations

import json


async def test_signoff_before_golive_carries_into_the_planned_launch(bot):
    await bot.command("/cio check testing")
    report = bot.slack.channel_messages(bot.channel)[-1]
    confirm = [b for b in bot.buttons(report) if b["action_id"] == "checks.signoff.confirm"]
    assert confirm, json.dumps(report.blocks)[:500]
    await bot.press("checks.signoff.confirm", confirm[0]["value"], message_ts=report.ts)
    before = bot.store.launches.current(bot.channel)
    assert before is not None
    await bot.command("/cio golive in 30h")
    planned = bot.store.launches.current(bot.channel)
    assert planned["id"] == before["id"]
    states = bot.store.checks.signoffs(planned["id"])
    assert states[confirm[0]["value"]]["state"] == "confirmed"
