"""Configuration from the environment (12-factor) plus an optional TOML file.

Every problem stops start-up with one sentence naming the variable and what is accepted.
Secret values are wrapped in :class:`~bot.secrets.Secret` the moment they are read.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.secrets import Secret

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_LAUNCHDARKLY_API_URL = "https://app.launchdarkly.com"
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com"
REGION_URLS = {
    "us": ("https://track.customer.io", "https://api.customer.io"),
    "eu": ("https://track-eu.customer.io", "https://api-eu.customer.io"),
}

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
OPERATOR_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")

#: Every variable the bot reads, with a one-line description (the README lists the same).
VARIABLES: dict[str, str] = {
    "SLACK_BOT_TOKEN": "Bot token (xoxb-…); without it the bot talks to the built-in sandbox",
    "SLACK_SIGNING_SECRET": "Signing secret used to verify requests from Slack",
    "SLACK_APP_TOKEN": "App-level token (xapp-…); when set, Slack traffic uses Socket Mode",
    "SLACK_API_URL": "Slack Web API base URL, with trailing slash",
    "CIO_LAUNCH_CHANNEL": "Channel ID (C…) of the launch channel",
    "CIO_OPERATORS": "Comma-separated user IDs (U…/W…) and user-group IDs (S…) allowed to change traffic",
    "CIO_DB_PATH": "SQLite database file",
    "CIO_TIMEZONE": "IANA time zone for plans and messages",
    "CIO_CONFIG": "Optional TOML file with thresholds, escalation tiers, milestone plan",
    "CIO_PUBLIC_URL": "Public base URL of this bot (for webhook checks), e.g. https://bot.example.com",
    "PORT": "HTTP port",
    "CUSTOMERIO_SITE_ID": "Production Track API Site ID",
    "CUSTOMERIO_TRACK_API_KEY": "Production Track API key",
    "CUSTOMERIO_APP_API_KEY": "Production App API key",
    "CUSTOMERIO_REGION": "Account region: us or eu",
    "CUSTOMERIO_TRACK_URL": "Override the Track API base URL",
    "CUSTOMERIO_APP_URL": "Override the App API base URL",
    "CUSTOMERIO_WEBHOOK_SIGNING_KEY": "Signing key of Customer.io reporting webhooks",
    "CUSTOMERIO_STAGING_SITE_ID": "Staging Track API Site ID",
    "CUSTOMERIO_STAGING_TRACK_API_KEY": "Staging Track API key",
    "CUSTOMERIO_STAGING_APP_API_KEY": "Staging App API key",
    "LAUNCHDARKLY_API_TOKEN": "LaunchDarkly REST API access token (writer role)",
    "LAUNCHDARKLY_PROJECT": "LaunchDarkly project key",
    "LAUNCHDARKLY_ENVIRONMENT": "LaunchDarkly environment key",
    "LAUNCHDARKLY_FLAG": "Key of the boolean flag that routes traffic to Customer.io",
    "LAUNCHDARKLY_API_URL": "LaunchDarkly base URL",
    "LAUNCHDARKLY_SDK_KEY": "Optional server SDK key, to verify rollouts on the SDK stream",
    "CIO_SENDING_DOMAIN": "Domain you send email from (From: domain)",
    "CIO_DKIM_SELECTORS": "Comma-separated DKIM selectors to check",
    "CIO_DNS_NAMESERVERS": "Comma-separated host[:port] resolvers for DNS checks (default: system)",
    "CIO_ALERTMANAGER_TOKEN": "Bearer token Alertmanager sends to /webhooks/alertmanager (or [alerts] alertmanager_token)",
    "PAGERDUTY_ROUTING_KEY": "Optional PagerDuty Events API v2 routing key: alerts trigger/acknowledge/resolve there too",
    "PAGERDUTY_EVENTS_URL": "PagerDuty Events API base URL",
}

SECRET_VARIABLES = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "CUSTOMERIO_TRACK_API_KEY",
        "CUSTOMERIO_APP_API_KEY",
        "CUSTOMERIO_WEBHOOK_SIGNING_KEY",
        "CUSTOMERIO_STAGING_TRACK_API_KEY",
        "CUSTOMERIO_STAGING_APP_API_KEY",
        "LAUNCHDARKLY_API_TOKEN",
        "LAUNCHDARKLY_SDK_KEY",
        "CIO_ALERTMANAGER_TOKEN",
        "PAGERDUTY_ROUTING_KEY",
    }
)


class ConfigError(Exception):
    """A configuration problem, stated as one sentence that names the variable."""


@dataclass(frozen=True)
class ConfigTable:
    """One table of the CIO_CONFIG file, read key by key.

    Each reader returns the default when the key is absent and refuses a bad value with one
    sentence naming the table, the key, what is accepted and what was found, e.g.
    ``[checks] timeout_seconds in CIO_CONFIG must be a number from 0.05 to 300, got 0.``
    """

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def refuse(self, key: str, accepted: str, value: Any) -> ConfigError:
        """The error for ``key``: it must be ``accepted`` and is ``value``."""
        return ConfigError(f"[{self.name}] {key} in CIO_CONFIG must be {accepted}, got {value!r}.")

    def reject_unknown(self, known: Iterable[str]) -> None:
        """Refuse keys outside ``known`` (a typo must not silently keep a default)."""
        known = set(known)
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise ConfigError(
                f"[{self.name}] in CIO_CONFIG has unknown key(s) {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(known))}."
            )

    def number(self, key: str, default: float, low: float, high: float = math.inf, *, whole: bool = False) -> float:
        """A number (not a boolean) from ``low`` to ``high``, both included."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high \
                or (whole and int(value) != value):
            bounds = f"from {low:g} to {high:g}" if high < math.inf else f"≥ {low:g}"
            raise self.refuse(key, f"{'a whole number' if whole else 'a number'} {bounds}", value)
        return float(value)

    def integer(self, key: str, default: int, low: float, high: float = math.inf) -> int:
        """A whole number from ``low`` to ``high`` (``2.0`` is 2; ``2.9`` is refused, not cut)."""
        return int(self.number(key, default, low, high, whole=True))

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self.refuse(key, "true or false", value)
        return value

    def string(self, key: str, default: str) -> str:
        """A non-empty string, as written (names, URLs)."""
        value = self.values.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.refuse(key, "a non-empty string", value)
        return value

    def text(self, key: str) -> str | None:
        """Optional free text, stripped; absent or blank is None."""
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.refuse(key, "a string", value)
        return value.strip() or None

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        """One of ``choices``."""
        value = self.values.get(key, default)
        if value not in choices:
            quoted = [f'"{c}"' for c in choices]
            accepted = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
            raise self.refuse(key, accepted, value)
        return value


@dataclass(frozen=True)
class CustomerIOCredentials:
    site_id: str | None
    track_api_key: Secret | None
    app_api_key: Secret | None

    @property
    def complete(self) -> bool:
        return bool(self.site_id and self.track_api_key and self.app_api_key)


@dataclass(frozen=True)
class Settings:
    slack_bot_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_app_token: Secret | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL

    launch_channel: str | None = None
    operators: tuple[str, ...] = ()
    db_path: Path = Path("cio-launchbot.db")
    timezone_name: str = "UTC"
    port: int = 3000
    config_path: Path | None = None
    public_url: str | None = None
    file: Mapping[str, Any] = field(default_factory=dict)

    customerio: CustomerIOCredentials = CustomerIOCredentials(None, None, None)
    customerio_staging: CustomerIOCredentials = CustomerIOCredentials(None, None, None)
    customerio_region: str = "us"
    customerio_track_url_override: str | None = None
    customerio_app_url_override: str | None = None
    customerio_webhook_signing_key: Secret | None = None

    launchdarkly_api_token: Secret | None = None
    launchdarkly_project: str | None = None
    launchdarkly_environment: str | None = None
    launchdarkly_flag: str | None = None
    launchdarkly_api_url: str = DEFAULT_LAUNCHDARKLY_API_URL
    launchdarkly_sdk_key: Secret | None = None

    sending_domain: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    dns_nameservers: tuple[tuple[str, int], ...] = ()

    alertmanager_token: Secret | None = None
    pagerduty_routing_key: Secret | None = None
    pagerduty_events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL

    # -- derived -------------------------------------------------------------------------
    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def customerio_track_url(self) -> str:
        return self.customerio_track_url_override or REGION_URLS[self.customerio_region][0]

    @property
    def customerio_app_url(self) -> str:
        return self.customerio_app_url_override or REGION_URLS[self.customerio_region][1]

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def customerio_configured(self) -> bool:
        return self.customerio.complete

    @property
    def launchdarkly_configured(self) -> bool:
        return self.launchdarkly_api_token is not None

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def section(self, name: str) -> Mapping[str, Any]:
        """A table of the CIO_CONFIG file (empty when absent)."""
        value = self.file.get(name, {})
        return value if isinstance(value, Mapping) else {}

    def table(self, name: str) -> ConfigTable:
        """A table of the CIO_CONFIG file with its readers (empty when absent)."""
        return ConfigTable(name, self.section(name))

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        def secret(name: str) -> Secret | None:
            value = get(name)
            return Secret(value) if value else None

        def url(name: str, default: str | None = None, *, trailing_slash: bool = False) -> str | None:
            value = get(name)
            if value is None:
                return default
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(
                    f"{name} must be an http(s) URL such as https://example.com/, not {value!r}."
                )
            if trailing_slash and not value.endswith("/"):
                value += "/"
            if not trailing_slash:
                value = value.rstrip("/")
            return value

        channel = get("CIO_LAUNCH_CHANNEL")
        if channel is not None and not CHANNEL_ID.match(channel):
            raise ConfigError(
                f"CIO_LAUNCH_CHANNEL must be a Slack channel ID such as C0123456789 "
                f"(not a #name), got {channel!r}."
            )

        operators: list[str] = []
        for item in (get("CIO_OPERATORS") or "").split(","):
            item = item.strip()
            if not item:
                continue
            if not OPERATOR_ID.match(item):
                raise ConfigError(
                    "CIO_OPERATORS must list Slack user IDs (U…/W…) or user-group IDs (S…) "
                    f"separated by commas, and {item!r} is neither."
                )
            operators.append(item)

        tz = get("CIO_TIMEZONE") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"CIO_TIMEZONE must be an IANA time zone such as Europe/Berlin or UTC, got {tz!r}."
            ) from None

        port_text = get("PORT") or "3000"
        try:
            port = int(port_text)
            if not 0 <= port <= 65535:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"PORT must be a whole number between 0 and 65535, got {port_text!r}."
            ) from None

        config_path_text = get("CIO_CONFIG")
        config_path = Path(config_path_text) if config_path_text else None
        file_data: dict[str, Any] = {}
        if config_path is not None:
            file_data = load_config_file(config_path)

        region = (get("CUSTOMERIO_REGION") or "us").lower()
        if region not in REGION_URLS:
            raise ConfigError(f"CUSTOMERIO_REGION must be 'us' or 'eu', got {region!r}.")

        selectors = tuple(s.strip() for s in (get("CIO_DKIM_SELECTORS") or "").split(",") if s.strip())
        nameservers = tuple(
            parse_nameserver(item.strip(), "CIO_DNS_NAMESERVERS")
            for item in (get("CIO_DNS_NAMESERVERS") or "").split(",")
            if item.strip()
        )

        domain = get("CIO_SENDING_DOMAIN")
        if domain is not None:
            domain = domain.lower().rstrip(".")
            if not re.match(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", domain):
                raise ConfigError(
                    f"CIO_SENDING_DOMAIN must be a domain name such as mail.example.com, got {domain!r}."
                )

        return cls(
            slack_bot_token=secret("SLACK_BOT_TOKEN"),
            slack_signing_secret=secret("SLACK_SIGNING_SECRET"),
            slack_app_token=secret("SLACK_APP_TOKEN"),
            slack_api_url=url("SLACK_API_URL", DEFAULT_SLACK_API_URL, trailing_slash=True)
            or DEFAULT_SLACK_API_URL,
            launch_channel=channel,
            operators=tuple(operators),
            db_path=Path(get("CIO_DB_PATH") or "cio-launchbot.db"),
            timezone_name=tz,
            port=port,
            config_path=config_path,
            public_url=url("CIO_PUBLIC_URL"),
            file=file_data,
            customerio=CustomerIOCredentials(
                get("CUSTOMERIO_SITE_ID"),
                secret("CUSTOMERIO_TRACK_API_KEY"),
                secret("CUSTOMERIO_APP_API_KEY"),
            ),
            customerio_staging=CustomerIOCredentials(
                get("CUSTOMERIO_STAGING_SITE_ID"),
                secret("CUSTOMERIO_STAGING_TRACK_API_KEY"),
                secret("CUSTOMERIO_STAGING_APP_API_KEY"),
            ),
            customerio_region=region,
            customerio_track_url_override=url("CUSTOMERIO_TRACK_URL"),
            customerio_app_url_override=url("CUSTOMERIO_APP_URL"),
            customerio_webhook_signing_key=secret("CUSTOMERIO_WEBHOOK_SIGNING_KEY"),
            launchdarkly_api_token=secret("LAUNCHDARKLY_API_TOKEN"),
            launchdarkly_project=get("LAUNCHDARKLY_PROJECT"),
            launchdarkly_environment=get("LAUNCHDARKLY_ENVIRONMENT"),
            launchdarkly_flag=get("LAUNCHDARKLY_FLAG"),
            launchdarkly_api_url=url("LAUNCHDARKLY_API_URL", DEFAULT_LAUNCHDARKLY_API_URL)
            or DEFAULT_LAUNCHDARKLY_API_URL,
            launchdarkly_sdk_key=secret("LAUNCHDARKLY_SDK_KEY"),
            sending_domain=domain,
            dkim_selectors=selectors,
            dns_nameservers=nameservers,
            alertmanager_token=secret("CIO_ALERTMANAGER_TOKEN"),
            pagerduty_routing_key=secret("PAGERDUTY_ROUTING_KEY"),
            pagerduty_events_url=url("PAGERDUTY_EVENTS_URL", DEFAULT_PAGERDUTY_EVENTS_URL)
            or DEFAULT_PAGERDUTY_EVENTS_URL,
        )


def parse_nameserver(text: str, variable: str) -> tuple[str, int]:
    """``host`` or ``host:port`` (``[v6]:port`` for IPv6) -> (host, port)."""
    host, port = text, 53
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"{variable} entry {text!r} is not host[:port].")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest:
            port_text = rest.lstrip(":")
            port = _port(port_text, variable, text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, variable, text)
    if not host:
        raise ConfigError(f"{variable} entry {text!r} is not host[:port].")
    return host, port


def _port(text: str, variable: str, entry: str) -> int:
    try:
        port = int(text)
        if not 1 <= port <= 65535:
            raise ValueError
        return port
    except ValueError:
        raise ConfigError(
            f"{variable} entry {entry!r} has an invalid port; use host or host:port."
        ) from None


#: the tables a CIO_CONFIG file may hold (a misspelt table must not be silently ignored)
CONFIG_TABLES = ("alerts", "checks", "deliverability", "documentation", "rollback", "timeline", "traffic")


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"CIO_CONFIG names {str(path)!r}, which cannot be read ({exc.strerror or exc}); "
            "point it at a readable TOML file or unset it."
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"CIO_CONFIG file {str(path)!r} is not valid TOML ({exc}); fix the file or unset it."
        ) from None
    unknown = sorted(set(data) - set(CONFIG_TABLES))
    if unknown:
        raise ConfigError(
            f"CIO_CONFIG file {str(path)!r} has unknown table(s) {', '.join(unknown)}; "
            f"known tables are {', '.join(CONFIG_TABLES)}."
        )
    return data
