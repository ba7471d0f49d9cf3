"""Readiness: runs the checks of ``checks/`` against this deployment and reports them.

Builds the :class:`~checks.context.CheckContext` from Settings and CIO_CONFIG, hands the
real provider clients in, stores every run (who, environment, each result, durations),
posts one Slack message that is updated in place as results arrive, and keeps the
sign-offs. Also the engine behind ``cio-bot check``.

CIO_CONFIG keys read here::

    [checks]
    timeout_seconds = 10            # each check
    deadline_seconds = 60           # the whole run
    update_interval_seconds = 1.0   # at most one Slack update per interval
    event_catalog = "events.yaml"   # YAML or JSON, relative to the config file
    postal_address = "1 Main Street, Springfield"   # optional: exact CAN-SPAM text

    [documentation]
    runbook_url = "https://…"
    event_catalog_url = "https://…"
    escalation_url = "https://…"

    [rollback]
    backup_messaging = "old ESP (SendGrid) stays warm for 30 days"
    notification_plan = "#launch + email to support leads"
    staging_environment = "staging"  # LaunchDarkly environment for --env staging

Thresholds and escalation tiers are read from ``[alerts.thresholds]`` and
``[[alerts.escalation]]``, the tables the alerts domain uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot import liveness
from bot import readiness_blocks as rb
from bot.blocks import shown
from bot.clock import Clock, SystemClock
from bot.config import REGION_URLS, ConfigError, Settings
from bot.deliverability import expectation_from_settings
from bot.errors import UserError
from bot.providers.customerio import customerio_for
from bot.providers.dns import DnsClient
from bot.providers.http import HTTPProvider, ProviderError, RetryPolicy
from bot.providers.slack import SlackGateway
from bot.providers.web import WebProbe
from bot.secrets import redact
from bot.status import StatusSection
from bot.store import Store
from bot.textrender import mrkdwn
from checks.base import CheckResult, Status
from checks.context import (
    DEFAULT_SIGNOFFS,
    ChannelInfo,
    CheckContext,
    CredentialFacts,
    EscalationTier,
    FlagClient,
    Providers,
    SignoffItem,
    SignoffState,
    Thresholds,
)
from checks.engine import Engine, UnknownCategory, counts, load_checks, select, verdict

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

ENVIRONMENTS = ("production", "staging")
CREDENTIAL_VARS = {
    "production": ("CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_API_KEY", "CUSTOMERIO_APP_API_KEY"),
    "staging": ("CUSTOMERIO_STAGING_SITE_ID", "CUSTOMERIO_STAGING_TRACK_API_KEY",
                "CUSTOMERIO_STAGING_APP_API_KEY"),
}
SECRET_FILE_VARS = (*CREDENTIAL_VARS["production"], *CREDENTIAL_VARS["staging"],
                    "CUSTOMERIO_WEBHOOK_SIGNING_KEY", "LAUNCHDARKLY_API_TOKEN")


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadinessConfig:
    timeout: float = 10.0
    deadline: float = 60.0
    update_interval: float = 1.0
    catalog_path: str | None = None
    postal_address: str | None = None
    runbook_url: str | None = None
    event_catalog_url: str | None = None
    escalation_url: str | None = None
    backup_messaging: str | None = None
    notification_plan: str | None = None
    staging_flag_environment: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadinessConfig:
        checks = settings.table("checks")
        docs = settings.table("documentation")
        rollback = settings.table("rollback")
        checks.reject_unknown(("timeout_seconds", "deadline_seconds", "update_interval_seconds", "event_catalog",
                               "postal_address"))
        docs.reject_unknown(("runbook_url", "event_catalog_url", "escalation_url"))
        rollback.reject_unknown(("backup_messaging", "notification_plan", "staging_environment"))
        catalog = checks.text("event_catalog")
        if catalog and settings.config_path is not None and not Path(catalog).is_absolute():
            catalog = str(settings.config_path.parent / catalog)
        timeout = checks.number("timeout_seconds", 10, 0.05, 300)
        return cls(
            timeout=timeout,
            deadline=checks.number("deadline_seconds", max(60.0, timeout * 3), 0.1, 1800),
            update_interval=checks.number("update_interval_seconds", 1.0, 0.0, 60),
            catalog_path=catalog,
            postal_address=checks.text("postal_address"),
            runbook_url=docs.text("runbook_url"),
            event_catalog_url=docs.text("event_catalog_url"),
            escalation_url=docs.text("escalation_url"),
            backup_messaging=rollback.text("backup_messaging"),
            notification_plan=rollback.text("notification_plan"),
            staging_flag_environment=rollback.text("staging_environment"),
        )


def _rate(name: str, value: Any, unit: str) -> float:
    if isinstance(value, str):
        raw = value.strip().lower()
        if unit == "ratio" and raw.endswith("%"):
            return float(raw[:-1]) / 100
        if unit == "seconds" and raw.endswith("ms"):
            return float(raw[:-2]) / 1000
        if unit == "seconds" and raw.endswith("s"):
            return float(raw[:-1])
        raise ValueError(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(name)
    return float(value)


def thresholds_from(settings: Settings) -> Thresholds:
    alerts = settings.section("alerts")
    table = alerts.get("thresholds", {}) if isinstance(alerts, Mapping) else {}
    if not isinstance(table, Mapping):
        return Thresholds(problems=("[alerts.thresholds] is not a table",))
    keys = {"api_error_rate": ("api_error_rate", "ratio"), "bounce_rate": ("bounce_rate", "ratio"),
            "complaint_rate": ("complaint_rate", "ratio"), "api_p99_latency": ("p99_latency_seconds", "seconds")}
    values: dict[str, float] = {}
    configured, problems = [], []
    for key, (attr, unit) in keys.items():
        if key not in table:
            continue
        raw = table[key]
        if isinstance(raw, Mapping):
            raw = raw.get("limit")
        try:
            values[attr] = _rate(key, raw, unit)
            configured.append(key)
        except ValueError:
            problems.append(f"{key} = {raw!r}")
    return Thresholds(**values, configured=tuple(configured), problems=tuple(problems))


def escalation_from(settings: Settings) -> tuple[EscalationTier, ...]:
    alerts = settings.section("alerts")
    raw = alerts.get("escalation") if isinstance(alerts, Mapping) else None
    if not isinstance(raw, list):
        return ()
    tiers = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            continue
        mentions = item.get("mentions") or []
        if isinstance(mentions, str):
            mentions = [m.strip() for m in mentions.split(",") if m.strip()]
        delay = item.get("delay_minutes", 0)
        tiers.append(EscalationTier(str(item.get("name") or f"tier {n}"),
                                    float(delay) if isinstance(delay, int | float) else 0.0,
                                    tuple(str(m) for m in mentions)))
    return tuple(tiers)


def dotenv_names(directory: Path) -> tuple[tuple[str, ...], str]:
    """Credential variables defined in ``directory/.env`` (names only, values never read out)."""
    path = directory / ".env"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return (), str(path)
    found = []
    for line in lines:
        line = line.strip().removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if sep and name.strip() in SECRET_FILE_VARS and value.strip().strip("'\""):
            found.append(name.strip())
    return tuple(dict.fromkeys(found)), str(path)


def credential_facts(settings: Settings, environment: str, cwd: Path | None = None) -> CredentialFacts:
    mine = settings.customerio if environment == "production" else settings.customerio_staging
    theirs = settings.customerio_staging if environment == "production" else settings.customerio
    names = CREDENTIAL_VARS[environment]
    missing = tuple(n for n, v in zip(names, (mine.site_id, mine.track_api_key, mine.app_api_key),
                                      strict=True) if not v)
    same = tuple(label for label, a, b in (("Site ID", mine.site_id, theirs.site_id),
                                           ("Track API key", mine.track_api_key, theirs.track_api_key),
                                           ("App API key", mine.app_api_key, theirs.app_api_key))
                 if a and b and a == b)
    found, path = dotenv_names(cwd or Path.cwd())
    return CredentialFacts(missing=missing, other_configured=theirs.complete, same_as_other=same,
                           dotenv_names=found, dotenv_path=path)


# -- provider adapters ----------------------------------------------------------------------------
class SlackChannels:
    """:class:`checks.context.SlackInfo` over the bot's Slack gateway."""

    def __init__(self, slack: SlackGateway) -> None:
        self.slack = slack

    async def channel(self, channel_id: str) -> ChannelInfo:
        try:
            info = await self.slack.channel_info(channel_id)
        except ProviderError as exc:
            if "channel_not_found" in exc.message:
                return ChannelInfo(False, False)
            raise
        return ChannelInfo(True, bool(info.get("is_member")), str(info.get("name") or ""))


class LaunchDarklyFlags:
    """:class:`checks.context.FlagClient` over the project's LaunchDarkly REST client.

    Wraps the traffic domain's ``bot.providers.launchdarkly.LaunchDarkly`` (an
    :class:`~bot.providers.http.HTTPProvider` carrying the token and API version) and asks
    for the raw flag JSON of any project and environment, and for dry-run semantic
    patches (``?dryRun=true``: validated, never applied).
    """

    SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
    ENDPOINT = "/api/v2/flags/{project}/{flag}"

    def __init__(self, http: HTTPProvider) -> None:
        self.http = http

    @staticmethod
    def _path(project: str, flag: str) -> str:
        return f"/api/v2/flags/{quote(project, safe='')}/{quote(flag, safe='')}"

    async def get_flag(self, project: str, flag: str, env: str) -> dict[str, Any]:
        response = await self.http.request("GET", self._path(project, flag), params={"env": env},
                                           endpoint=self.ENDPOINT)
        data = response.json()
        if not isinstance(data, dict):
            raise ProviderError("LaunchDarkly", "GET", self.ENDPOINT, "the flag answer is not an object",
                                status=response.status_code)
        return data

    async def dry_run_patch(self, project: str, flag: str, env: str, instructions: list[dict[str, Any]],
                            comment: str) -> dict[str, Any]:
        body = {"environmentKey": env, "comment": comment[:500], "instructions": instructions}
        response = await self.http.request(
            "PATCH", self._path(project, flag), params={"dryRun": "true"}, endpoint=self.ENDPOINT,
            content=json.dumps(body).encode(), headers={"Content-Type": self.SEMANTIC_PATCH},
            idempotent=True,  # a dry run changes nothing, so it is safe to repeat
        )
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def aclose(self) -> None:
        await self.http.aclose()


def launchdarkly_for(settings: Settings, *, timeout: float = 10.0,
                     retry: RetryPolicy | None = None) -> LaunchDarklyFlags | None:
    """A flag client from LAUNCHDARKLY_* settings, or None when they are not all set."""
    if not (settings.launchdarkly_api_token and settings.launchdarkly_project
            and settings.launchdarkly_environment and settings.launchdarkly_flag):
        return None
    try:
        from bot.providers.launchdarkly import LaunchDarkly  # the traffic domain's client
    except ImportError:  # a build without the traffic domain
        return None
    client = LaunchDarkly(settings.launchdarkly_api_url, settings.launchdarkly_api_token,
                          project=settings.launchdarkly_project,
                          environment=settings.launchdarkly_environment, timeout=timeout, retry=retry)
    return LaunchDarklyFlags(client)


# -- runs -----------------------------------------------------------------------------------------
@dataclass
class RunReport:
    run_id: int
    environment: str
    categories: list[str]
    results: list[CheckResult]
    verdict: str
    counts: dict[str, int]
    wall_ms: float
    planned: int
    started_at: float
    actor: str
    channel_id: str = ""
    message_ts: str = ""
    first_message_ms: float | None = None

    @property
    def go(self) -> bool:
        return self.verdict == "go"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "environment": self.environment, "verdict": self.verdict,
            "counts": self.counts, "wall_ms": round(self.wall_ms, 1), "planned": self.planned,
            "results": [{"id": r.id, "category": r.category, "title": r.title, "status": r.status.value,
                         "severity": r.severity.value, "summary": r.summary, "detail": r.detail,
                         "fix": r.fix, "duration_ms": r.duration_ms} for r in self.results],
        }


OnResult = Callable[[CheckResult], Awaitable[None] | None]


def parse_categories(words: Sequence[str]) -> list[str]:
    cats = list(dict.fromkeys(w.lower() for w in words))
    select(cats)  # raises UnknownCategory with the valid names
    return cats


def _clean(r: CheckResult) -> CheckResult:
    return replace(r, summary=redact(r.summary), detail=redact(r.detail), fix=redact(r.fix),
                   found=redact(r.found))


def result_from_row(row: Mapping[str, Any]) -> CheckResult:
    from checks.base import Severity

    return CheckResult(row["id"], row["category"], row["title"], Status(row["status"]), row["summary"],
                       row.get("detail") or "", row.get("fix") or "", Severity(row["severity"]),
                       row.get("rule") or "", row.get("found") or "", float(row.get("duration_ms") or 0),
                       dict(row.get("data") or {}))


class ReadinessService:
    def __init__(self, settings: Settings, store: Store, *, slack: SlackGateway | None = None,
                 clock: Clock | None = None, launchdarkly: FlagClient | None = None,
                 config: ReadinessConfig | None = None,
                 publish: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None) -> None:
        load_checks()
        self.settings = settings
        self.store = store
        self.repo = store.checks
        self.slack = slack
        self.clock = clock or SystemClock()
        self.launchdarkly = launchdarkly
        self.config = config or ReadinessConfig.from_settings(settings)
        self._publish = publish
        self.owner_id = liveness.new_owner_id()  # written on each run: who is running it

    # -- building a run ----------------------------------------------------------------------------
    def launch_id(self, channel_id: str | None = None) -> int:
        """The launch this run or sign-off belongs to: the channel's, begun here if there is
        none yet, so sign-offs given before `/cio golive` carry into the planned launch."""
        channel = self.settings.launch_channel or channel_id
        if not channel:
            return 0
        launch = self.store.launches.ensure(channel, "cio-launchbot", timezone=self.settings.timezone_name)
        return int(launch["id"])

    def signoff_items(self, launch_id: int) -> tuple[SignoffItem, ...]:
        states = self.repo.signoffs(launch_id)
        out = []
        for item in DEFAULT_SIGNOFFS:
            row = states.get(item.id)
            state = SignoffState(item.id, row["state"], row["by_user"], row["at"]) if row else None
            out.append(replace(item, state=state))
        return tuple(out)

    def context(self, environment: str, launch_id: int = 0) -> CheckContext:
        s, c = self.settings, self.config
        flag_env = s.launchdarkly_environment if environment == "production" else c.staging_flag_environment
        ld_missing = None
        if self.launchdarkly is None and not s.launchdarkly_api_token:
            ld_missing = "LaunchDarkly is not configured (set LAUNCHDARKLY_API_TOKEN)"
        elif self.launchdarkly is None and importlib.util.find_spec("bot.providers.launchdarkly") is None:
            ld_missing = "LaunchDarkly client not configured"
        elif environment != "production" and not flag_env:
            ld_missing = "no LaunchDarkly environment for staging ([rollback] staging_environment)"
        return CheckContext(
            environment=environment,
            other_environment="staging" if environment == "production" else "production",
            region=s.customerio_region,
            region_urls=REGION_URLS,
            credentials=credential_facts(s, environment),
            sending_domain=s.sending_domain,
            dkim_selectors=s.dkim_selectors,
            return_path=expectation_from_settings(s),
            public_url=s.public_url,
            catalog_path=c.catalog_path,
            postal_address=c.postal_address,
            thresholds=thresholds_from(s),
            launch_channel=s.launch_channel,
            operators=s.operators,
            escalation=escalation_from(s),
            runbook_url=c.runbook_url,
            event_catalog_url=c.event_catalog_url,
            escalation_url=c.escalation_url,
            flag_project=s.launchdarkly_project,
            flag_environment=flag_env,
            flag_key=s.launchdarkly_flag,
            backup_messaging=c.backup_messaging,
            notification_plan=c.notification_plan,
            signoffs=self.signoff_items(launch_id),
            launchdarkly_unavailable=ld_missing,
            now=self.clock.timestamp(),
            variable_prefix="CUSTOMERIO_" if environment == "production" else "CUSTOMERIO_STAGING_",
        )

    def _providers(self, environment: str) -> tuple[Providers, list[Any]]:
        other = "staging" if environment == "production" else "production"
        # a server asking us to wait longer than half a check's time is reported, not obeyed
        retry = RetryPolicy(attempts=4, base_delay=0.2, max_delay=2.0, max_wait=self.config.timeout / 2)
        http_timeout = max(0.05, self.config.timeout * 0.8)
        mine = customerio_for(self.settings, environment, timeout=http_timeout, retry=retry)
        theirs = customerio_for(self.settings, other, timeout=http_timeout, retry=retry)
        web = WebProbe(timeout=min(5.0, http_timeout))
        clients: list[Any] = [mine, theirs, web]
        flags: FlagClient | None = self.launchdarkly
        if flags is None:
            own = launchdarkly_for(self.settings, timeout=http_timeout, retry=retry)
            if own is not None:
                clients.append(own)
                flags = own
        providers = Providers(
            track=mine.track, app=mine.app, other_track=theirs.track,
            slack=SlackChannels(self.slack) if self.slack is not None else None,
            web=web,
            launchdarkly=flags,
            # a fresh DNS client per run: its cache (each name asked once) lives for this run
            extra={"dns": DnsClient(self.settings.dns_nameservers, timeout=min(3.0, http_timeout))},
        )
        return providers, clients

    def engine(self, categories: Sequence[str] = ()) -> Engine:
        return Engine(select(categories), timeout=self.config.timeout, deadline=self.config.deadline)

    async def run(self, *, environment: str = "production", categories: Sequence[str] = (),
                  actor: str, source: str, on_result: OnResult | None = None, channel_id: str = "",
                  message_ts: str = "", launch_id: int | None = None) -> RunReport:
        """One stored run. ``on_result`` sees each (redacted) result as it finishes."""
        if environment not in ENVIRONMENTS:
            raise UserError(f"{shown(environment)} is not an environment; use production or staging.")
        cats = parse_categories(categories)
        engine = self.engine(cats)
        launch = self.launch_id(channel_id) if launch_id is None else launch_id
        ctx = self.context(environment, launch)
        started_at = self.clock.timestamp()
        started = time.perf_counter()
        run_id = self.repo.start_run(started_at=started_at, environment=environment, actor=actor,
                                     source=source, categories=cats, planned=engine.planned,
                                     launch_id=launch, channel_id=channel_id, runner=self.owner_id)
        if message_ts:
            self.repo.set_message(run_id, channel_id, message_ts)
        providers, clients = self._providers(environment)

        async def collect(result: CheckResult) -> None:
            clean = _clean(result)
            self.repo.add_result(run_id, clean.to_dict())
            if on_result is not None:
                maybe = on_result(clean)
                if maybe is not None:
                    await maybe

        try:
            results = await engine.run(ctx, providers, on_result=collect)
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.aclose()
        results = [_clean(r) for r in results]
        wall = (time.perf_counter() - started) * 1000
        outcome, tally = verdict(results), counts(results)
        self.repo.finish_run(run_id, finished_at=self.clock.timestamp(), verdict=outcome, counts=tally,
                             wall_ms=wall)
        report = RunReport(run_id, environment, cats, results, outcome, tally, wall, engine.planned,
                           started_at, actor, channel_id, message_ts)
        if self._publish is not None:
            await self._publish("checks.completed", {
                "run_id": run_id, "environment": environment, "verdict": outcome, "counts": tally,
                "source": source, "channel_id": channel_id, "launch_id": launch})
        return report

    # -- Slack: one message, updated in place --------------------------------------------------------
    async def run_in_channel(self, channel_id: str, *, environment: str = "production",
                             categories: Sequence[str] = (), actor: str, source: str = "slack",
                             thread_ts: str | None = None, launch_id: int | None = None) -> RunReport:
        if self.slack is None:
            raise UserError("Slack is not configured, so the report cannot be posted.")
        slack = self.slack
        cats = parse_categories(categories)
        planned = self.engine(cats).planned
        began = time.perf_counter()
        started_at = self.clock.timestamp()
        results: list[CheckResult] = []

        def view(done: bool, run_id: int | None = None, wall: float = 0.0) -> rb.ReportView:
            return rb.ReportView(environment, planned, list(results), done, run_id, actor, wall, started_at)

        text, blocks = rb.render(view(False))
        try:
            ts = await slack.post_message(channel_id, text, blocks, thread_ts=thread_ts)
        except ProviderError as exc:
            if "not_in_channel" in exc.message or "channel_not_found" in exc.message:
                raise UserError("I cannot post in this channel, so nothing was run: invite me with "
                                "`/invite @cio-launchbot`, or run `/cio check` in the launch channel.") from None
            raise
        first_ms = (time.perf_counter() - began) * 1000
        dirty, stop = asyncio.Event(), asyncio.Event()
        interval = self.config.update_interval

        async def updater() -> None:
            last = 0.0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                waiter = asyncio.ensure_future(dirty.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    return
                pause = interval - (loop.time() - last)
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
                    if stop.is_set():
                        return
                dirty.clear()
                t, b = rb.render(view(False))
                try:
                    await slack.update_message(channel_id, ts, t, b)
                except ProviderError as exc:
                    log.warning("progress update of the readiness report failed: %s", exc)
                last = loop.time()

        def arrived(result: CheckResult) -> None:
            results.append(result)
            dirty.set()

        task = asyncio.ensure_future(updater())
        try:
            report = await self.run(environment=environment, categories=cats, actor=actor, source=source,
                                    on_result=arrived, channel_id=channel_id, message_ts=ts,
                                    launch_id=launch_id)
        except BaseException as exc:
            stop.set()
            await task
            with contextlib.suppress(Exception):  # the message must not keep saying "running"
                await slack.update_message(channel_id, ts, *rb.stopped(
                    environment, f"the check could not finish ({type(exc).__name__})"))
            raise
        stop.set()
        await task  # an update in flight lands before the final one
        results[:] = report.results
        text, blocks = rb.render(view(True, report.run_id, report.wall_ms))
        try:
            await slack.update_message(channel_id, ts, text, blocks)
        except ProviderError as exc:  # the verdict must not be lost: post it afresh
            log.warning("final update of the readiness report failed (%s); posting it anew", exc)
            ts = await slack.post_message(channel_id, text, blocks, thread_ts=thread_ts)
            self.repo.set_message(report.run_id, channel_id, ts)
            report.message_ts = ts
        report.first_message_ms = first_ms
        return report

    def _abandoned(self, run: dict[str, Any]) -> bool:
        """A run nobody will finish: its process is known dead, or (another host's, or from
        before runs had owners) it has been running past any deadline a run can have."""
        if liveness.alive_here(run.get("runner")):
            return False
        if liveness.process_gone(run.get("runner")):
            return True
        return self.clock.timestamp() - float(run["started_at"] or 0) > self.config.deadline + 30

    async def recover(self) -> None:
        """Runs left in flight by a process that is gone are marked interrupted, and their
        messages say so instead of "running" forever: at start (a restart on this host is seen
        at once), then every 15 s (another replica's run, once past its deadline)."""
        try:
            while True:
                await self.interrupt_abandoned()
                await asyncio.sleep(15)
        finally:
            liveness.release(self.owner_id)

    async def interrupt_abandoned(self) -> None:
        for run in self.repo.interrupt_unfinished(self.clock.timestamp(), self._abandoned):
            if self.slack is None or not run["message_ts"]:
                continue
            try:
                await self.slack.update_message(run["channel_id"], run["message_ts"], *rb.stopped(
                    run["environment"], "the bot restarted before the check finished", run["id"]))
            except ProviderError as exc:
                log.warning("could not mark interrupted readiness run #%s in Slack: %s", run["id"], exc)

    # -- sign-offs -------------------------------------------------------------------------------------
    async def set_signoff(self, item_id: str, user_id: str, *, confirm: bool, channel_id: str,
                          message_ts: str | None) -> str:
        """Confirm or revoke a sign-off item; re-renders the report it was pressed on."""
        items = {i.id: i for i in DEFAULT_SIGNOFFS}
        if item_id not in items:
            raise UserError(f"{shown(item_id)} is not a sign-off item; run `/cio check` again for fresh buttons.")
        item = items[item_id]
        run = self.repo.run_for_message(channel_id, message_ts) if message_ts else None
        if run is not None and run["verdict"] == "running":
            raise UserError("That check is still running; confirm once its report is final.")
        launch = int(run["launch_id"]) if run else self.launch_id(channel_id)
        current = self.repo.signoffs(launch).get(item_id)
        if confirm and current and current["state"] == "confirmed":
            raise UserError(f"“{item.title}” is already confirmed by <@{current['by_user']}> "
                            f"({rb.utc_text(current['at'])}).")
        if not confirm and not (current and current["state"] == "confirmed"):
            raise UserError(f"“{item.title}” is not confirmed, so there is nothing to revoke.")
        now = self.clock.timestamp()
        self.repo.set_signoff(launch, item_id, "confirmed" if confirm else "revoked", user_id, now,
                              run["id"] if run else None)
        after = ""
        if run is not None:
            after = await self._refresh_report(run, user_id, now)
        verb = "confirmed" if confirm else "revoked"
        return f"You {verb} the sign-off “{item.title}”.{after}"

    async def _refresh_report(self, run: dict[str, Any], user_id: str, now: float) -> str:
        """The run's sign-off results as they stand now, its verdict recomputed, its message updated."""
        from checks.signoff import signoff_result

        items = {i.id: i for i in self.signoff_items(int(run["launch_id"]))}
        results = []
        for row in self.repo.results(run["id"]):
            r = result_from_row(row)
            if r.id in items and r.data.get("signoff"):
                r = replace(signoff_result(items[r.id], run["environment"]), duration_ms=r.duration_ms)
                self.repo.add_result(run["id"], r.to_dict())
            results.append(r)
        outcome, tally = verdict(results), counts(results)
        self.repo.finish_run(run["id"], finished_at=run["finished_at"] or now, verdict=outcome, counts=tally,
                             wall_ms=run["wall_ms"] or 0.0)
        if self.slack is not None and run["message_ts"]:
            v = rb.ReportView(run["environment"], int(run["planned"] or len(results)), results, True,
                              run["id"], run["actor"], run["wall_ms"] or 0.0, run["started_at"],
                              note=f"Sign-off updated by <@{user_id}> at {rb.utc_text(now)}")
            text, blocks = rb.render(v)
            try:
                await self.slack.update_message(run["channel_id"], run["message_ts"], text, blocks)
            except ProviderError as exc:
                log.warning("could not update the readiness report after a sign-off: %s", exc)
                return " The report could not be updated in place; run `/cio check` for a fresh one."
        left = sum(1 for r in results if r.blocks_launch)
        return (" The verdict is now GO." if outcome == "go" else
                f" The verdict is NO-GO ({left} blocking item{'s' if left != 1 else ''} left).")

    # -- status and events ------------------------------------------------------------------------------
    async def status_section(self, launch: dict[str, Any] | None, channel_id: str) -> StatusSection:
        run = self.repo.last_run()
        if run is None:
            return StatusSection("Readiness", ["No readiness check has run yet: `/cio check`."])
        tally = run["counts"]
        who = f"<@{run['actor']}>" if run["actor"][:1] in "UW" else run["actor"]
        figures = ", ".join(f"{tally.get(k, 0)} {label}" for k, label in
                            (("pass", "passed"), ("warn", "warnings"), ("fail", "failed"),
                             ("error", "could not run"), ("skip", "skipped")) if tally.get(k))
        lines = [f"*Last check:* {'GO' if run['verdict'] == 'go' else 'NO-GO'} ({run['environment']}), "
                 f"run #{run['id']} by {who} "
                 f"{rb.blocks.user_date(run['started_at'], rb.utc_text(run['started_at']))}: {figures}"]
        blocking = [r for r in self.repo.results(run["id"])
                    if r["severity"] == "blocking" and r["status"] in ("fail", "error")]
        if blocking:
            names = ", ".join(f"`{r['id']}`" for r in blocking[:8])
            more = f" and {len(blocking) - 8} more" if len(blocking) > 8 else ""
            lines.append(f"*Blocking:* {names}{more}")
        items = self.signoff_items(self.launch_id(channel_id))
        done = sum(1 for i in items if i.state and i.state.state == "confirmed")
        lines.append(f"*Sign-offs:* {done}/{len(items)} confirmed")
        return StatusSection("Readiness", lines)

    async def on_timeline_action(self, payload: dict[str, Any]) -> None:
        """``timeline.action``: ``readiness_check:staging`` and ``smoke_test`` runs. Returns when the run
        has finished (the timeline publishes from a background task): the timeline records the action
        as done only then, so a run killed half-way is reported after a restart instead of lost."""
        action = str(payload.get("action") or "")
        if action == "readiness_check:staging":
            environment, cats = "staging", []
        elif action == "smoke_test":
            environment, cats = "production", ["testing"]
        else:
            return
        channel = payload.get("channel_id") or self.settings.launch_channel
        if not channel:
            log.warning("timeline action %s has no channel and CIO_LAUNCH_CHANNEL is not set", action)
            return
        launch = payload.get("launch_id")
        await self.run_in_channel(str(channel), environment=environment, categories=cats, actor="timeline",
                                  source="timeline", thread_ts=payload.get("thread_ts") or None,
                                  launch_id=int(launch) if launch is not None else None)


def configure(services: Services) -> None:
    settings = services.settings
    service = ReadinessService(
        settings, services.store, slack=services.slack, clock=services.clock,
        launchdarkly=getattr(services, "launchdarkly", None),
        publish=services.events.publish,
    )
    services.readiness = service
    services.status.register("readiness", service.status_section)
    services.events.subscribe("timeline.action", service.on_timeline_action)
    services.loops["readiness.recover"] = service.recover


# -- cio-bot check ----------------------------------------------------------------------------------
def format_text(report: RunReport) -> str:
    head = (f"Readiness {report.verdict.upper()}: {report.environment} (run #{report.run_id}, "
            f"{len(report.results)} results, {report.wall_ms / 1000:.1f} s)")
    order = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}
    lines = [head, ""]
    for r in sorted(report.results, key=lambda r: order[r.status]):
        tag = r.status.value.upper() + ("*" if r.severity.value == "advisory" else "")
        lines.append(f"{tag:<6} {r.id:<36} {mrkdwn(r.summary)}")
        if r.fix and r.status is not Status.PASS:
            lines.append(f"{'':<6} {'':<36} fix: {mrkdwn(r.fix)}")
    tally = ", ".join(f"{v} {k}" for k, v in report.counts.items() if v)
    lines += ["", f"{tally}. (* advisory: does not block the launch)"]
    return "\n".join(lines)


async def cli_check(categories: Sequence[str], *, environment: str = "production", fmt: str = "text",
                    env: Mapping[str, str] | None = None, out: Any = None, err: Any = None) -> int:
    """``cio-bot check``: 0 = go, 1 = no-go, 2 = configuration error."""
    out = out or sys.stdout
    err = err or sys.stderr
    env = dict(os.environ if env is None else env)
    try:
        parse_categories(categories)
    except UnknownCategory as exc:
        print(f"cio-bot check: {exc}", file=err)
        return 2
    from bot.sandbox.world import Sandbox

    sandbox: Sandbox | None = None
    tmp: Any = None
    try:
        if not env.get("CUSTOMERIO_SITE_ID"):
            sandbox = await Sandbox().start()
            env = sandbox.overlay(env)
            if not env.get("CIO_DB_PATH"):
                import tempfile

                tmp = tempfile.TemporaryDirectory(prefix="cio-check-")
                env["CIO_DB_PATH"] = str(Path(tmp.name) / "check.db")
            print("cio-bot check: no Customer.io credentials configured (CUSTOMERIO_SITE_ID): "
                  "running against the built-in sandbox.", file=err)
        settings = Settings.from_env(env)
        store = Store(settings.db_path)
        slack = None
        if settings.slack_bot_token is not None:
            slack = SlackGateway(settings.slack_bot_token.reveal(), settings.slack_api_url)
        try:
            service = ReadinessService(settings, store, slack=slack)
            actor = "cli:" + (env.get("USER") or env.get("USERNAME") or "unknown")
            report = await service.run(environment=environment, categories=categories, actor=actor,
                                       source="cli")
        finally:
            store.close()
            if slack is not None:
                with contextlib.suppress(Exception):
                    session = getattr(slack.client, "session", None)
                    if session is not None:
                        await session.close()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=err)
        return 2
    finally:
        if sandbox is not None:
            await sandbox.stop()
        if tmp is not None:
            tmp.cleanup()
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2), file=out)
    else:
        print(format_text(report), file=out)
    return 0 if report.go else 1


