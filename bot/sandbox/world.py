"""All the fakes together, and the settings that point the bot at them.

Only what is not really configured is pointed at the sandbox: with real Customer.io
credentials and no Slack token, Customer.io stays real and Slack is the fake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from bot.sandbox.slack import (
    SANDBOX_BOT_TOKEN,
    SANDBOX_CHANNEL,
    SANDBOX_SIGNING_SECRET,
    FakeSlack,
)

SANDBOX_OPERATOR = "U0OPERATOR"
SANDBOX_VIEWER = "U0VIEWER"


class Sandbox:
    def __init__(self) -> None:
        self.slack = FakeSlack()
        self.servers = [self.slack]

    async def start(self) -> Sandbox:
        for server in self.servers:
            await server.start()
        return self

    async def stop(self) -> None:
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                await server.stop()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def env(self) -> dict[str, str]:
        """Variables that point every provider at the fakes."""
        return {
            "SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SANDBOX_SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "CIO_LAUNCH_CHANNEL": SANDBOX_CHANNEL,
            "CIO_OPERATORS": SANDBOX_OPERATOR,
        }

    def overlay(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with the sandbox filling in every provider that is not configured."""
        merged = dict(env)
        fake = self.env()
        if not env.get("SLACK_BOT_TOKEN"):
            for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
                merged[key] = fake[key]
            merged.pop("SLACK_APP_TOKEN", None)
            for key in ("CIO_LAUNCH_CHANNEL", "CIO_OPERATORS"):
                if not env.get(key):
                    merged[key] = fake[key]
        return merged
