"""The foundation over real HTTP: signed slash commands, refusals, usage, health."""

from __future__ import annotations

import time

from bot.sandbox.requests import signed_headers, slash_body
from bot.sandbox.world import SANDBOX_OPERATOR, SANDBOX_VIEWER


async def test_help_is_answered_within_the_ack(bot):
    answer = await bot.command("/cio help", settle=False)
    assert answer.status == 200
    assert answer.ack is not None, "help must come back in the HTTP answer itself"
    assert answer.ack["response_type"] == "ephemeral"
    text = answer.all_text()
    for usage in ("/cio help", "/cio status", "/cio audit"):
        assert usage in text
    assert answer.elapsed_ms < 3000
    rows = bot.store.audit.recent()
    assert rows[0]["action"] == "/cio help" and rows[0]["outcome"] == "ok"


async def test_slow_work_is_acknowledged_first_and_answered_after(bot, sandbox):
    """Slack gets its ack as soon as the command is accepted; work that waits on a provider
    (here LaunchDarkly holding every answer back) replies through response_url afterwards."""
    sandbox.launchdarkly.answer_delay = 0.5
    answer = await bot.command("/cio status", settle=False)
    assert answer.status == 200 and answer.ack is None and answer.responses == []
    assert bot.services.inflight == 1, "the command is still being worked on after its ack"
    assert await bot.services.idle(timeout=10)
    replies = [m for m in bot.slack.responses if "LaunchDarkly" in m.text or "LaunchDarkly" in str(m.blocks)]
    assert replies, "the status arrived after the ack"
    assert bot.store.audit.recent(1)[0]["outcome"] == "ok"


async def _post(bot, body: str, headers: dict[str, str]) -> tuple[int, str]:
    status, text, _ = await bot.post_slack(body, headers)
    return status, text


def _body(bot, text: str = "help", user: str = SANDBOX_OPERATOR) -> str:
    return slash_body(text, user_id=user, channel_id=bot.channel, response_url=bot.slack.response_url("x"))


async def test_wrong_signature_is_401_and_nothing_recorded(bot):
    body = _body(bot)
    headers = signed_headers("not-the-signing-secret", body)
    status, _ = await _post(bot, body, headers)
    assert status == 401
    assert bot.store.audit.count() == 0
    assert bot.slack.responses == []


async def test_tampered_body_is_401(bot):
    body = _body(bot, "help")
    headers = signed_headers(bot.secret, body)
    status, _ = await _post(bot, body.replace("help", "audit"), headers)
    assert status == 401
    assert bot.store.audit.count() == 0


async def test_stale_timestamp_is_401_and_nothing_recorded(bot):
    body = _body(bot)
    headers = signed_headers(bot.secret, body, timestamp=int(time.time()) - 6 * 60)
    status, _ = await _post(bot, body, headers)
    assert status == 401
    assert bot.store.audit.count() == 0


async def test_missing_signature_headers_are_401(bot):
    body = _body(bot)
    for drop in ("X-Slack-Signature", "X-Slack-Request-Timestamp"):
        headers = signed_headers(bot.secret, body)
        del headers[drop]
        status, _ = await _post(bot, body, headers)
        assert status == 401, drop
    assert bot.store.audit.count() == 0


async def test_operator_command_from_non_operator_is_refused_and_audited(bot):
    answer = await bot.command("/cio audit", user=SANDBOX_VIEWER)
    assert answer.status == 200
    assert "Only launch operators" in answer.text
    assert answer.ack["response_type"] == "ephemeral"
    row = bot.store.audit.recent(1)[0]
    assert (row["user_id"], row["action"], row["outcome"]) == (SANDBOX_VIEWER, "/cio audit", "refused")


async def test_operator_command_from_operator_runs(bot):
    await bot.command("/cio help")
    answer = await bot.command("/cio audit 5")
    assert "Audit trail" in answer.all_text()
    assert "/cio help" in answer.all_text()


async def test_user_group_membership_grants_operator(start_bot, sandbox):
    sandbox.slack.usergroups["S0ONCALL"] = ["U0GROUPIE"]
    bot = await start_bot(env={"CIO_OPERATORS": "U0OPERATOR,S0ONCALL"})
    allowed = await bot.command("/cio audit", user="U0GROUPIE")
    assert "Only launch operators" not in allowed.text
    assert bot.store.audit.recent(1)[0]["outcome"] == "ok"
    refused = await bot.command("/cio audit", user="U0STRANGER")
    assert "Only launch operators" in refused.text
    # membership is cached briefly: a second check does not ask Slack again
    lookups = sandbox.slack.calls("usergroups.users.list")
    await bot.command("/cio audit", user="U0GROUPIE")
    assert len(sandbox.slack.calls("usergroups.users.list")) == len(lookups)


async def test_unreadable_user_group_is_refused_with_reason(start_bot, sandbox):
    bot = await start_bot(env={"CIO_OPERATORS": "U0OPERATOR,S0MISSING"})
    answer = await bot.command("/cio audit", user="U0SOMEONE")
    assert "could not be read from Slack" in answer.text
    assert bot.store.audit.recent(1)[0]["outcome"] == "refused"


async def test_junk_gets_usage(bot):
    for junk in ("", "frobnicate", "launch everything now", "HELP-ME", "ramp' 50"):
        answer = await bot.command(f"/cio {junk}")
        assert answer.status == 200
        assert "Usage" in answer.all_text(), junk
        assert answer.ack["response_type"] == "ephemeral"
    outcomes = {r["outcome"] for r in bot.store.audit.recent(10)}
    assert outcomes == {"usage"}


async def test_unbalanced_quotes_are_explained(bot):
    answer = await bot.command('/cio help "audit')
    assert "quotes" in answer.text
    assert bot.store.audit.recent(1)[0]["outcome"] == "usage"


async def test_bad_arguments_get_a_sentence(bot):
    answer = await bot.command("/cio audit lots")
    assert "whole number from 1 to 100" in answer.text
    assert bot.store.audit.recent(1)[0]["outcome"] == "rejected"
    answer = await bot.command("/cio help nonsense")
    assert "no /cio command called" in answer.text


async def test_status_reports_the_connections(bot):
    answer = await bot.command("/cio status")
    text = answer.all_text()
    assert "Launch channel" in text and "Operators" in text


async def test_healthz_ok_then_503_when_the_database_is_unreadable(bot):
    async with bot.session.get(f"{bot.url}/healthz") as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
    path = bot.store.path
    path.rename(path.with_suffix(".moved"))
    path.write_bytes(b"this is not a database" * 100)
    async with bot.session.get(f"{bot.url}/healthz") as r:
        assert r.status == 503
        body = await r.json()
        assert body == {"status": "unavailable", "database": "database file is not an SQLite database"}
    path.unlink()
    async with bot.session.get(f"{bot.url}/healthz") as r:
        assert r.status == 503
        assert "missing" in (await r.json())["database"]


async def test_button_with_unknown_action_is_answered_and_audited(bot):
    answer = await bot.press("no_such_button", "x")
    assert answer.status == 200
    assert "no longer handled" in answer.text
    assert bot.store.audit.recent(1)[0]["outcome"] == "unknown"
