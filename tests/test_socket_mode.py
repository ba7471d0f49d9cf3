"""Socket Mode: with SLACK_APP_TOKEN, Slack traffic arrives over a WebSocket, not HTTP."""

from __future__ import annotations

from urllib.parse import parse_qsl

from bot.sandbox.requests import slash_body
from bot.sandbox.slack import SANDBOX_APP_TOKEN, SANDBOX_BOT_TOKEN


async def test_slash_command_over_socket_mode_and_no_http_slack_endpoint(start_bot, sandbox):
    bot = await start_bot(env={"SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
                               "SLACK_API_URL": sandbox.slack.api_url,
                               "SLACK_APP_TOKEN": SANDBOX_APP_TOKEN})
    assert bot.runtime.socket_handler is not None
    payload = dict(parse_qsl(slash_body("help", user_id="U0OPERATOR", channel_id=bot.channel,
                                        response_url=sandbox.slack.response_url("sm"))))
    ack = await sandbox.slack.socket_send("slash_commands", payload)
    assert "/cio status" in str(ack["payload"])
    assert bot.store.audit.recent(1)[0]["action"] == "/cio help"
    # Slack does not come in over HTTP in Socket Mode; health still does
    async with bot.session.post(f"{bot.url}/slack/events", data=b"x") as r:
        assert r.status == 404
    async with bot.session.get(f"{bot.url}/healthz") as r:
        assert r.status == 200


async def test_socket_mode_refusal_is_the_same_as_over_http(start_bot, sandbox):
    bot = await start_bot(env={"SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
                               "SLACK_API_URL": sandbox.slack.api_url,
                               "SLACK_APP_TOKEN": SANDBOX_APP_TOKEN})
    payload = dict(parse_qsl(slash_body("audit", user_id="U0VIEWER", channel_id=bot.channel,
                                        response_url=sandbox.slack.response_url("sm2"))))
    ack = await sandbox.slack.socket_send("slash_commands", payload)
    assert "Only launch operators" in str(ack["payload"])
    assert bot.store.audit.recent(1)[0]["outcome"] == "refused"
