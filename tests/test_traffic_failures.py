"""LaunchDarkly failures, confirmation clicks, concurrency, outside changes, strict input."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bot.config import ConfigError, Settings
from bot.providers.launchdarkly import LaunchDarkly
from bot.sandbox.launchdarkly import SANDBOX_LD_TOKEN
from bot.sandbox.world import SANDBOX_OPERATOR
from bot.secrets import Secret
from bot.traffic import TrafficConfig
from tests.traffic_helpers import (
    FLAG_PATH,
    OPERATOR_2,
    VIEWER,
    Events,
    channel_texts,
    ld_of,
    methods,
    patches,
    proposal,
    ramp,
)

pytest_plugins = ["tests.fixtures_traffic"]


# -- LaunchDarkly answers ------------------------------------------------------------------------
async def ask(bot, percent: int, **kw):
    return proposal(await bot.command(f"/cio ramp {percent}", **kw))


async def test_429_then_success(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 10)
    ld_of(bot).rate_limit("/api/v2/flags/", retry_after=0, times=1).method = "PATCH"
    clicked = await bot.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text
    assert methods(bot) == ["GET", "DRY", "GET", "PATCH", "PATCH", "GET"]
    assert bot.store.traffic.history(1)[0]["ld_calls"] == 4


def _response(status: int, headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("PATCH", "http://ld.test/"))


async def test_rate_limit_delay_from_retry_after_or_epoch_ms_reset():
    ld = LaunchDarkly("http://ld.test", Secret("api-test-token-1234"), project="p", environment="e")
    try:
        assert ld.retry_delay(_response(429, {"Retry-After": "2"})) == 2.0
        reset_ms = int((time.time() + 1.5) * 1000)
        delay = ld.retry_delay(_response(429, {"X-Ratelimit-Reset": str(reset_ms)}))
        assert delay is not None and 1.0 < delay <= 1.5
        assert ld.retry_delay(_response(429, {"X-Ratelimit-Reset": str(int(time.time() * 1000) - 5000)})) == 0.0
        assert ld.retry_delay(_response(429, {})) is None
    finally:
        await ld.aclose()


async def test_429_with_ratelimit_reset_header_is_waited_out(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 10)
    reset = str(int((time.time() + 0.2) * 1000))
    ld_of(bot).fail("/api/v2/flags/", method="PATCH", status=429, headers={"X-Ratelimit-Reset": reset},
                    body={"code": "rate_limited", "message": "Rate limit exceeded"})
    clicked = await bot.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text
    assert len(patches(bot)) == 2


async def test_409_rereads_and_retries_with_the_fresh_flag(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 25)
    ld_of(bot).fail("/api/v2/flags/", method="PATCH", status=409,
                    body={"code": "conflict", "message": "Conflicting update"})
    clicked = await bot.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text
    assert methods(bot) == ["GET", "DRY", "GET", "PATCH", "GET", "PATCH", "GET"]
    assert ld_of(bot).served_weight() == 25_000


async def test_405_approval_required_is_said_plainly_and_nothing_changes(traffic_bot):
    bot = await traffic_bot()
    ld_of(bot).require_approval()
    early = await bot.command("/cio ramp 10")  # the dry run finds it before anyone confirms
    assert "LaunchDarkly would refuse this change" in early.text
    assert "requires an approved change request" in early.text
    assert not bot.store.query("SELECT * FROM traffic_confirmations")

    ld_of(bot).require_approval(required=False)
    shown = await ask(bot, 10)
    ld_of(bot).require_approval()  # switched on between the request and the click
    events = Events(bot, "traffic.changed")
    clicked = await bot.click(shown, "traffic_confirm")
    assert "requires an approved change request" in clicked.text
    assert "flag `use-customerio` in project `cio-launch`, environment `production`" in clicked.text
    assert "Review and save → request approval" in clicked.text
    assert "Nothing changed" in clicked.text
    assert ld_of(bot).served_weight() == 0 and len(patches(bot)) == 1
    assert not channel_texts(bot) and not events.of("traffic.changed")
    assert bot.store.traffic.history(1)[0]["status"] == "refused"


async def test_500_is_retried_then_reread_and_reported_never_announced(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 10)
    ld_of(bot).fail("/api/v2/flags/", method="PATCH", status=500, times=None)
    events = Events(bot, "traffic.changed")
    clicked = await bot.click(shown, "traffic_confirm")
    assert "answered HTTP 500" in clicked.text
    assert "re-read the flag: it is off (serving the old path)" in clicked.text
    assert "was not applied" in clicked.text
    assert len(patches(bot)) == 4  # retried, then given up
    assert not any("verified" in t for t in channel_texts(bot))
    assert not events.of("traffic.changed")
    assert bot.store.traffic.history(1)[0]["status"] == "unknown"


async def test_timeout_leaves_the_outcome_unknown_and_says_what_was_found(traffic_bot):
    bot = await traffic_bot(request_timeout_seconds=0.3)
    ld = ld_of(bot)
    shown = await ask(bot, 10)
    ld.answer_delay = 0.8  # applied, but the answer comes too late
    events = Events(bot, "traffic.changed")
    clicked = await bot.click(shown, "traffic_confirm")
    assert "did not answer in time, so the outcome was unknown" in clicked.text
    assert "it is on, 10% to the new path" in clicked.text
    assert "not announced as done" in clicked.text
    assert "Verified" not in clicked.text
    assert len(patches(bot)) == 1, "a write that timed out is never blindly repeated"
    assert not events.of("traffic.changed")
    assert "NOT confirmed" in channel_texts(bot)[-1]
    assert bot.store.traffic.history(1)[0]["status"] == "unknown"
    ld.answer_delay = 0


async def test_timeout_without_the_change_applied(traffic_bot):
    bot = await traffic_bot(request_timeout_seconds=0.3)
    shown = await ask(bot, 10)
    ld_of(bot).fail("/api/v2/flags/", method="PATCH", status=500, delay=0.6)
    clicked = await bot.click(shown, "traffic_confirm")
    assert "did not answer in time" in clicked.text and "was not applied" in clicked.text
    assert ld_of(bot).served_weight() == 0


async def test_launchdarkly_unreadable_at_the_click_changes_nothing(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 10)
    ld_of(bot).fail("/api/v2/flags/", method="GET", status=503, times=None)
    clicked = await bot.click(shown, "traffic_confirm")
    assert "could not read the flag from LaunchDarkly, so nothing was changed" in clicked.text
    assert "HTTP 503" in clicked.text
    assert not patches(bot)
    ld_of(bot).clear_faults()
    status = (await bot.command("/cio status")).all_text()
    assert "off (serving the old path)" in status


async def test_rejected_token_shows_launchdarklys_message_and_never_the_token(traffic_bot, sandbox):
    bad = "api-wrong-token-9999"
    bot = await traffic_bot(env={
        "LAUNCHDARKLY_API_TOKEN": bad, "LAUNCHDARKLY_PROJECT": "cio-launch",
        "LAUNCHDARKLY_ENVIRONMENT": "production", "LAUNCHDARKLY_FLAG": "use-customerio",
        "LAUNCHDARKLY_API_URL": sandbox.launchdarkly.url})
    answer = await bot.command("/cio ramp 10")
    assert "HTTP 401" in answer.text and "Invalid access token" in answer.text
    assert bad not in answer.all_text()
    assert len(ld_of(bot).calls(FLAG_PATH)) == 1, "a 401 is not retried"


async def test_unknown_flag_is_reported_with_launchdarklys_404(traffic_bot, sandbox):
    bot = await traffic_bot(env={"LAUNCHDARKLY_API_TOKEN": SANDBOX_LD_TOKEN, "LAUNCHDARKLY_PROJECT": "cio-launch",
                                 "LAUNCHDARKLY_ENVIRONMENT": "production", "LAUNCHDARKLY_FLAG": "nope",
                                 "LAUNCHDARKLY_API_URL": sandbox.launchdarkly.url})
    answer = await bot.command("/cio ramp 10")
    assert "HTTP 404" in answer.text and "Unknown resource" in answer.text


async def test_read_back_that_differs_from_what_was_asked_is_not_announced(traffic_bot):
    bot = await traffic_bot()
    shown = await ask(bot, 50)
    ld = ld_of(bot)
    ld.after_patch.append(lambda: ld.set_rollout(30))  # someone in the UI, right after the bot
    events = Events(bot, "traffic.changed")
    clicked = await bot.click(shown, "traffic_confirm")
    assert "reading it back shows fallthrough weights are 30%/70%, asked 50%/50%" in clicked.text
    assert "it serves 30% to the new path, asked 50%" in clicked.text
    assert "not announced as done" in clicked.text
    assert not events.of("traffic.changed")
    assert "NOT confirmed" in channel_texts(bot)[-1]
    assert bot.store.traffic.history(1)[0]["status"] == "unverified"


async def test_sdk_fraction_outside_the_tolerance_is_not_announced(traffic_bot):
    # 10% of 1,001 contexts is 100.1: no whole count lies within a tolerance this small
    bot = await traffic_bot(verify_z=0.001, verify_sample=1001)
    _, clicked = await ramp(bot, 10)
    assert "outside the tolerance; not announced as done" in clicked.text
    row = bot.store.traffic.history(1)[0]
    assert row["status"] == "unverified" and row["verification"]["ok"] is False
    assert row["verification"]["sample"] == 1001


# -- confirmation clicks ---------------------------------------------------------------------------
async def test_non_operator_click_is_refused_and_the_button_still_works(traffic_bot):
    bot = await traffic_bot()
    asked = await bot.command("/cio ramp 10")
    refused = await bot.click(proposal(asked), "traffic_confirm", user=VIEWER)
    assert "Only launch operators can press this button" in refused.text
    assert not patches(bot)
    ok = await bot.click(proposal(asked), "traffic_confirm", user=OPERATOR_2)
    assert "Verified" in ok.text
    assert bot.store.traffic.history(1)[0]["confirmed_by"] == OPERATOR_2


async def test_expired_button_changes_nothing(traffic_bot, clock):
    bot = await traffic_bot()
    asked = await bot.command("/cio ramp 10")
    clock.advance(10 * 60 + 1)
    late = await bot.click(proposal(asked), "traffic_confirm")
    assert "expired" in late.text and "`/cio ramp 10`" in late.text
    assert not patches(bot)


async def test_double_click_changes_the_flag_once(traffic_bot):
    bot = await traffic_bot()
    ld_of(bot).latency = 0.05
    asked = await bot.command("/cio ramp 10")
    shown = proposal(asked)
    first, second = await asyncio.gather(bot.click(shown, "traffic_confirm"), bot.click(shown, "traffic_confirm"))
    texts = [first.text, second.text]
    assert sum("Verified" in t for t in texts) == 1
    assert any("already confirmed by" in t or "is changing traffic right now" in t for t in texts)
    third = await bot.click(shown, "traffic_confirm")
    assert "already confirmed" in third.text
    assert len(patches(bot)) == 1
    assert len(bot.store.traffic.history(1)) == 1


async def test_two_operators_ramping_at_once(traffic_bot):
    bot = await traffic_bot()
    a = proposal(await bot.command("/cio ramp 10"))
    b = proposal(await bot.command("/cio ramp 20", user=OPERATOR_2))
    ld_of(bot).latency = 0.1
    one, two = await asyncio.gather(bot.click(a, "traffic_confirm"),
                                    bot.click(b, "traffic_confirm", user=OPERATOR_2))
    assert "Verified" in one.text
    assert f"<@{SANDBOX_OPERATOR}> is changing traffic right now (ramp to 10%" in two.text
    assert len(patches(bot)) == 1
    # the second operator's request was made against the old state: it is not applied blindly
    retry = await bot.click(b, "traffic_confirm", user=OPERATOR_2)
    assert "changed in LaunchDarkly since this was asked (version 1 → 2" in retry.text
    assert len(patches(bot)) == 1 and ld_of(bot).served_weight() == 10_000


async def test_rollback_waits_for_an_in_flight_ramp_then_runs(traffic_bot):
    bot = await traffic_bot(rollback_confirmation=False)
    asked = proposal(await bot.command("/cio ramp 10"))
    ld_of(bot).latency = 0.1
    ramp_task = asyncio.create_task(bot.click(asked, "traffic_confirm"))
    await asyncio.sleep(0.05)
    rollback = await bot.command("/cio rollback ramp looks wrong", user=OPERATOR_2)
    await ramp_task
    assert "Verified" in rollback.text
    assert ld_of(bot).env()["on"] is False


# -- the flag changed outside the bot ------------------------------------------------------------------
async def test_flag_changed_outside_the_bot_is_shown_and_not_overwritten_blindly(traffic_bot):
    bot = await traffic_bot()
    await ramp(bot, 10)
    ld_of(bot).set_rollout(30)  # someone in the LaunchDarkly UI

    status = await bot.command("/cio status")
    text = status.all_text()
    assert "on, 30% to the new path" in text
    assert "Changed outside the bot" in text and "version 2 → 3" in text
    assert "serves 30% to the new path, the bot had set 10%" in text

    asked = await bot.command("/cio ramp 50")
    shown = proposal(asked)
    body = asked.all_text()
    assert "30% → 50%" in shown.text
    assert "changed outside the bot" in body and "Overwrite with 50%" in body
    clicked = await bot.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text
    assert "Changed outside" not in (await bot.command("/cio status")).all_text()


async def test_change_between_request_and_click_is_refused(traffic_bot):
    bot = await traffic_bot()
    asked = await bot.command("/cio ramp 10")
    ld_of(bot).set_on(True)
    clicked = await bot.click(proposal(asked), "traffic_confirm")
    assert "changed in LaunchDarkly since this was asked" in clicked.text
    assert not patches(bot)


# -- strict input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, sentence", [
    ("abc", "`abc` is not a percentage: give a whole number from 0 to 100"),
    ("-5", "`-5` is below 0%"),
    ("150", "`150` is above 100%"),
    ("12.5", "`12.5` is not a whole number: traffic moves in whole percents, so use `12` or `13`"),
    ("", "Say what share of traffic should go to Customer.io"),
    ("50 --force", "`--force` needs the reason in quotes"),
    ("50 60", "one word too many"),
    ("50 --fast", "`--fast` is not an option"),
])
async def test_bad_percentages_get_one_sentence_and_change_nothing(traffic_bot, text, sentence):
    bot = await traffic_bot()
    answer = await bot.command(f"/cio ramp {text}")
    assert sentence in answer.text
    assert "Usage: `/cio ramp <0-100>[%]" in answer.text
    assert not ld_of(bot).calls(FLAG_PATH), "bad input never reaches LaunchDarkly"
    assert not bot.store.query("SELECT * FROM traffic_confirmations")


async def test_non_operators_cannot_ramp_or_roll_back(traffic_bot):
    bot = await traffic_bot()
    for text in ("/cio ramp 10", "/cio rollback"):
        answer = await bot.command(text, user=VIEWER)
        assert "Only launch operators" in answer.text
    assert not ld_of(bot).calls(FLAG_PATH)


def test_traffic_config_is_validated():
    assert TrafficConfig.from_settings(Settings()).kill_mode == "flag_off"
    with pytest.raises(ConfigError, match="kill_mode"):
        TrafficConfig.from_settings(Settings(file={"traffic": {"kill_mode": "nuke"}}))
    with pytest.raises(ConfigError, match="unknown key"):
        TrafficConfig.from_settings(Settings(file={"traffic": {"min_soak": 3}}))
    with pytest.raises(ConfigError, match="true or false"):
        TrafficConfig.from_settings(Settings(file={"traffic": {"rollback_confirmation": "no"}}))


async def test_a_failed_rollback_is_an_alarm_in_the_channel_never_a_success(traffic_bot):
    bot = await traffic_bot(rollback_confirmation=False)
    await ramp(bot, 50)
    events = Events(bot, "traffic.rolled_back", "traffic.changed")
    ld_of(bot).fail("/api/v2/flags/", method="PATCH", status=503, times=None)
    answer = await bot.command("/cio rollback bounces")
    assert "answered HTTP 503" in answer.text and "it is on, 50% to the new path" in answer.text
    notice = channel_texts(bot)[-1]
    assert "ROLLBACK NOT CONFIRMED" in notice and "Act in LaunchDarkly now: flag `use-customerio`" in notice
    assert not events.seen
    assert bot.store.traffic.history(1)[0]["status"] == "unknown"
