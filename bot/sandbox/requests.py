"""Requests as Slack sends them: slash-command and block-action bodies, signed.

Used by the console and the tests to speak to the bot exactly as Slack would.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.slack import SANDBOX_TEAM

_trigger = itertools.count(1)


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def slash_body(
    text: str, *, user_id: str, channel_id: str, response_url: str, command: str = "/cio"
) -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": SANDBOX_TEAM,
            "team_domain": "sandbox",
            "channel_id": channel_id,
            "channel_name": "cio-launch",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0SANDBOX",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{next(_trigger)}.sandbox",
        }
    )


def action_body(
    *,
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str | None,
    response_url: str,
    block_id: str | None = None,
    message: dict[str, Any] | None = None,
) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": SANDBOX_TEAM, "domain": "sandbox"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": SANDBOX_TEAM},
        "api_app_id": "A0SANDBOX",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                      "is_ephemeral": message_ts is None},
        "trigger_id": f"{next(_trigger)}.sandbox",
        "channel": {"id": channel_id, "name": "cio-launch"},
        "message": message or ({"ts": message_ts, "type": "message"} if message_ts else None),
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id or "b",
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
