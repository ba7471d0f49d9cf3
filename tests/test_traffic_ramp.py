"""/cio ramp and /cio rollback against the sandbox LaunchDarkly over real HTTP."""

from __future__ import annotations

import asyncio
import logging

from bot.health import HealthFinding
from bot.providers.launchdarkly import SEMANTIC_PATCH
from bot.sandbox.launchdarkly import SANDBOX_LD_TOKEN
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.traffic_helpers import (
    OPERATOR_2,
    Events,
    channel_all,
    channel_texts,
    dry_runs,
    ld_of,
    methods,
    patches,
    proposal,
    ramp,
)

pytest_plugins = ["tests.fixtures_traffic"]


async def test_ramp_up_is_confirmed_patched_verified_recorded_and_announced(traffic_bot):
    bot = await traffic_bot()
    events = Events(bot, "traffic.changed")
    ld = ld_of(bot)

    asked = await bot.command("/cio ramp 10%")
    shown = proposal(asked)
    assert shown.response_type == "in_channel"
    assert "0% → 10%" in shown.text
    assert "Health gate:* passes" in asked.all_text()
    assert not patches(bot), "nothing changes before the click"

    clicked = await bot.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text and "SDK served the new path" in clicked.text
    assert ld.served_weight() == 10_000 and ld.env()["on"] is True

    (patch,) = patches(bot)
    assert patch.headers["Content-Type"] == SEMANTIC_PATCH
    assert patch.headers["Authorization"] == SANDBOX_LD_TOKEN  # no "Bearer"
    assert patch.headers["LD-API-Version"] == "20240415"
    body = patch.json()
    assert body["environmentKey"] == "production"
    assert SANDBOX_OPERATOR in body["comment"]
    kinds = [i["kind"] for i in body["instructions"]]
    assert kinds == ["updateFallthroughVariationOrRollout", "turnFlagOn"]
    ids = {v["value"]: v["_id"] for v in ld.flag()["variations"]}
    assert body["instructions"][0]["rolloutWeights"] == {ids[True]: 10_000, ids[False]: 90_000}

    # read back after the patch, then announced in the launch channel
    assert methods(bot) == ["GET", "DRY", "GET", "PATCH", "GET"]
    assert dry_runs(bot)[0].json()["instructions"] == body["instructions"]
    assert any("0% → 10% (verified)" in t for t in channel_texts(bot))
    assert events.of("traffic.changed") == [{"launch_id": 1, "from_pct": 0.0, "to_pct": 10.0,
                                             "actor": SANDBOX_OPERATOR, "reason": "", "forced": False}]

    (row,) = bot.store.traffic.history(1)
    assert row["status"] == "verified" and row["kind"] == "ramp"
    assert row["before"]["on"] is False and row["after"]["served"] == 10_000
    assert row["ld_version_before"] == 1 and row["ld_version_after"] == 2
    assert row["verification"]["ok"] and row["verification"]["sample"] == 5000
    assert {"read_ms", "patch_ms", "readback_ms", "sdk_ms", "total_ms"} <= set(row["durations"])
    assert row["ld_calls"] == 3


async def test_ramp_down_needs_no_gate_and_keeps_the_flag_on(traffic_bot):
    bot = await traffic_bot(min_soak_minutes=60)
    await ramp(bot, 50)
    bot.services.health.register("alerts", _failing)
    asked = await bot.command("/cio ramp 20")
    assert "not needed to decrease" in asked.all_text()
    clicked = await bot.click(proposal(asked), "traffic_confirm")
    assert "Verified" in clicked.text
    assert ld_of(bot).served_weight() == 20_000
    assert any("50% → 20% (verified)" in t for t in channel_texts(bot))


async def _failing(launch_id):
    return [HealthFinding("bounce rate", False, "7.2% over the 5% threshold")]


async def test_health_gate_blocks_an_increase_until_forced_with_a_reason(traffic_bot):
    bot = await traffic_bot()
    await ramp(bot, 10)
    bot.services.health.register("alerts", _failing)
    blocked = await bot.command("/cio ramp 50")
    assert "health gate blocks 10% → 50%" in blocked.text
    assert "bounce rate: 7.2% over the 5% threshold" in blocked.text
    assert '--force "reason"' in blocked.text
    assert len(patches(bot)) == 1

    forced = await bot.command('/cio ramp 50 --force "bounces are from the seed list"')
    assert "Forced past the health gate" in forced.all_text()
    clicked = await bot.click(proposal(forced), "traffic_confirm")
    assert "Verified" in clicked.text
    announcement = channel_texts(bot)[-1]
    assert "Health gate bypassed with --force: bounces are from the seed list" in announcement
    row = bot.store.traffic.history(1)[0]
    assert row["forced"] == 1 and row["reason"] == "bounces are from the seed list"
    assert "(health gate forced)" in patches(bot)[-1].json()["comment"]


async def test_gate_failing_between_request_and_click_stops_the_change(traffic_bot):
    bot = await traffic_bot()
    asked = await bot.command("/cio ramp 10")
    bot.services.health.register("alerts", _failing)
    clicked = await bot.click(proposal(asked), "traffic_confirm")
    assert "no longer passes" in clicked.text
    assert not patches(bot)


async def test_minimum_soak_time_at_the_current_step(traffic_bot, clock):
    bot = await traffic_bot(min_soak_minutes=30)
    await ramp(bot, 10)
    clock.advance(10 * 60)
    early = await bot.command("/cio ramp 50")
    assert "soak time: only 10 min at 10% of the 30 min minimum" in early.text
    clock.advance(21 * 60)
    later = await bot.command("/cio ramp 50")
    assert ":white_check_mark: soak time: 31 min at 10%" in later.all_text()


async def test_rollback_kills_verifies_and_posts_an_incident_notice(traffic_bot, caplog):
    caplog.set_level(logging.INFO, logger="bot.traffic")
    bot = await traffic_bot()
    events = Events(bot, "traffic.changed", "traffic.rolled_back")
    await ramp(bot, 50)
    asked = await bot.command("/cio rollback bounce rate spiking", user=OPERATOR_2)
    shown = proposal(asked)
    assert "50% → 0%" in shown.text and "flag off" in asked.all_text()
    clicked = await bot.click(shown, "traffic_confirm", user=SANDBOX_OPERATOR)
    assert "Verified" in clicked.text

    ld = ld_of(bot)
    assert ld.env()["on"] is False and ld.served_weight() == 0
    assert [i["kind"] for i in patches(bot)[-1].json()["instructions"]] == ["turnFlagOff"]
    # the incident notice, then the alerts domain pages the first escalation tier (traffic.rolled_back)
    notice, page = channel_texts(bot)[-2:]
    assert "Incident" in notice and f"<@{OPERATOR_2}>" in notice and "bounce rate spiking" in notice
    assert "Traffic was rolled back" in page and "bounce rate spiking" in page
    assert events.of("traffic.rolled_back") == [{"launch_id": 1, "actor": SANDBOX_OPERATOR,
                                                 "reason": "bounce rate spiking", "channel_id": bot.channel}]
    assert events.of("traffic.changed")[-1]["to_pct"] == 0.0
    row = bot.store.traffic.history(1)[0]
    assert row["kind"] == "rollback" and row["status"] == "verified"
    assert row["requested_by"] == OPERATOR_2 and row["confirmed_by"] == SANDBOX_OPERATOR
    assert row["before"]["served"] == 50_000 and row["after"]["on"] is False
    assert row["durations"]["total_ms"] > 0 and row["durations"]["announce_ms"] >= 0
    assert any("rollback path: verified in" in r.getMessage() and "3 LaunchDarkly calls" in r.getMessage()
               for r in caplog.records)


async def test_rollback_without_confirmation_as_zero_rollout(traffic_bot):
    bot = await traffic_bot(rollback_confirmation=False, kill_mode="zero_rollout")
    await ramp(bot, 30)
    answer = await bot.command("/cio rollback")
    assert "Verified" in answer.text
    ld = ld_of(bot)
    assert ld.env()["on"] is True and ld.served_weight() == 0
    assert "no reason given" in channel_texts(bot)[-1]


async def test_rollback_of_a_flag_already_at_zero_changes_nothing(traffic_bot):
    bot = await traffic_bot(rollback_confirmation=False)
    answer = await bot.command("/cio rollback")
    assert "nothing to roll back" in answer.text
    confirming = await traffic_bot(db_name="other.db")
    assert "nothing to roll back" in (await confirming.command("/cio rollback")).text
    assert not patches(bot)


async def test_flag_off_kill_falls_back_to_zero_rollout_when_off_variation_serves_true(traffic_bot):
    bot = await traffic_bot(rollback_confirmation=False)
    await ramp(bot, 40)
    ld_of(bot).edit(lambda flag, env: env.__setitem__("offVariation", 0))
    answer = await bot.command("/cio rollback")
    assert "Verified" in answer.text
    assert ld_of(bot).env()["on"] is True and ld_of(bot).served_weight() == 0
    assert "off variation does not serve the old path" in channel_all(bot)[-2]  # [-1]: the tier-1 page


async def test_rollback_requested_event_rolls_back_without_confirmation(traffic_bot):
    bot = await traffic_bot()
    events = Events(bot, "traffic.rolled_back")
    await ramp(bot, 50)
    await bot.services.events.publish("rollback.requested", {
        "launch_id": 1, "reason": "bounce rate 9% for 5 min", "actor": "auto-rollback",
        "channel_id": bot.channel})
    await bot.services.idle()
    assert ld_of(bot).env()["on"] is False
    notice = channel_texts(bot)[-2]  # [-1]: the alerts domain's page of the first escalation tier
    assert "Incident" in notice and "auto-rollback" in notice and "bounce rate 9% for 5 min" in notice
    assert events.of("traffic.rolled_back")[0]["reason"] == "bounce rate 9% for 5 min"
    assert bot.store.traffic.history(1)[0]["trigger"] == "auto"
    audit = [r for r in bot.store.audit.recent() if r["action"] == "rollback.requested"]
    assert {r["outcome"] for r in audit} == {"started", "verified"}


async def test_milestone_button_behaves_like_ramp_by_the_clicker(traffic_bot):
    bot = await traffic_bot()
    answer = await bot.press("traffic_ramp_request", "10", user=OPERATOR_2)
    shown = proposal(answer)
    assert f"<@{OPERATOR_2}> asks to move Customer.io traffic: 0% → 10%" in shown.text
    await bot.click(shown, "traffic_confirm", user=OPERATOR_2)
    assert ld_of(bot).served_weight() == 10_000
    refused = await bot.press("traffic_ramp_request", "50", user="U0VIEWER")
    assert "Only launch operators" in refused.text
    broken = await bot.press("traffic_ramp_request", "fifty")
    assert "invalid percentage" in broken.text
    assert len(patches(bot)) == 1


async def test_cancel_makes_the_button_useless(traffic_bot):
    bot = await traffic_bot()
    asked = await bot.command("/cio ramp 10")
    cancelled = await bot.click(proposal(asked), "traffic_cancel")
    assert "Cancelled by" in cancelled.text
    again = await bot.click(proposal(asked), "traffic_confirm")
    assert "already cancelled" in again.text
    assert not patches(bot)


async def test_ramp_to_the_current_value_changes_nothing(traffic_bot):
    bot = await traffic_bot()
    await ramp(bot, 10)
    same = await bot.command("/cio ramp 10")
    assert "already serves 10%" in same.text
    assert len(patches(bot)) == 1


async def test_ramp_to_100_and_back_to_zero_keeps_flag_on(traffic_bot):
    bot = await traffic_bot()
    await ramp(bot, 100)
    assert ld_of(bot).served_weight() == 100_000
    _, clicked = await ramp(bot, 0)
    assert "Verified" in clicked.text
    assert ld_of(bot).env()["on"] is True and ld_of(bot).served_weight() == 0


async def test_in_flight_change_blocks_a_second_request_with_who_and_what(traffic_bot):
    bot = await traffic_bot()
    ld = ld_of(bot)
    asked = await bot.command("/cio ramp 10")
    ld.latency = 0.3
    click = asyncio.create_task(bot.click(proposal(asked), "traffic_confirm"))
    await asyncio.sleep(0.15)
    section = await bot.services.traffic.status_section(bot.store.launches.get(1), bot.channel)
    assert any(f"<@{SANDBOX_OPERATOR}> is changing traffic right now" in line for line in section.lines)
    second = await bot.command("/cio ramp 20", user=OPERATOR_2)  # settles after the click too
    await click
    assert f"<@{SANDBOX_OPERATOR}> is changing traffic right now (ramp to 10%" in second.text
    assert len(patches(bot)) == 1


async def test_without_launchdarkly_configured_traffic_commands_say_what_to_set(traffic_bot):
    bot = await traffic_bot(env={"LAUNCHDARKLY_API_TOKEN": "api-some-token-1234", "LAUNCHDARKLY_PROJECT": ""})
    for text in ("/cio ramp 10", "/cio rollback"):
        answer = await bot.command(text)
        assert "LaunchDarkly is not configured" in answer.text and "LAUNCHDARKLY_PROJECT" in answer.text
    status = (await bot.command("/cio status")).all_text()
    assert "Not configured: set LAUNCHDARKLY_API_TOKEN" in status


async def test_force_given_while_the_gate_passed_still_bypasses_a_gate_failing_at_the_click(traffic_bot):
    bot = await traffic_bot()
    asked = await bot.command('/cio ramp 10 --force "launch window is now"')
    assert "Forced past" not in asked.all_text()  # the gate passed: nothing to bypass yet
    bot.services.health.register("alerts", _failing)
    clicked = await bot.click(proposal(asked), "traffic_confirm")
    assert "Verified" in clicked.text
    assert "Health gate bypassed with --force: launch window is now" in channel_texts(bot)[-1]
    assert bot.store.traffic.history(1)[0]["forced"] == 1


async def test_outside_change_note_mentions_an_unconfirmed_attempt(traffic_bot):
    bot = await traffic_bot(request_timeout_seconds=0.3)
    await ramp(bot, 10)
    shown = proposal(await bot.command("/cio ramp 20"))
    ld_of(bot).answer_delay = 0.6  # the bot's own change lands but is never confirmed
    await bot.click(shown, "traffic_confirm")
    ld_of(bot).answer_delay = 0
    status = (await bot.command("/cio status")).all_text()
    assert "Changed outside the bot" in status
    assert "the bot's latest attempt (ramp to 20%) ended unknown" in status
