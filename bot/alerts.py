"""Alerts and escalation: intake, rolling-window evaluation, alert lifecycle, escalation, probe.

Data flow::

    Customer.io webhook -> verify (HMAC, 5 min window) -> group commit (event id + per-minute
    counter, one transaction per batch, then 200) -> evaluation every minute over rolling
    windows -> breach held N evaluations -> one alert per (launch, metric) -> Slack message
    updated in place -> escalation tiers on durable timers -> resolved after N good evaluations.

    Alertmanager webhook (v4, bearer token) and the synthetic Track API probe feed the same
    lifecycle.

Every state change is written to the store before anything is announced; Slack messages,
escalation notices and PagerDuty events are an outbox (``dirty`` alerts, unnotified
escalation steps, PagerDuty state behind the alert state) that :meth:`AlertsService.flush`
works off after each change and on every tick, so a failed post or a restart only delays
them.

Events: publishes ``alert.fired``, ``alert.acknowledged``, ``alert.resolved`` and (auto-rollback)
``rollback.requested``; subscribes to ``traffic.changed`` (to know when a ramp is under way)
and ``traffic.rolled_back`` (pages the first escalation tier).

Configuration (``CIO_CONFIG``; every key optional)::

    [alerts]
    fire_after = 3                  # evaluations a breach must hold before an alert fires
    resolve_after = 3               # good evaluations before it resolves itself
    evaluate_seconds = 60           # evaluation period
    probe_seconds = 60              # Track API probe period
    probe_timeout_seconds = 10
    escalation_tick_seconds = 15    # how often due escalation steps are claimed
    escalation_repeat = 0           # times the whole path repeats after the last tier (<= 9)
    escalation_repeat_minutes = 30  # wait after the last tier before a repeat starts
    auto_rollback = false           # a critical breach during a ramp requests a rollback
    alertmanager_token = "…"        # or the CIO_ALERTMANAGER_TOKEN variable (preferred)
    dedup_days = 7                  # how long webhook event ids are kept for deduplication
    intake_synchronous = "FULL"     # SQLite fsync per intake batch (NORMAL: not on power loss)
    intake_linger_ms = 2            # how long a batch waits for more events before committing

    [alerts.thresholds]             # a limit, or a table {limit, critical, min_samples}
    bounce_rate = "5%"              # bounced / sent over 1 h          (min 100 sent)
    complaint_rate = "0.1%"         # spammed / delivered over 1 h     (min 1000 delivered)
    api_error_rate = { limit = "1%", critical = "5%", min_samples = 5 }   # probe, 5 min
    api_p99_latency = "5s"          # probe, 5 min                     (min 5 calls)

    [[alerts.escalation]]           # ordered tiers; default: CIO_OPERATORS at once
    name = "On-call"
    delay_minutes = 0               # after the alert fired (later tiers: after the tier before)
    mentions = ["U0123ONCALL", "S0456SRE"]   # users (U…/W…), user groups (S…), "here"
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    SectionBlock,
)

from bot import blocks, liveness
from bot.blocks import escape
from bot.config import OPERATOR_ID, ConfigError, Settings
from bot.errors import PermissionDenied, UserError
from bot.health import HealthFinding
from bot.providers.http import ProviderError, RetryPolicy
from bot.secrets import Secret
from bot.status import StatusSection
from bot.store.alerts import IntakeEvent, IntakeWriter

if TYPE_CHECKING:
    from bot.providers.customerio import TrackAPI
    from bot.providers.pagerduty import PagerDutyEvents
    from bot.services import Services
    from bot.store.alerts import AlertsRepo

log = logging.getLogger(__name__)

ACK, ESCALATE, RESOLVE = "alerts.ack", "alerts.escalate", "alerts.resolve"

#: Customer.io reporting-webhook metrics per object type. Anything else is refused (422).
CIO_METRICS: dict[str, frozenset[str]] = {
    "email": frozenset({"drafted", "attempted", "sent", "delivered", "opened", "clicked", "human_clicked",
                        "converted", "bounced", "dropped", "deferred", "spammed", "unsubscribed", "failed",
                        "undeliverable", "suppressed"}),
    "push": frozenset({"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
                       "bounced", "dropped", "failed", "undeliverable"}),
    "sms": frozenset({"drafted", "attempted", "sent", "delivered", "clicked", "human_clicked", "converted",
                      "bounced", "failed", "undeliverable", "unsubscribed"}),
    "in_app": frozenset({"drafted", "attempted", "sent", "opened", "clicked", "converted", "dismissed",
                         "failed", "undeliverable"}),
    "slack": frozenset({"drafted", "attempted", "sent", "clicked", "human_clicked", "converted", "failed",
                        "undeliverable"}),
    "webhook": frozenset({"drafted", "attempted", "sent", "clicked", "human_clicked", "converted", "failed",
                          "undeliverable"}),
    "customer": frozenset({"subscribed", "unsubscribed", "cio_subscription_preferences_changed"}),
}

MAX_WEBHOOK_BYTES = 256 * 1024
TIMESTAMP_TOLERANCE = 300  # seconds either side of now


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    unit: str  # ratio | seconds
    window_seconds: int
    window_label: str
    default_limit: float
    default_min_samples: int
    sample_noun: str


METRICS: dict[str, MetricSpec] = {
    m.key: m
    for m in (
        MetricSpec("bounce_rate", "Bounce rate", "ratio", 3600, "1 h", 0.05, 100, "sent"),
        MetricSpec("complaint_rate", "Complaint rate", "ratio", 3600, "1 h", 0.001, 1000, "delivered"),
        MetricSpec("api_error_rate", "Track API error rate", "ratio", 300, "5 min", 0.01, 5, "probe calls"),
        MetricSpec("api_p99_latency", "Track API p99 latency", "seconds", 300, "5 min", 5.0, 5, "probe calls"),
    )
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    limit: float
    critical: float
    min_samples: int


@dataclass(frozen=True)
class Tier:
    name: str
    delay_minutes: float
    mentions: tuple[str, ...]

    def render_mentions(self) -> str:
        return " ".join(mention(m) for m in self.mentions)


def mention(target: str) -> str:
    if target in ("here", "channel"):
        return f"<!{target}>"
    return f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"


#: the outbox lease: held while one process posts; a crashed holder's lease lasts at most this
OUTBOX_LEASE, OUTBOX_LEASE_SECONDS = "alerts.outbox", 60.0

#: the keys of [alerts] in CIO_CONFIG (a typo must not silently keep a default)
ALERTS_KEYS = ("thresholds", "escalation", "fire_after", "resolve_after", "evaluate_seconds", "probe_seconds",
               "probe_timeout_seconds", "escalation_tick_seconds", "escalation_repeat", "escalation_repeat_minutes",
               "auto_rollback", "alertmanager_token", "dedup_days", "intake_synchronous", "intake_linger_ms")


@dataclass(frozen=True)
class AlertsConfig:
    thresholds: dict[str, Threshold]
    tiers: tuple[Tier, ...]
    fire_after: int = 3
    resolve_after: int = 3
    evaluate_seconds: float = 60.0
    probe_seconds: float = 60.0
    probe_timeout: float = 10.0
    tick_seconds: float = 15.0
    repeat: int = 0
    repeat_minutes: float = 30.0
    auto_rollback: bool = False
    alertmanager_token: Secret | None = None
    dedup_days: float = 7.0
    max_batch: int = 2000
    max_pending: int = 20000
    synchronous: str = "FULL"
    linger_ms: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertsConfig:
        section = dict(settings.section("alerts"))
        table = settings.table("alerts")
        table.reject_unknown(ALERTS_KEYS)
        thresholds = _thresholds(section.get("thresholds", {}))
        tiers = _tiers(section.get("escalation"), settings.operators)

        token_text = section.get("alertmanager_token")
        if token_text is not None and (not isinstance(token_text, str) or len(token_text) < 16):
            raise ConfigError("[alerts] alertmanager_token in CIO_CONFIG must be a string of at least 16 "
                              "characters (or set CIO_ALERTMANAGER_TOKEN instead).")
        token = settings.alertmanager_token or (Secret(token_text) if token_text else None)
        auto = table.boolean("auto_rollback", False)
        sync = str(section.get("intake_synchronous", "FULL")).upper()
        if sync not in ("FULL", "NORMAL"):
            raise ConfigError("[alerts] intake_synchronous in CIO_CONFIG must be FULL or NORMAL.")
        return cls(
            thresholds=thresholds,
            tiers=tiers,
            fire_after=table.integer("fire_after", 3, 1, 60),
            resolve_after=table.integer("resolve_after", 3, 1, 60),
            evaluate_seconds=table.number("evaluate_seconds", 60, 0.05, 3600),
            probe_seconds=table.number("probe_seconds", 60, 0.05, 3600),
            probe_timeout=table.number("probe_timeout_seconds", 10, 0.1, 60),
            tick_seconds=table.number("escalation_tick_seconds", 15, 0.05, 600),
            repeat=table.integer("escalation_repeat", 0, 0, 9),
            repeat_minutes=table.number("escalation_repeat_minutes", 30, 0, 1440),
            auto_rollback=auto,
            alertmanager_token=token,
            dedup_days=table.number("dedup_days", 7, 1, 60),
            synchronous=sync,
            linger_ms=table.number("intake_linger_ms", 2, 0, 100),
        )

    # -- the escalation plan: step s -> (tier, round), with the delay before the next step --
    @property
    def total_steps(self) -> int:
        return len(self.tiers) * (self.repeat + 1)

    def first_due(self, opened_at: float) -> float:
        return opened_at + self.tiers[0].delay_minutes * 60

    def plan(self, step: int, due_at: float) -> tuple[int, int, float | None]:
        count = len(self.tiers)
        if step >= self.total_steps:  # beyond the plan (Escalate now after the last tier)
            return count - 1, self.repeat, None
        nxt = step + 1
        if nxt >= self.total_steps:
            next_due = None
        elif nxt % count == 0:
            next_due = due_at + self.repeat_minutes * 60
        else:
            next_due = due_at + self.tiers[nxt % count].delay_minutes * 60
        return step % count, step // count, next_due


def _fraction(name: str, value: Any, unit: str) -> float:
    """``0.05``, ``"5%"`` (ratios); ``5``, ``"5s"``, ``"500ms"`` (seconds)."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if unit == "ratio" and text.endswith("%"):
                return float(text[:-1]) / 100
            if unit == "seconds" and text.endswith("ms"):
                return float(text[:-2]) / 1000
            if unit == "seconds" and text.endswith("s"):
                return float(text[:-1])
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    example = '"5%" or 0.05' if unit == "ratio" else '5 or "500ms"'
    raise ConfigError(f"[alerts.thresholds] {name} in CIO_CONFIG must be like {example}, got {value!r}.")


def _thresholds(table: Any) -> dict[str, Threshold]:
    if not isinstance(table, Mapping):
        raise ConfigError("[alerts.thresholds] in CIO_CONFIG must be a table.")
    unknown = sorted(set(table) - set(METRICS))
    if unknown:
        raise ConfigError(f"[alerts.thresholds] in CIO_CONFIG has unknown metric(s) {', '.join(unknown)}; "
                          f"known: {', '.join(METRICS)}.")
    out = {}
    for key, spec in METRICS.items():
        raw = table.get(key, {})
        if not isinstance(raw, Mapping):
            raw = {"limit": raw}
        limit = _fraction(f"{key}.limit", raw.get("limit", spec.default_limit), spec.unit)
        critical = _fraction(f"{key}.critical", raw.get("critical", limit * 2), spec.unit)
        samples = raw.get("min_samples", spec.default_min_samples)
        if limit <= 0 or (spec.unit == "ratio" and limit >= 1):
            raise ConfigError(f"[alerts.thresholds] {key} in CIO_CONFIG must be above 0"
                              + (" and below 100%." if spec.unit == "ratio" else "."))
        if critical < limit:
            raise ConfigError(f"[alerts.thresholds] {key}.critical in CIO_CONFIG must not be below its limit.")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"[alerts.thresholds] {key}.min_samples in CIO_CONFIG must be a whole number "
                              f"of at least 1, got {samples!r}.")
        out[key] = Threshold(key, limit, critical, samples)
    return out


def _tiers(raw: Any, operators: tuple[str, ...]) -> tuple[Tier, ...]:
    if raw is None:
        if not operators:
            return (Tier("Launch channel", 0, ("here",)),)
        return (Tier("Launch operators", 0, tuple(operators)),)
    if not isinstance(raw, list) or not raw:
        raise ConfigError("[[alerts.escalation]] in CIO_CONFIG must be a list of tiers, each with "
                          "delay_minutes and mentions.")
    tiers = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise ConfigError(f"Escalation tier {n} in CIO_CONFIG must be a table.")
        delay = item.get("delay_minutes", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 1440:
            raise ConfigError(f"Escalation tier {n} in CIO_CONFIG: delay_minutes must be a number from 0 to "
                              f"1440, got {delay!r}.")
        mentions = item.get("mentions", [])
        if not isinstance(mentions, list) or not mentions:
            raise ConfigError(f"Escalation tier {n} in CIO_CONFIG: mentions must list Slack user IDs (U…), "
                              "user-group IDs (S…) or \"here\".")
        for m in mentions:
            if not isinstance(m, str) or not (m in ("here", "channel") or OPERATOR_ID.match(m)):
                raise ConfigError(f"Escalation tier {n} in CIO_CONFIG: {m!r} is not a Slack user ID (U…/W…), "
                                  "user-group ID (S…), \"here\" or \"channel\".")
        name = str(item.get("name") or f"Tier {n}")
        tiers.append(Tier(name, float(delay), tuple(mentions)))
    return tuple(tiers)


# -- formatting ---------------------------------------------------------------------------------
def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        pct = value * 100
        if pct == 0:
            return "0%"
        digits = 1 if pct >= 1 else 2 if pct >= 0.1 else 3
        return f"{pct:.{digits}f}".rstrip("0").rstrip(".") + "%"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f}".rstrip("0").rstrip(".") + " s"
    return f"{value:g}"


def trend_text(values: list[float | None], unit: str) -> str:
    known = [v for v in values if v is not None][-5:]
    gap = _trailing_none(values)
    silent = f"no data in the last {gap} evaluation{'s' if gap != 1 else ''}" if gap else ""
    if len(known) < 2:
        return silent or "first reading"
    first, last = known[0], known[-1]
    arrow = "↑ rising" if last > first * 1.02 else "↓ falling" if last < first * 0.98 else "→ steady"
    trend = " → ".join(fmt_value(v, unit) for v in known)
    return f"{silent}; before that {trend}" if silent else f"{arrow}: {trend}"


def _trailing_none(values: list[float | None]) -> int:
    n = 0
    for v in reversed(values):
        if v is not None:
            break
        n += 1
    return n


#: Slack message metadata of the bot's alert posts, so that a post can be found again
META_EVENT = "cio_launchbot_alert"


def _meta(alert_id: int, kind: str, step: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"alert_id": alert_id, "kind": kind}
    if step is not None:
        payload["step"] = step
    return {"event_type": META_EVENT, "event_payload": payload}


def plain(text: str) -> str:
    """Outside text (Alertmanager annotations) made inert in Slack mrkdwn: no ``<!channel>``,
    ``<@U…>`` or links can be smuggled into the launch channel."""
    return text.replace("<", "‹").replace(">", "›")


def _when(ts: float) -> str:
    from datetime import UTC, datetime

    return blocks.user_date(ts, datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC"))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# -- intake ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookResult:
    status: int
    body: dict[str, Any]

    @functools.cached_property
    def encoded(self) -> bytes:
        """The JSON answer (computed once for the shared results of the hot path)."""
        return json.dumps(self.body).encode()


class IntakeUnavailable(Exception):
    """The intake cannot take the event now; the sender should retry."""


class GroupCommit:
    """Counts events many per transaction, answering each only after its batch committed.

    ``submit`` queues an event and waits; the :meth:`run` loop lingers a moment (2 ms by
    default) for more events, writes everything queued as one transaction and commits it on
    a worker thread (the fsync runs off the event loop), then resolves every waiting
    submitter. While one batch commits the next one gathers, so batches grow with load.
    """

    def __init__(self, writer: IntakeWriter, *, max_batch: int = 2000, max_pending: int = 20000,
                 linger: float = 0.002) -> None:
        self.writer = writer
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.linger = linger
        self._pending: list[tuple[IntakeEvent, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cio-intake")
        self.closed = False
        self.batches = 0
        self.committed = 0

    async def submit(self, event: IntakeEvent) -> bool:
        if self.closed:
            raise IntakeUnavailable("the bot is shutting down")
        if len(self._pending) >= self.max_pending:
            raise IntakeUnavailable("the intake queue is full")
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((event, fut))
        self._wake.set()
        return await fut

    async def run(self) -> None:
        try:
            while True:
                await self._drain()
                await self._wake.wait()
                self._wake.clear()
                if self.linger:
                    # let a few more events join this batch: fewer, larger transactions cost
                    # less CPU per event (and less contention for the GIL with the event loop)
                    await asyncio.sleep(self.linger)
        finally:
            self.closed = True
            with contextlib.suppress(Exception):
                await self._drain()
            self._executor.shutdown(wait=True)
            self.writer.close()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            events = [e for e, _ in batch]
            if self.writer.splittable:
                # the statements here (CPU work that holds the GIL anyway), the COMMIT and its
                # fsync on the worker thread while the loop serves other requests
                try:
                    staged = self.writer.stage(events)
                except Exception:
                    log.exception("could not stage a batch of %d webhook events", len(batch))
                    self._fail(batch)
                    continue
                inflight = loop.run_in_executor(self._executor, self.writer.finish)
            else:
                inflight = loop.run_in_executor(self._executor, self.writer.commit, events)
            try:
                result = await asyncio.shield(inflight)
                fresh = staged if self.writer.splittable else result
            except asyncio.CancelledError:
                # shutting down while a batch commits: let it finish and answer its senders first
                with contextlib.suppress(Exception):
                    await inflight
                if inflight.done() and not inflight.cancelled() and inflight.exception() is None:
                    self._resolve(batch, staged if self.writer.splittable else inflight.result())
                else:
                    self._fail(batch)
                raise
            except Exception:
                log.exception("could not count a batch of %d webhook events", len(batch))
                self._fail(batch)
                continue
            self._resolve(batch, fresh)

    def _resolve(self, batch: list[tuple[IntakeEvent, asyncio.Future[bool]]], fresh: list[bool]) -> None:
        self.batches += 1
        self.committed += len(batch)
        for (_, fut), new in zip(batch, fresh, strict=True):
            if not fut.done():
                fut.set_result(new)

    @staticmethod
    def _fail(batch: list[tuple[IntakeEvent, asyncio.Future[bool]]]) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(IntakeUnavailable("the event could not be stored"))


_OK_NEW = WebhookResult(200, {"status": "counted"})
_OK_DUP = WebhookResult(200, {"status": "duplicate", "detail": "already counted; nothing changed"})


def _reject(status: int, reason: str) -> WebhookResult:
    return WebhookResult(status, {"status": "rejected", "error": reason})


# -- readings ------------------------------------------------------------------------------------
@dataclass
class Reading:
    metric: str
    value: float | None  # None: below the minimum sample size
    samples: int
    detail: str

    @property
    def spec(self) -> MetricSpec:
        return METRICS[self.metric]


# -- the service ----------------------------------------------------------------------------------
@dataclass
class AlertsService:
    services: Services
    config: AlertsConfig
    track: TrackAPI | None = None
    pagerduty: PagerDutyEvents | None = None
    intake: GroupCommit | None = None
    evaluations: int = 0
    ticks: int = 0
    probes: int = 0
    _flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    owner: str = field(default_factory=liveness.new_owner_id)  # this process, for the outbox lease
    _members_cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _last_prune: float = 0.0
    _mac_key: Secret | None = None
    _mac_proto: hmac.HMAC | None = None

    @property
    def repo(self) -> AlertsRepo:
        return self.services.store.alerts

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def now(self) -> float:
        return self.services.clock.timestamp()

    def channel(self, fallback: str | None = None) -> str:
        return self.settings.launch_channel or fallback or ""

    def launch_id(self, create: bool = False) -> int | None:
        channel = self.channel()
        if not channel:
            return None
        launches = self.services.store.launches
        launch = launches.current(channel)
        if launch is None and create:
            launch = launches.ensure(channel, "cio-launchbot", timezone=self.settings.timezone_name)
        return int(launch["id"]) if launch else None

    # -- Customer.io webhook -------------------------------------------------------------------
    def _mac(self, key: Secret) -> hmac.HMAC:
        """A fresh HMAC-SHA256 keyed with the signing key (copied from a keyed prototype)."""
        if self._mac_key is not key:
            self._mac_proto = hmac.new(key.reveal().encode(), digestmod=hashlib.sha256)
            self._mac_key = key
        assert self._mac_proto is not None
        return self._mac_proto.copy()

    async def customerio_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        key = self.settings.customerio_webhook_signing_key
        if key is None:
            return _reject(503, "Webhook intake is not configured: set CUSTOMERIO_WEBHOOK_SIGNING_KEY.")
        if len(body) > MAX_WEBHOOK_BYTES:
            return _reject(413, f"Body is larger than {MAX_WEBHOOK_BYTES} bytes.")
        ts_text = headers.get("X-CIO-Timestamp", "").strip()
        signature = headers.get("X-CIO-Signature", "").strip().lower()
        if not ts_text or not signature:
            return _reject(401, "Missing X-CIO-Timestamp or X-CIO-Signature header.")
        try:
            if not ts_text.isascii():
                raise ValueError
            ts = int(ts_text)
        except ValueError:
            return _reject(401, "X-CIO-Timestamp must be Unix seconds.")
        now = self.now()
        if abs(now - ts) > TIMESTAMP_TOLERANCE:
            return _reject(401, "X-CIO-Timestamp is more than 5 minutes from now; check the sender's clock.")
        mac = self._mac(key)
        mac.update(b"v0:" + ts_text.encode() + b":" + body)
        expected = mac.hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return _reject(401, "X-CIO-Signature does not match: check CUSTOMERIO_WEBHOOK_SIGNING_KEY.")
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _reject(400, "Body is not valid JSON.")
        if not isinstance(event, dict):
            return _reject(422, "Body must be a JSON object.")
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
            return _reject(422, "event_id must be a non-empty string of at most 200 characters.")
        object_type = event.get("object_type", "email")
        metric = event.get("metric")
        known = CIO_METRICS.get(object_type) if isinstance(object_type, str) else None
        if known is None:
            return _reject(422, f"Unknown object_type {str(object_type)[:40]!r}; "
                                f"known: {', '.join(sorted(CIO_METRICS))}.")
        if not isinstance(metric, str) or metric not in known:
            return _reject(422, f"Unknown metric {str(metric)[:40]!r} for {object_type}.")
        when = event.get("timestamp")
        if isinstance(when, bool) or not isinstance(when, int | float) or when > now + TIMESTAMP_TOLERANCE \
                or when <= 0:
            when = now
        if self.intake is None:
            return _reject(503, "Webhook intake is not running; retry later.")
        try:
            new = await self.intake.submit(IntakeEvent(event_id, f"{object_type}_{metric}",
                                                       int(when // 60), now))
        except IntakeUnavailable as exc:
            return _reject(503, f"Not counted ({exc}); retry later.")
        return _OK_NEW if new else _OK_DUP

    # -- Alertmanager webhook ------------------------------------------------------------------
    async def alertmanager_webhook(self, authorization: str, body: bytes) -> WebhookResult:
        token = self.config.alertmanager_token
        if token is None:
            return _reject(503, "Alertmanager intake is not configured: set CIO_ALERTMANAGER_TOKEN "
                                "or [alerts] alertmanager_token.")
        given = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), token.reveal().encode()):
            return _reject(401, "Missing or wrong bearer token: set http_config.authorization in the "
                                "Alertmanager receiver to the configured token.")
        if len(body) > MAX_WEBHOOK_BYTES:
            return _reject(413, f"Body is larger than {MAX_WEBHOOK_BYTES} bytes.")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _reject(400, "Body is not valid JSON.")
        if not isinstance(payload, dict) or str(payload.get("version")) != "4":
            return _reject(422, "Only Alertmanager webhook payloads of version 4 are accepted.")
        items = payload.get("alerts")
        if not isinstance(items, list) or not items:
            return _reject(422, "The payload has no alerts list.")
        parsed = []
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict) or not isinstance(item.get("labels", {}), dict):
                return _reject(422, f"Alert {n} is not an object with labels.")
            status = item.get("status") or payload.get("status")
            if status not in ("firing", "resolved"):
                return _reject(422, f"Alert {n} has status {status!r}; expected firing or resolved.")
            labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
            annotations = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
            fingerprint = str(item.get("fingerprint") or "") or hashlib.sha256(
                json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
            parsed.append((status, labels, {str(k): str(v) for k, v in annotations.items()}, fingerprint))
        fired = resolved = 0
        launch_id = self.launch_id(create=any(p[0] == "firing" for p in parsed))
        for status, labels, annotations, fingerprint in parsed:
            suffix = f":am:{fingerprint[:120]}"
            key = f"launch{launch_id}{suffix}"
            if status == "firing":
                await self._fire_or_update(**self._am_fields(labels, annotations), dedup_key=key,
                                           launch_id=launch_id, source="alertmanager", labels=labels)
                fired += 1
            else:
                # the alert may have fired under an earlier launch: Alertmanager's fingerprint decides
                row = self.repo.open_by_key(key) or self.repo.open_by_key_suffix(suffix)
                if row is not None:
                    await self._resolve(row, by=None, reason="Alertmanager reports it resolved")
                    resolved += 1
        self.services.spawn(self.run_escalations(), name="alerts.escalate")
        return WebhookResult(200, {"status": "ok", "firing": fired, "resolved": resolved})

    @staticmethod
    def _am_fields(labels: dict[str, str], ann: dict[str, str]) -> dict[str, Any]:
        name = labels.get("alertname", "Alert")
        metric = labels.get("metric") or name
        unit = "seconds" if "latency" in metric.lower() else "ratio" if "rate" in metric.lower() else ""

        def num(text: str | None) -> float | None:
            if not text:
                return None
            try:
                value = float(text)
                return value if math.isfinite(value) else None
            except ValueError:
                pass
            try:
                return _fraction("value", text, unit) if unit else None
            except ConfigError:
                return None

        severity = "critical" if labels.get("severity", "").lower() in ("critical", "page", "error") else "warning"
        return dict(
            metric=plain(metric)[:100], title=plain(ann.get("summary") or name)[:140], severity=severity,
            value=num(ann.get("value")), threshold=num(ann.get("threshold")), unit=unit,
            window=plain(ann.get("window", "as evaluated by Prometheus"))[:60],
            detail=plain(ann.get("description") or "")[:500],
        )

    # -- probe ---------------------------------------------------------------------------------
    async def probe_once(self) -> None:
        if self.track is None:
            return
        started = time.perf_counter()
        ok, status, error = True, 200, None
        try:
            await self.track.region()
        except ProviderError as exc:
            ok, status, error = False, exc.status, exc.message[:200]
        except Exception as exc:  # a malformed answer is an API error too
            ok, status, error = False, None, type(exc).__name__
        latency_ms = (time.perf_counter() - started) * 1000
        self.repo.add_probe(self.now(), ok, latency_ms, status, error)

    # -- evaluation ----------------------------------------------------------------------------
    def readings(self, now: float | None = None) -> dict[str, Reading]:
        now = self.now() if now is None else now
        minute = int(now // 60)
        counts = self.repo.counter_sums(["email_sent", "email_bounced", "email_delivered", "email_spammed"],
                                        minute - 59, minute)
        out: dict[str, Reading] = {}
        th = self.config.thresholds

        def ratio(metric: str, num: int, den: int, num_noun: str) -> Reading:
            spec = METRICS[metric]
            detail = f"{num:,} {num_noun} of {den:,} {spec.sample_noun} in the last {spec.window_label}"
            value = num / den if den >= th[metric].min_samples and den > 0 else None
            return Reading(metric, value, den, detail)

        out["bounce_rate"] = ratio("bounce_rate", counts["email_bounced"], counts["email_sent"], "bounced")
        out["complaint_rate"] = ratio("complaint_rate", counts["email_spammed"], counts["email_delivered"],
                                      "spam complaints")
        samples = self.repo.probe_samples(now - 300, now)
        errors = sum(1 for s in samples if not s["ok"])
        out["api_error_rate"] = ratio("api_error_rate", errors, len(samples), "failed")
        latency = [s["latency_ms"] / 1000 for s in samples]
        enough = len(latency) >= th["api_p99_latency"].min_samples
        out["api_p99_latency"] = Reading(
            "api_p99_latency", percentile(latency, 99) if enough else None, len(latency),
            f"p99 of {len(latency)} probe calls in the last 5 min"
            + (f" (max {fmt_value(max(latency), 'seconds')})" if latency else ""),
        )
        return out

    async def evaluate_once(self) -> None:
        now = self.now()
        readings = self.readings(now)
        launch_id = self.launch_id()
        for metric, reading in readings.items():
            if not self.repo.claim_evaluation(metric, now, self.config.evaluate_seconds / 2):
                continue  # another process on this database evaluated it this period
            th = self.config.thresholds[metric]
            state = self.repo.metric_state(metric) or {"breach_streak": 0, "ok_streak": 0, "history": []}
            breaching = reading.value is not None and reading.value > th.limit
            breach_streak = state["breach_streak"] + 1 if breaching else 0
            # only a reading within the limit counts towards recovery: an evaluation without
            # enough data (traffic rolled back, a quiet hour) is no evidence either way, so an
            # open alert stays open until the data says so or a person resolves it
            if breaching:
                ok_streak = 0
            elif reading.value is None:
                ok_streak = state["ok_streak"]
            else:
                ok_streak = state["ok_streak"] + 1
            history = (list(state["history"]) + [reading.value])[-12:]
            self.repo.save_metric_state(metric, breach_streak=breach_streak, ok_streak=ok_streak,
                                        value=reading.value, samples=reading.samples, breaching=breaching,
                                        history=history, at=now)
            key = f"launch{launch_id}:{metric}"
            row = self.repo.open_by_key(key) if launch_id is not None else None
            if row is None and breach_streak >= self.config.fire_after:
                launch_id = self.launch_id(create=True)
                key = f"launch{launch_id}:{metric}"
                row = self.repo.open_by_key(key)
            if row is None and breach_streak < self.config.fire_after:
                continue
            fields = self._metric_fields(reading, th, breaching)
            row, _ = await self._fire_or_update(**fields, dedup_key=key, launch_id=launch_id,
                                                source="evaluator", labels={})
            if ok_streak >= self.config.resolve_after and reading.value is not None:
                await self._resolve(row, by=None, reason=(
                    f"{reading.spec.label} back within {fmt_value(th.limit, reading.spec.unit)} "
                    f"({fmt_value(reading.value, reading.spec.unit)}) for {ok_streak} evaluations"))
        await self.run_escalations()
        if now - self._last_prune > 3600:
            self._last_prune = now
            self.repo.prune(events_before=now - self.config.dedup_days * 86400,
                            counts_before_minute=int(now // 60) - 60 * 24 * 30, probes_before=now - 86400)

    def _metric_fields(self, reading: Reading, th: Threshold, breaching: bool) -> dict[str, Any]:
        spec = reading.spec
        critical = reading.value is not None and reading.value >= th.critical
        title = f"{spec.label} above {fmt_value(th.limit, spec.unit)}"
        return dict(metric=reading.metric, title=title, severity="critical" if critical else "warning",
                    value=reading.value, threshold=th.limit, unit=spec.unit,
                    window=f"last {spec.window_label}", detail=reading.detail)

    # -- lifecycle -----------------------------------------------------------------------------
    async def _fire_or_update(self, *, dedup_key: str, launch_id: int | None, metric: str, title: str,
                              source: str, severity: str, value: float | None, threshold: float | None,
                              unit: str, window: str, detail: str,
                              labels: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        now = self.now()
        row, created = self.repo.fire_or_update(
            dedup_key=dedup_key, launch_id=launch_id, metric=metric, title=title, source=source,
            severity=severity, value=value, threshold=threshold, unit=unit, window=window, detail=detail,
            labels=labels, channel_id=self.channel(), at=now, first_due=self.config.first_due(now),
        )
        if created:
            log.warning("alert #%s fired: %s (%s)", row["id"], title, fmt_value(value, unit))
            self.services.store.audit.record(user_id=None, channel_id=row["channel_id"], kind="system",
                                             action=f"alert.fired #{row['id']} {metric}", outcome="open",
                                             detail={"value": value, "threshold": threshold, "source": source})
            await self.services.events.publish("alert.fired", self._event(row))
        await self._maybe_auto_rollback(row)
        return row, created

    async def _resolve(self, row: dict[str, Any], *, by: str | None, reason: str) -> bool:
        changed, row2 = self.repo.resolve(int(row["id"]), by=by, reason=reason, at=self.now())
        if not changed or row2 is None:
            return False
        self.repo.reset_breach(row2["metric"])
        self.services.store.audit.record(user_id=by, channel_id=row2["channel_id"], kind="system",
                                         action=f"alert.resolved #{row2['id']} {row2['metric']}",
                                         outcome="resolved", detail=reason)
        await self.services.events.publish("alert.resolved", {**self._event(row2), "resolved_by": by,
                                                              "reason": reason})
        return True

    @staticmethod
    def _event(row: dict[str, Any]) -> dict[str, Any]:
        return {"launch_id": row["launch_id"], "alert_id": row["id"], "metric": row["metric"],
                "value": row["value"], "threshold": row["threshold"], "severity": row["severity"],
                "title": row["title"], "source": row["source"], "channel_id": row["channel_id"]}

    async def _maybe_auto_rollback(self, row: dict[str, Any]) -> None:
        if not self.config.auto_rollback or row["severity"] != "critical" or row["status"] == "resolved" \
                or row["rollback_requested_at"] is not None or row["launch_id"] is None:
            return
        pct = self.repo.ramp(int(row["launch_id"]))
        if pct is None or not 0 < pct < 100:
            return
        if not self.repo.mark_rollback_requested(int(row["id"]), self.now()):
            return
        self.repo.touch(int(row["id"]), self.now())
        reason = (f"auto-rollback: alert #{row['id']} {row['title']} "
                  f"({fmt_value(row['value'], row['unit'])}, critical)")
        log.warning("requesting an automatic rollback: %s", reason)
        await self.services.events.publish("rollback.requested", {
            "launch_id": row["launch_id"], "reason": reason, "actor": "alerts", "channel_id": row["channel_id"]})

    # -- actions (buttons) ---------------------------------------------------------------------
    async def authorize(self, alert_id: int, user_id: str, channel_id: str) -> dict[str, Any]:
        """Who may press alert buttons: anyone in the launch channel (operators, the people on
        the escalation path, channel members). The press must come from the alert's channel."""
        row = self.repo.get(alert_id)
        if row is None:
            raise UserError(f"Alert #{alert_id} does not exist (any more); run `/cio alerts` to see open alerts.")
        if channel_id != row["channel_id"]:
            raise PermissionDenied(f"Alert #{alert_id} can only be handled from <#{row['channel_id']}>.")
        for tier in self.config.tiers:
            if user_id in tier.mentions:
                return row
        decision = await self.services.permissions.check(user_id)
        if decision.allowed:
            return row
        groups = {m for t in self.config.tiers for m in t.mentions if m.startswith("S")}
        for group in sorted(groups):
            with contextlib.suppress(ProviderError, TimeoutError):
                if user_id in await asyncio.wait_for(self.services.slack.usergroup_members(group), 1.5):
                    return row
        try:
            members = await asyncio.wait_for(self._channel_members(row["channel_id"]), 2.0)
            if user_id not in members:  # joined since the list was cached?
                members = await asyncio.wait_for(self._channel_members(row["channel_id"], fresh=True), 2.0)
        except (ProviderError, TimeoutError):
            raise PermissionDenied(
                f"I could not confirm that you are in <#{row['channel_id']}> (Slack did not answer); "
                "try again in a minute or ask an operator.") from None
        if user_id in members:
            return row
        raise PermissionDenied(f"Only people in <#{row['channel_id']}> can handle alerts; join the channel first.")

    async def _channel_members(self, channel: str, *, fresh: bool = False) -> frozenset[str]:
        cached = self._members_cache.get(channel)
        if cached and not fresh and time.monotonic() - cached[0] < 60:
            return cached[1]
        members = await self.services.slack.channel_members(channel)
        self._members_cache[channel] = (time.monotonic(), members)
        return members

    async def acknowledge(self, alert_id: int, user_id: str, channel_id: str) -> str:
        row = await self.authorize(alert_id, user_id, channel_id)
        changed, row = self.repo.acknowledge(alert_id, user_id, self.now())
        assert row is not None
        if not changed:
            return self._already(row)
        self.services.store.audit.record(user_id=user_id, channel_id=channel_id, kind="system",
                                         action=f"alert.acknowledged #{alert_id}", outcome="acknowledged")
        await self.services.events.publish("alert.acknowledged", {**self._event(row), "user_id": user_id})
        self.services.spawn(self.flush(), name="alerts.flush")
        return (f"You acknowledged alert #{alert_id} ({row['title']}); the escalation has stopped. "
                "Resolve it when it is handled, or it resolves itself once the metric recovers.")

    async def resolve(self, alert_id: int, user_id: str, channel_id: str) -> str:
        row = await self.authorize(alert_id, user_id, channel_id)
        if row["status"] == "resolved":
            return self._already(row)
        await self._resolve(row, by=user_id, reason=f"resolved by <@{user_id}>")
        self.services.spawn(self.flush(), name="alerts.flush")
        return f"You resolved alert #{alert_id} ({row['title']}). If the breach continues, a new alert fires."

    async def escalate_now(self, alert_id: int, user_id: str, channel_id: str) -> str:
        row = await self.authorize(alert_id, user_id, channel_id)
        if row["status"] == "resolved":
            return self._already(row)
        claimed = self.repo.claim_manual_escalation(alert_id, user_id, self.now(), self.config.plan)
        if claimed is None:
            return f"Alert #{alert_id} is already resolved; nothing to escalate."
        tier = self.config.tiers[claimed["tier"]]
        self.services.spawn(self.flush(), name="alerts.flush")
        return f"Escalated alert #{alert_id} to tier {claimed['tier'] + 1} ({tier.name}) now."

    @staticmethod
    def _already(row: dict[str, Any]) -> str:
        if row["status"] == "resolved":
            who = f" by <@{row['resolved_by']}>" if row["resolved_by"] else " automatically"
            return f"Alert #{row['id']} was already resolved{who}."
        return f"Alert #{row['id']} was already acknowledged by <@{row['acknowledged_by']}>."

    # -- escalation ----------------------------------------------------------------------------
    async def run_escalations(self) -> None:
        self.repo.claim_due_escalations(self.now(), self.config.plan)
        await self.flush()

    # Each loop counts a finished round just before it sleeps again (no await in between),
    # so whoever sees the count knows the next sleep is already registered with the clock.
    async def tick_loop(self) -> None:
        while True:
            await self.services.clock.sleep(self.config.tick_seconds)
            try:
                await self.run_escalations()
            except Exception:
                log.exception("escalation tick failed")
            self.ticks += 1

    async def evaluate_loop(self) -> None:
        while True:
            await self.services.clock.sleep(self.config.evaluate_seconds)
            try:
                await self.evaluate_once()
            except Exception:
                log.exception("alert evaluation failed")
            self.evaluations += 1

    async def probe_loop(self) -> None:
        try:
            while True:
                await self.services.clock.sleep(self.config.probe_seconds)
                try:
                    await self.probe_once()
                except Exception:
                    log.exception("Track API probe failed to record")
                self.probes += 1
        finally:
            if self.track is not None:
                await self.track.aclose()

    # -- the outbox: Slack messages, escalation notices, PagerDuty -----------------------------
    async def flush(self) -> None:
        """Post and update what is pending. One process at a time (a lease in the database):
        while a second process shares the database, the other's flush is skipped and what it
        left pending goes out with the next flush, never twice."""
        leases = self.services.store.leases
        renewed = [0.0]

        def mine() -> bool:
            """Taken, and renewed while posting once a third of it has passed (a slow Slack must
            not lose it; a quick flush writes it once)."""
            now = time.time()
            if now - renewed[0] < OUTBOX_LEASE_SECONDS / 3:
                return True
            if not leases.acquire(OUTBOX_LEASE, self.owner, now=now, ttl=OUTBOX_LEASE_SECONDS,
                                  gone=liveness.process_gone):
                return False
            renewed[0] = now
            return True

        async with self._flush_lock:
            if not mine():
                return
            try:
                for row in self.repo.dirty_alerts():
                    if mine():
                        await self._sync_message(row)
                for esc in self.repo.unnotified_escalations():
                    if mine():
                        await self._notify_escalation(esc)
                for row in self.repo.resolution_notice_pending():
                    if mine():
                        await self._post_resolution(row)
                if self.pagerduty is not None:
                    for row in self.repo.open_alerts() + self.repo.recent_resolved(self.now() - 86400, 50):
                        if mine():
                            await self._sync_pagerduty(row)
            finally:
                leases.release(OUTBOX_LEASE, self.owner)

    async def _sync_message(self, row: dict[str, Any]) -> None:
        if not row["channel_id"]:
            return  # no launch channel configured: recorded, shown by /cio alerts, not posted
        text, body = self.render(row)
        alert_id, channel = int(row["id"]), row["channel_id"]
        slack = self.services.slack
        try:
            ts = row["message_ts"]
            meta = _meta(alert_id, "alert")
            if ts is None and row["post_attempted_at"] is not None:
                ts = await self._posted_before(channel, meta)
                if ts is not None:  # posted before a crash: adopt it, then bring it up to date
                    self.repo.message_posted(alert_id, ts, 0.0)
            if ts is None:
                self.repo.post_attempted(alert_id, self.now())
                ts = await slack.post_message(channel, text, body, metadata=meta, retry_unsafe=False)
                self.repo.message_posted(alert_id, ts, float(row["updated_at"]))
            else:
                await slack.update_message(channel, ts, text, body)
                self.repo.message_synced(alert_id, float(row["updated_at"]))
        except ProviderError as exc:
            log.warning("alert #%s message not synced to Slack (will retry): %s", row["id"], exc)

    async def _posted_before(self, channel: str, meta: dict[str, Any], thread_ts: str | None = None) -> str | None:
        """Read the channel (or a thread) back: the ts of our earlier post carrying ``meta``.

        Used only when a post was sent but its answer was never recorded (a crash, or an
        error that may have come after Slack accepted it), so that nothing is posted twice."""
        slack = self.services.slack
        messages = await (slack.recent_messages(channel) if thread_ts is None
                          else slack.thread_replies(channel, thread_ts))
        for message in messages:
            found = message.get("metadata") or {}
            if found.get("event_type") == meta["event_type"] and found.get("event_payload") == meta["event_payload"]:
                return str(message["ts"])
        return None

    async def _notify_escalation(self, esc: dict[str, Any]) -> None:
        row = self.repo.get(int(esc["alert_id"]))
        assert row is not None
        now = self.now()
        if esc["reason"] == "timer" and row["status"] != "open":
            self.repo.escalation_notified(int(esc["alert_id"]), int(esc["step"]), now, None)
            return
        tier = self.config.tiers[int(esc["tier"])]
        count = len(self.config.tiers)
        minutes = max(0, round((now - float(row["opened_at"])) / 60))
        how = (f"escalated now by <@{esc['actor']}>" if esc["reason"] == "manual"
               else f"unacknowledged for {minutes} min" if minutes else "just fired")
        round_note = f", repeat {esc['round']}" if esc["round"] else ""
        text = (f"{tier.render_mentions()} :rotating_light: *Escalation tier {int(esc['tier']) + 1} of {count}* "
                f"({tier.name}{round_note}): *{row['title']}* is {fmt_value(row['value'], row['unit'])}"
                + (f" (threshold {fmt_value(row['threshold'], row['unit'])})" if row["threshold"] is not None else "")
                + f", {how}. Press *Acknowledge* on the alert to take it and stop the climb.")
        alert_id, step = int(esc["alert_id"]), int(esc["step"])
        meta = _meta(alert_id, "escalation", step)
        try:
            ts = None
            if esc["attempted_at"] is not None:
                ts = await self._posted_before(row["channel_id"], meta, row["message_ts"])
            if ts is None:
                self.repo.escalation_attempted(alert_id, step, now)
                ts = await self.services.slack.post_message(row["channel_id"], text, thread_ts=row["message_ts"],
                                                            metadata=meta, retry_unsafe=False)
        except ProviderError as exc:
            log.warning("escalation of alert #%s not posted (will retry): %s", row["id"], exc)
            return
        self.repo.escalation_notified(alert_id, step, now, ts)

    async def _post_resolution(self, row: dict[str, Any]) -> None:
        who = f"by <@{row['resolved_by']}>" if row["resolved_by"] else "automatically"
        lasted = max(1, round((float(row["resolved_at"]) - float(row["opened_at"])) / 60))
        text = (f":white_check_mark: Resolved {who} after {lasted} min: *{row['title']}*. "
                f"{row['resolution'] or ''}".strip())
        meta = _meta(int(row["id"]), "resolution")
        try:
            ts = None
            if row["notice_attempted_at"] is not None:
                ts = await self._posted_before(row["channel_id"], meta, row["message_ts"])
            if ts is None:
                self.repo.notice_attempted(int(row["id"]), self.now())
                ts = await self.services.slack.post_message(row["channel_id"], text, thread_ts=row["message_ts"],
                                                            metadata=meta, retry_unsafe=False)
        except ProviderError as exc:
            log.warning("resolution notice of alert #%s not posted (will retry): %s", row["id"], exc)
            return
        self.repo.resolution_noticed(int(row["id"]), ts)

    async def _sync_pagerduty(self, row: dict[str, Any]) -> None:
        assert self.pagerduty is not None
        desired = {"open": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}[row["status"]]
        current = row["pagerduty"]
        if current == desired or (current in ("", "none") and desired == "resolve"):
            if current == "":  # resolved before it was ever paged: nothing to tell PagerDuty
                self.repo.set_pagerduty(int(row["id"]), "none", rerender=False)
            return
        steps = ["trigger", desired] if current in ("", "none") and desired == "acknowledge" else [desired]
        try:
            for action in steps:
                await self.pagerduty.send(action, row["dedup_key"], summary=f"{row['title']}: "
                                          f"{fmt_value(row['value'], row['unit'])}",
                                          severity=row["severity"], details={
                                              "alert_id": row["id"], "metric": row["metric"],
                                              "threshold": row["threshold"], "window": row["window"],
                                              "channel": row["channel_id"]})
        except ProviderError as exc:
            log.warning("PagerDuty %s of alert #%s failed (will retry): %s", desired, row["id"], exc)
            return
        self.repo.set_pagerduty(int(row["id"]), desired)

    # -- rendering -------------------------------------------------------------------------------
    def render(self, row: dict[str, Any]) -> tuple[str, list[Block]]:
        unit = row["unit"]
        status = row["status"]
        value = fmt_value(row["value"], unit)
        if row["value"] is None and row["source"] == "evaluator":
            value = "not enough data"
        emoji = {"open": ":rotating_light:", "acknowledged": ":eyes:", "resolved": ":white_check_mark:"}[status]
        head = f"{emoji} {'Resolved: ' if status == 'resolved' else ''}{row['title']}"
        th = self.config.thresholds.get(row["metric"])
        threshold = "—" if row["threshold"] is None else fmt_value(row["threshold"], unit)
        if th is not None and row["source"] == "evaluator":
            threshold += f" (critical {fmt_value(th.critical, unit)}, min {th.min_samples:,} samples)"
        trend = trend_text(json.loads(row["trend"]), unit) if unit else "—"
        if status == "open":
            state = f"Open since {_when(row['opened_at'])}, not acknowledged"
        elif status == "acknowledged":
            state = f"Acknowledged by <@{row['acknowledged_by']}> {_when(row['acknowledged_at'])}"
        else:
            who = f"<@{row['resolved_by']}>" if row["resolved_by"] else "automatically"
            state = f"Resolved {who} {_when(row['resolved_at'])}"
        fields = [
            f"*Value*\n{value}" + (f"\n{row['detail']}" if row["detail"] else ""),
            f"*Threshold*\n{threshold}",
            f"*Window*\n{row['window'] or '—'}",
            f"*Trend*\n{trend}",
            f"*Severity*\n{row['severity']}",
            f"*Status*\n{state}",
            f"*Escalation*\n{self._escalation_line(row)}",
        ]
        if row["rollback_requested_at"] is not None:
            fields.append(f"*Auto-rollback*\nrequested {_when(row['rollback_requested_at'])}")
        if row["pagerduty"] not in ("", "none"):
            state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}.get(
                row["pagerduty"], row["pagerduty"])
            fields.append(f"*PagerDuty*\nincident {state} (dedup key `{row['dedup_key'][:60]}`)")
        out: list[Block] = [
            blocks.header(head),
            SectionBlock(fields=[MarkdownTextObject(text=blocks.truncate(f, 1900)) for f in fields[:10]]),
        ]
        if status != "resolved":
            aid = str(row["id"])
            out.append(ActionsBlock(block_id=f"alert-{aid}", elements=[
                ButtonElement(text="Acknowledge", action_id=ACK, value=aid, style="primary"),
                ButtonElement(text="Escalate now", action_id=ESCALATE, value=aid),
                ButtonElement(text="Resolve", action_id=RESOLVE, value=aid, style="danger",
                              confirm=ConfirmObject(title="Resolve this alert?",
                                                    text="Resolve it only once the cause is handled. If the "
                                                         "breach continues, a new alert fires.",
                                                    confirm="Resolve", deny="Cancel", style="danger")),
            ]))
        source = {"evaluator": "delivery webhooks and Track API probe", "alertmanager": "Alertmanager"}.get(
            row["source"], row["source"])
        out.append(blocks.context(f"Alert #{row['id']} · source: {source} · one message per alert, "
                                  "updated in place"))
        text = (f"{head}: {value} (threshold {threshold.split(' (')[0]}, {row['window'] or 'no window'}) "
                f"— {status} (alert #{row['id']})")
        return text, out

    def _escalation_line(self, row: dict[str, Any]) -> str:
        done = self.repo.escalations(int(row["id"]))
        parts = []
        if done:
            last = done[-1]
            tier = self.config.tiers[min(int(last["tier"]), len(self.config.tiers) - 1)]
            parts.append(f"tier {int(last['tier']) + 1} of {len(self.config.tiers)} ({tier.name}) paged "
                         f"{_when(last['claimed_at'])}")
        else:
            parts.append("nobody paged yet")
        if row["status"] == "open" and row["escalation_due"] is not None:
            tier_index, _, _ = self.config.plan(int(row["escalation_step"]), float(row["escalation_due"]))
            parts.append(f"next: tier {tier_index + 1} ({self.config.tiers[tier_index].name}) "
                         f"{_when(row['escalation_due'])}")
        elif row["status"] == "acknowledged":
            parts.append("stopped (acknowledged)")
        elif row["status"] == "open":
            parts.append("no further tiers")
        return "; ".join(parts)

    # -- events from other domains -------------------------------------------------------------
    async def on_traffic_changed(self, payload: dict[str, Any]) -> None:
        launch_id, pct = payload.get("launch_id"), payload.get("to_pct")
        if launch_id is None or not isinstance(pct, int | float):
            return
        self.repo.set_ramp(int(launch_id), float(pct), self.now())
        for row in self.repo.open_alerts(int(launch_id)):
            await self._maybe_auto_rollback(row)

    async def on_rolled_back(self, payload: dict[str, Any]) -> None:
        """Page the first escalation tier: traffic was rolled back."""
        launch_id = payload.get("launch_id")
        if launch_id is not None:
            self.repo.set_ramp(int(launch_id), 0.0, self.now())
        channel = str(payload.get("channel_id") or self.channel())
        actor = str(payload.get("actor") or "")
        who = f"<@{actor}>" if OPERATOR_ID.match(actor) and actor[0] in "UW" else escape(actor or "the bot")
        raw_reason = str(payload.get("reason") or "no reason given")[:500]
        reason = escape(raw_reason)
        tier = self.config.tiers[0]
        text = (f"{tier.render_mentions()} :rewind: *Traffic was rolled back* by {who}: {reason}. "
                f"Escalation tier 1 ({tier.name}) is paged; see the incident notice in <#{channel}>.")
        outcome = "paged"
        try:
            await self.services.slack.post_message(channel, text)
        except ProviderError as exc:
            log.error("could not page tier 1 about the rollback: %s", exc)
            outcome = "error"
        if self.pagerduty is not None:
            try:
                await self.pagerduty.send("trigger", f"launch{launch_id}:rollback:{int(self.now())}",
                                          summary=f"Traffic rolled back: {raw_reason}"[:1000], severity="critical",
                                          details={"launch_id": launch_id, "actor": actor, "channel": channel})
            except ProviderError as exc:
                log.error("could not page PagerDuty about the rollback: %s", exc)
        self.services.store.audit.record(user_id=None, channel_id=channel, kind="system",
                                         action="traffic.rolled_back: page tier 1", outcome=outcome,
                                         detail={"reason": raw_reason, "launch_id": launch_id})

    # -- health gate and status ----------------------------------------------------------------
    async def health_findings(self, launch_id: int | None) -> list[HealthFinding]:
        open_rows = self.repo.open_alerts(launch_id) if launch_id is not None else self.repo.open_alerts()
        findings = [HealthFinding(
            "no open alert", not open_rows,
            "no alert is open" if not open_rows else "; ".join(
                f"#{r['id']} {r['title']} ({r['status']})" for r in open_rows[:5]))]
        for metric, reading in self.readings().items():
            th = self.config.thresholds[metric]
            spec = reading.spec
            if reading.value is None:
                findings.append(HealthFinding(spec.label.lower(), True,
                                              f"not enough data yet ({reading.samples:,} of "
                                              f"{th.min_samples:,} {spec.sample_noun} in {spec.window_label})"))
                continue
            ok = reading.value <= th.limit
            findings.append(HealthFinding(
                spec.label.lower(), ok,
                f"{fmt_value(reading.value, spec.unit)} {'within' if ok else 'above'} "
                f"{fmt_value(th.limit, spec.unit)} ({reading.detail})"))
        return findings

    async def status_section(self, launch: dict[str, Any] | None, channel_id: str) -> StatusSection:
        rows = self.repo.open_alerts(int(launch["id"])) if launch else self.repo.open_alerts()
        lines = [f"*Open alerts:* {len(rows)}" + (": " + "; ".join(
            f"#{r['id']} {r['title']} ({r['status']})" for r in rows[:5]) if rows else "")]
        lines += [self.reading_line(r) for r in self.readings().values()]
        return StatusSection("Alerts", lines)

    def reading_line(self, reading: Reading) -> str:
        th = self.config.thresholds[reading.metric]
        spec = reading.spec
        if reading.value is None:
            return (f"• {spec.label}: not enough data ({reading.samples:,} of {th.min_samples:,} "
                    f"{spec.sample_noun}, {spec.window_label})")
        mark = ":large_green_circle:" if reading.value <= th.limit else ":red_circle:"
        return (f"• {mark} {spec.label}: {fmt_value(reading.value, spec.unit)} (limit "
                f"{fmt_value(th.limit, spec.unit)}; {reading.detail})")


def configure(services: Services) -> None:
    from bot.providers.customerio import TrackAPI

    settings = services.settings
    config = AlertsConfig.from_settings(settings)
    service = AlertsService(services, config)
    creds = settings.customerio
    if creds.site_id and creds.track_api_key:
        service.track = TrackAPI(settings.customerio_track_url, creds.site_id, creds.track_api_key.reveal(),
                                 timeout=config.probe_timeout, retry=RetryPolicy(attempts=1))
    if settings.pagerduty_routing_key is not None:
        from bot.providers.pagerduty import PagerDutyEvents

        service.pagerduty = PagerDutyEvents(settings.pagerduty_events_url, settings.pagerduty_routing_key)
    service.intake = GroupCommit(IntakeWriter(services.store, synchronous=config.synchronous),
                                 max_batch=config.max_batch, max_pending=config.max_pending,
                                 linger=config.linger_ms / 1000)
    services.alerts = service
    services.events.subscribe("traffic.changed", service.on_traffic_changed)
    services.events.subscribe("traffic.rolled_back", service.on_rolled_back)
    services.health.register("alerts", service.health_findings)
    services.status.register("alerts", service.status_section)
    services.loops["alerts.intake"] = service.intake.run
    services.loops["alerts.evaluate"] = service.evaluate_loop
    services.loops["alerts.escalate"] = service.tick_loop
    services.loops["alerts.probe"] = service.probe_loop
    if service.pagerduty is not None:
        pagerduty = service.pagerduty

        async def close_pagerduty() -> None:
            """Holds the PagerDuty connection pool for the server's lifetime."""
            try:
                await asyncio.Event().wait()
            finally:
                await pagerduty.aclose()

        services.loops["alerts.pagerduty-client"] = close_pagerduty
