"""All the fakes together, and the settings that point the bot at them.

Only what is not really configured is pointed at the sandbox: with real Customer.io
credentials and no Slack token, Customer.io stays real and Slack is the fake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from bot.sandbox.customerio import SANDBOX_PROD, SANDBOX_STAGING, FakeCustomerIO
from bot.sandbox.dns import SANDBOX_DKIM_SELECTOR, SANDBOX_DOMAIN, FakeDNS, sandbox_zone
from bot.sandbox.launchdarkly import (
    SANDBOX_LD_ENVIRONMENT,
    SANDBOX_LD_FLAG,
    SANDBOX_LD_PROJECT,
    SANDBOX_LD_TOKEN,
    FakeLaunchDarkly,
)
from bot.sandbox.slack import (
    SANDBOX_BOT_TOKEN,
    SANDBOX_CHANNEL,
    SANDBOX_SIGNING_SECRET,
    FakeSlack,
)
from bot.sandbox.web import FakeWeb

SANDBOX_OPERATOR = "U0OPERATOR"
SANDBOX_VIEWER = "U0VIEWER"


# the sandbox workspace sends from the sandbox domain, whose DNS the sandbox serves
_SENDING = ("CIO_SENDING_DOMAIN", "CIO_DKIM_SELECTORS", "CIO_DNS_NAMESERVERS", "CIO_PUBLIC_URL")
#: where the sandbox workspace's reporting webhook points (the bot "as deployed")
SANDBOX_PUBLIC_URL = "https://cio-launchbot.sandbox.test"


class Sandbox:
    def __init__(self) -> None:
        self.slack = FakeSlack()
        self.customerio = FakeCustomerIO()
        self.customerio_prod, self.customerio_staging = self.customerio.seed_sandbox(bot_url=SANDBOX_PUBLIC_URL)
        self.webhook_signing_key = "sandbox-webhook-signing-key"
        self.web = FakeWeb()  # documentation links (runbook, event catalog, escalation page)
        self.launchdarkly = FakeLaunchDarkly()
        self.dns = FakeDNS()  # the sending domain's records, served over UDP and TCP
        self.dns.load(sandbox_zone())
        self.servers = [self.slack, self.customerio, self.launchdarkly, self.web, self.dns]

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
            "CUSTOMERIO_SITE_ID": SANDBOX_PROD["site_id"],
            "CUSTOMERIO_TRACK_API_KEY": SANDBOX_PROD["track_key"],
            "CUSTOMERIO_APP_API_KEY": SANDBOX_PROD["app_key"],
            "CUSTOMERIO_REGION": "us",
            "CUSTOMERIO_TRACK_URL": self.customerio.url,
            "CUSTOMERIO_APP_URL": self.customerio.url,
            "CUSTOMERIO_WEBHOOK_SIGNING_KEY": self.webhook_signing_key,
            "CUSTOMERIO_STAGING_SITE_ID": SANDBOX_STAGING["site_id"],
            "CUSTOMERIO_STAGING_TRACK_API_KEY": SANDBOX_STAGING["track_key"],
            "CUSTOMERIO_STAGING_APP_API_KEY": SANDBOX_STAGING["app_key"],
            "CIO_SENDING_DOMAIN": SANDBOX_DOMAIN,
            "CIO_PUBLIC_URL": SANDBOX_PUBLIC_URL,
            "CIO_DKIM_SELECTORS": SANDBOX_DKIM_SELECTOR,
            "CIO_DNS_NAMESERVERS": "{}:{}".format(*self.dns.nameserver),
            "LAUNCHDARKLY_API_TOKEN": SANDBOX_LD_TOKEN,
            "LAUNCHDARKLY_PROJECT": SANDBOX_LD_PROJECT,
            "LAUNCHDARKLY_ENVIRONMENT": SANDBOX_LD_ENVIRONMENT,
            "LAUNCHDARKLY_FLAG": SANDBOX_LD_FLAG,
            "LAUNCHDARKLY_API_URL": self.launchdarkly.url,
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
        if not env.get("CUSTOMERIO_SITE_ID"):
            for key, value in fake.items():
                if (key.startswith("CUSTOMERIO_") or key in _SENDING) and not env.get(key):
                    merged[key] = value
        if not env.get("LAUNCHDARKLY_API_TOKEN"):
            for key in ("LAUNCHDARKLY_API_TOKEN", "LAUNCHDARKLY_PROJECT", "LAUNCHDARKLY_ENVIRONMENT",
                        "LAUNCHDARKLY_FLAG", "LAUNCHDARKLY_API_URL"):
                merged[key] = fake[key]
        return merged
