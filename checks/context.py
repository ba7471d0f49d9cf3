"""What a readiness check needs, as plain values and small client Protocols.

``checks/`` is the bottom layer: it imports nothing from ``bot/``. The bot builds a
:class:`CheckContext` from its Settings and hands the real provider clients in a
:class:`Providers`; tests can hand the sandbox's. Every check is a pure async function of
``(context, providers)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from checks.deliverability.returnpath import ReturnPathExpectation

T = TypeVar("T")


# -- provider clients, as the checks see them ---------------------------------------------------
class RegionAnswer(Protocol):
    url: str
    region: str
    environment_id: int | None


class TrackClient(Protocol):
    """Customer.io Track API (Basic site_id:api_key)."""

    async def region(self) -> RegionAnswer: ...

    async def identify(self, customer_id: str, attributes: dict[str, Any]) -> None: ...

    async def track(self, customer_id: str, name: str, data: dict[str, Any] | None = None,
                    *, timestamp: int | None = None) -> None: ...

    async def suppress(self, customer_id: str) -> None: ...

    async def delete(self, customer_id: str) -> None: ...


class AppClient(Protocol):
    """Customer.io App API (Bearer app key), the read calls the checks make."""

    async def sender_identities(self) -> list[dict[str, Any]]: ...

    async def campaigns(self) -> list[dict[str, Any]]: ...

    async def campaign_actions(self, campaign_id: int | str) -> list[dict[str, Any]]: ...

    async def newsletters(self) -> list[dict[str, Any]]: ...

    async def newsletter_contents(self, newsletter_id: int | str) -> list[dict[str, Any]]: ...

    async def reporting_webhooks(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ChannelInfo:
    exists: bool
    is_member: bool
    name: str = ""


class SlackInfo(Protocol):
    """Does the channel exist, and is the bot in it?"""

    async def channel(self, channel_id: str) -> ChannelInfo: ...


@dataclass(frozen=True)
class URLAnswer:
    """What a URL answered: ``status`` None when nothing answered (``error`` says why)."""

    url: str
    status: int | None
    error: str = ""
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class URLProbe(Protocol):
    async def probe(self, url: str) -> URLAnswer: ...


class FlagClient(Protocol):
    """LaunchDarkly REST API v2, in its own JSON shapes.

    ``get_flag`` answers ``GET /api/v2/flags/{project}/{flag}?env={env}``: ``kind``,
    ``variations[{_id, value}]``, ``environments[env]{on, offVariation, fallthrough, ...}``.
    ``dry_run_patch`` sends a semantic patch with ``?dryRun=true`` (validated, not applied).
    Errors carry the HTTP status in a ``status`` attribute.
    """

    async def get_flag(self, project: str, flag: str, env: str) -> dict[str, Any]: ...

    async def dry_run_patch(self, project: str, flag: str, env: str,
                            instructions: list[dict[str, Any]], comment: str) -> dict[str, Any]: ...


def http_status(exc: BaseException) -> int | None:
    """The HTTP status a provider error carries (``status`` attribute), if any."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


# -- shared work within one run ---------------------------------------------------------------
class Memo:
    """Calls shared by several checks of one run (one region lookup, one flag read).

    The first caller starts the call as a task; every caller awaits it shielded, so one
    check timing out does not cancel the call for the others.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    async def once(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            self._tasks[key] = task
        return await asyncio.shield(task)

    def cancel(self) -> None:
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: an unshared failure is not "never retrieved"


@dataclass
class Providers:
    """The clients a run uses. ``None`` means not configured (the check says so)."""

    track: TrackClient | None = None
    app: AppClient | None = None
    #: the other environment's Track client (staging when checking production), to compare
    other_track: TrackClient | None = None
    slack: SlackInfo | None = None
    web: URLProbe | None = None
    launchdarkly: FlagClient | None = None
    #: more clients for check groups plugged in later (e.g. ``"dns"``: a DNS resolver)
    extra: dict[str, Any] = field(default_factory=dict)
    memo: Memo = field(default_factory=Memo)


# -- configuration and facts -------------------------------------------------------------------
@dataclass(frozen=True)
class CredentialFacts:
    """Facts about the credentials, never the values themselves."""

    #: variable names of this environment that are not set
    missing: tuple[str, ...] = ()
    #: whether the other environment has its Site ID and keys set
    other_configured: bool = False
    #: what is equal to the other environment's ("Site ID", "Track API key", "App API key")
    same_as_other: tuple[str, ...] = ()
    #: credential variables that are also defined in a .env file of the working directory
    dotenv_names: tuple[str, ...] = ()
    dotenv_path: str = ".env"


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds as fractions (rates) and seconds (latency)."""

    api_error_rate: float = 0.01
    bounce_rate: float = 0.05
    complaint_rate: float = 0.001
    p99_latency_seconds: float = 5.0
    #: which of them came from the configuration (the rest are defaults)
    configured: tuple[str, ...] = ()
    #: values in the configuration that could not be read
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationTier:
    name: str
    delay_minutes: float
    mentions: tuple[str, ...]


@dataclass(frozen=True)
class SignoffState:
    item_id: str
    state: str  # confirmed | revoked
    by: str
    at: float  # unix seconds


@dataclass(frozen=True)
class SignoffItem:
    id: str  # e.g. "campaigns.signoff.test_sends"
    category: str
    title: str
    description: str
    state: SignoffState | None = None


DEFAULT_SIGNOFFS: tuple[SignoffItem, ...] = (
    SignoffItem("campaigns.signoff.test_sends", "campaigns", "Test sends reviewed",
                "Someone has received and reviewed a test send of every launch campaign and "
                "newsletter (rendering, links, personalisation, unsubscribe)."),
    SignoffItem("testing.signoff.staging_e2e", "testing", "Staging end-to-end passed",
                "The integration has run end to end in staging: identify, events, campaign "
                "triggered, message received."),
    SignoffItem("testing.signoff.load_test", "testing", "Load test done",
                "The integration has been load tested at the expected production volume "
                "without Track API errors or throttling."),
)

SMOKE_PREFIX = "cio-launchbot-smoke-test"


@dataclass(frozen=True)
class CheckContext:
    """Everything a check reads, as plain values."""

    environment: str = "production"
    other_environment: str = "staging"
    region: str = "us"
    region_urls: Mapping[str, tuple[str, str]] = field(default_factory=lambda: {
        "us": ("https://track.customer.io", "https://api.customer.io"),
        "eu": ("https://track-eu.customer.io", "https://api-eu.customer.io"),
    })
    credentials: CredentialFacts = CredentialFacts()
    sending_domain: str | None = None
    #: DKIM selectors to look up (for the DNS deliverability group)
    dkim_selectors: tuple[str, ...] = ()
    #: what the Customer.io return-path subdomain must publish (CIO_CONFIG [deliverability])
    return_path: ReturnPathExpectation | None = None
    public_url: str | None = None
    webhook_path: str = "/webhooks/customerio"
    catalog_path: str | None = None
    postal_address: str | None = None
    thresholds: Thresholds = Thresholds()
    launch_channel: str | None = None
    operators: tuple[str, ...] = ()
    escalation: tuple[EscalationTier, ...] = ()
    runbook_url: str | None = None
    event_catalog_url: str | None = None
    escalation_url: str | None = None
    flag_project: str | None = None
    flag_environment: str | None = None
    flag_key: str | None = None
    backup_messaging: str | None = None
    notification_plan: str | None = None
    signoffs: tuple[SignoffItem, ...] = DEFAULT_SIGNOFFS
    #: why the LaunchDarkly checks cannot run, when they cannot (client not configured…)
    launchdarkly_unavailable: str | None = None
    #: unix seconds at the start of the run (test profile ids, event timestamps)
    now: float = 0.0
    #: the variable-name prefix of this environment's credentials, for fixes
    variable_prefix: str = "CUSTOMERIO_"
