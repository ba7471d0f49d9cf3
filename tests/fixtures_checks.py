"""Fixtures for the readiness checks: a sandbox configured so every check can pass, and
a ReadinessService on it talking to the fakes over real HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.providers.slack import SlackGateway
from bot.readiness import ReadinessService
from bot.sandbox.world import Sandbox
from bot.store import Store
from checks.base import CheckResult
from checks.context import DEFAULT_SIGNOFFS

PUBLIC_URL = "https://cio-bot.example.test"
SENDING_DOMAIN = "example.com"

GOOD_CATALOG: dict[str, Any] = {
    "identify": [
        {"id": "user-123", "attributes": {"email": "ada@example.com", "created_at": 1764547200,
                                          "plan": "pro", "first_name": "Ada"}},
    ],
    "events": [
        {"name": "order_completed", "timestamp": 1764547200, "data": {"order_id": "A-1", "total": 42.5}},
        {"name": "signed_up", "timestamp": 1764547100, "data": {"source": "web"}},
    ],
}


def write_catalog(directory: Path, catalog: dict[str, Any] | str, name: str = "events.yaml") -> Path:
    import yaml

    path = directory / name
    if isinstance(catalog, str):
        path.write_text(catalog)
    elif name.endswith(".json"):
        path.write_text(json.dumps(catalog))
    else:
        path.write_text(yaml.safe_dump(catalog))
    return path


def config_toml(web_url: str, *, catalog: str = "events.yaml", extra: str = "",
                documentation: bool = True, rollback: bool = True, escalation: bool = True) -> str:
    parts = [f'[checks]\nevent_catalog = "{catalog}"\ntimeout_seconds = 5\nupdate_interval_seconds = 0.05\n']
    if documentation:
        parts.append(f'[documentation]\nrunbook_url = "{web_url}/runbook"\n'
                     f'event_catalog_url = "{web_url}/events"\nescalation_url = "{web_url}/escalation"\n')
    if rollback:
        parts.append('[rollback]\nbackup_messaging = "SendGrid account stays warm for 30 days"\n'
                     'notification_plan = "Post in #launch and email the support leads"\n')
    if escalation:
        parts.append('[[alerts.escalation]]\nname = "on-call"\ndelay_minutes = 10\nmentions = ["U0ONCALL"]\n')
    parts.append(extra)
    return "\n".join(parts)


def ready_env(tmp_path: Path, sandbox: Sandbox, *, catalog: dict[str, Any] | str | None = None,
              toml: str | None = None, catalog_name: str = "events.yaml") -> dict[str, str]:
    """Variables (over the sandbox overlay) with which every check passes."""
    for ws in sandbox.customerio.workspaces:
        for hook in ws.reporting_webhooks:
            hook["endpoint"] = PUBLIC_URL + "/webhooks/customerio"
    write_catalog(tmp_path, GOOD_CATALOG if catalog is None else catalog, catalog_name)
    cfg = tmp_path / "cio.toml"
    cfg.write_text(toml if toml is not None else config_toml(sandbox.web.url, catalog=catalog_name))
    return {"CIO_CONFIG": str(cfg), "CIO_PUBLIC_URL": PUBLIC_URL, "CIO_SENDING_DOMAIN": SENDING_DOMAIN,
            "CIO_DB_PATH": str(tmp_path / "checks.db")}


class HTTPStatusError(Exception):
    """An error carrying an HTTP status, as the project's ProviderError does."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status


class FlagDouble:
    """Test double of the LaunchDarkly client Protocol (checks.context.FlagClient).

    The project's LaunchDarkly provider and its sandbox fake are being built on another
    branch (``traffic``); until they land, this small object stands in for that external
    service's client. It answers in LaunchDarkly's REST shapes.
    """

    def __init__(self) -> None:
        self.flag: dict[str, Any] = {
            "key": "cio-traffic", "kind": "boolean", "_version": 3,
            "variations": [{"_id": "v-true", "value": True}, {"_id": "v-false", "value": False}],
            "environments": {"production": {"on": False, "offVariation": 1, "version": 7,
                                            "fallthrough": {"variation": 0}}},
        }
        self.get_error: Exception | None = None
        self.patch_error: Exception | None = None
        self.patches: list[dict[str, Any]] = []

    async def get_flag(self, project: str, flag: str, env: str) -> dict[str, Any]:
        if self.get_error is not None:
            raise self.get_error
        return copy.deepcopy(self.flag)

    async def dry_run_patch(self, project: str, flag: str, env: str, instructions: list[dict[str, Any]],
                            comment: str) -> dict[str, Any]:
        self.patches.append({"project": project, "flag": flag, "env": env, "instructions": instructions,
                             "comment": comment})
        if self.patch_error is not None:
            raise self.patch_error
        return copy.deepcopy(self.flag)


LD_ENV = {"LAUNCHDARKLY_API_TOKEN": "api-sandbox-ld-token", "LAUNCHDARKLY_PROJECT": "default",
          "LAUNCHDARKLY_ENVIRONMENT": "production", "LAUNCHDARKLY_FLAG": "cio-traffic"}


class Kit:
    def __init__(self, tmp_path: Path, sandbox: Sandbox) -> None:
        self.tmp_path = tmp_path
        self.sandbox = sandbox
        self.cio = sandbox.customerio
        self.prod = sandbox.customerio_prod
        self.staging = sandbox.customerio_staging
        self.stores: list[Store] = []
        self.slacks: list[SlackGateway] = []

    def service(self, env: dict[str, str] | None = None, *, launchdarkly: Any = None,
                ready: bool = True, toml: str | None = None,
                catalog: dict[str, Any] | str | None = None,
                catalog_name: str = "events.yaml") -> ReadinessService:
        """A service on the sandbox; ``ready`` writes the config with which every check passes
        (``toml`` replaces that config, ``catalog`` the event catalog)."""
        base = (ready_env(self.tmp_path, self.sandbox, toml=toml, catalog=catalog, catalog_name=catalog_name)
                if ready else {"CIO_DB_PATH": str(self.tmp_path / "c.db")})
        settings = Settings.from_env(self.sandbox.overlay({**base, **(env or {})}))
        store = Store(settings.db_path)
        assert settings.slack_bot_token is not None
        slack = SlackGateway(settings.slack_bot_token.reveal(), settings.slack_api_url)
        self.stores.append(store)
        self.slacks.append(slack)
        return ReadinessService(settings, store, slack=slack, launchdarkly=launchdarkly)

    async def run(self, service: ReadinessService, *categories: str,
                  environment: str = "production") -> dict[str, CheckResult]:
        report = await service.run(environment=environment, categories=categories, actor="U0TESTER",
                                   source="test")
        return {r.id: r for r in report.results}

    async def close(self) -> None:
        for slack in self.slacks:
            session = getattr(slack.client, "session", None)
            if session is not None:
                await session.close()
        for store in self.stores:
            store.close()


@pytest.fixture
async def kit(tmp_path, sandbox) -> AsyncIterator[Kit]:
    k = Kit(tmp_path, sandbox)
    yield k
    await k.close()


def confirm_all_signoffs(store: Store, channel: str = "C0LAUNCH01", user: str = "U0OPERATOR") -> None:
    """Confirm every sign-off of the channel's launch (begun here if none exists yet)."""
    launch_id = int(store.launches.ensure(channel, user)["id"])
    for item in DEFAULT_SIGNOFFS:
        store.checks.set_signoff(launch_id, item.id, "confirmed", user, 1764547200.0)
