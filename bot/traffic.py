"""Traffic control: ramp and roll back the Customer.io flag in LaunchDarkly, verified
before announced.

A change goes: request (strict input, health gate for increases, outside-change check)
-> confirmation stored server side (operator, expiry, single use) -> click -> the launch's
in-flight lock -> fresh read -> semantic patch -> read back and compare with what was
asked -> evaluate the flag JSON just read with the real LaunchDarkly server SDK over a
sample of contexts -> record -> announce in the launch channel -> publish events.
Nothing is announced as done that was not verified; a write without a clear answer is
re-read and reported as what was found.

Events: publishes ``traffic.changed`` after every verified change and
``traffic.rolled_back`` after a verified rollback; subscribes to ``rollback.requested``
{launch_id, reason, actor, channel_id} (auto-rollback: no confirmation).
Health: registers the ``traffic soak`` source (minimum time at the current step).
Status: registers the ``Traffic`` section (the flag as LaunchDarkly reports it now).

CIO_CONFIG ``[traffic]`` keys: see :class:`TrafficConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

from bot import blocks, liveness
from bot.config import Settings
from bot.errors import UserError
from bot.flageval import SDKStream, StreamLagging, Verification, verify_served_fraction
from bot.health import HealthFinding
from bot.providers.http import ProviderError, RetryPolicy
from bot.providers.launchdarkly import (
    FULL,
    ApprovalRequired,
    FlagState,
    LaunchDarkly,
    OutcomeUnknown,
    format_pct,
)
from bot.status import StatusSection

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

KILL_MODES = ("flag_off", "zero_rollout")


@dataclass(frozen=True)
class TrafficConfig:
    """``[traffic]`` in CIO_CONFIG."""

    min_soak_minutes: float = 30.0  # minimum time at the current step before increasing
    rollback_confirmation: bool = True  # /cio rollback asks for one confirmation click
    kill_mode: str = "flag_off"  # flag_off (turnFlagOff) | zero_rollout (0% rollout, flag stays on)
    confirmation_minutes: float = 10.0  # confirmation buttons expire after this
    verify_sample: int = 5000  # contexts evaluated with the SDK per verification
    verify_z: float = 4.0  # binomial tolerance in standard deviations
    request_timeout_seconds: float = 10.0  # per LaunchDarkly request
    lock_seconds: float = 10.0  # an in-flight lock not renewed for this long is stale (its process died)
    rollback_wait_seconds: float = 15.0  # a rollback waits this long for an in-flight change
    context_kind: str = "user"  # rolloutContextKind for a new rollout
    bucket_by: str = "key"  # rolloutBucketBy for a new rollout
    sdk_stream_url: str = "https://stream.launchdarkly.com"  # with LAUNCHDARKLY_SDK_KEY
    sdk_base_url: str = "https://sdk.launchdarkly.com"  # with LAUNCHDARKLY_SDK_KEY
    sdk_stream_wait_seconds: float = 5.0  # how long verification waits for the stream to deliver

    @classmethod
    def from_settings(cls, settings: Settings) -> TrafficConfig:
        table = settings.table("traffic")
        table.reject_unknown(cls.__dataclass_fields__)
        defaults = cls()
        config = cls(
            min_soak_minutes=table.number("min_soak_minutes", defaults.min_soak_minutes, 0),
            rollback_confirmation=table.boolean("rollback_confirmation", defaults.rollback_confirmation),
            kill_mode=table.choice("kill_mode", defaults.kill_mode, KILL_MODES),
            confirmation_minutes=table.number("confirmation_minutes", defaults.confirmation_minutes, 0),
            verify_sample=table.integer("verify_sample", defaults.verify_sample, 100),
            verify_z=table.number("verify_z", defaults.verify_z, 0),
            request_timeout_seconds=table.number("request_timeout_seconds", defaults.request_timeout_seconds, 0),
            lock_seconds=table.number("lock_seconds", defaults.lock_seconds, 0),
            rollback_wait_seconds=table.number("rollback_wait_seconds", defaults.rollback_wait_seconds, 0),
            context_kind=table.string("context_kind", defaults.context_kind),
            bucket_by=table.string("bucket_by", defaults.bucket_by),
            sdk_stream_url=table.string("sdk_stream_url", defaults.sdk_stream_url),
            sdk_base_url=table.string("sdk_base_url", defaults.sdk_base_url),
            sdk_stream_wait_seconds=table.number("sdk_stream_wait_seconds", defaults.sdk_stream_wait_seconds, 0),
        )
        for name in ("verify_z", "request_timeout_seconds", "confirmation_minutes", "lock_seconds"):
            if getattr(config, name) <= 0:  # the defaults are > 0: the table set it
                raise table.refuse(name, "a number > 0", table.values[name])
        return config


# -- what is asked and what is found ----------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What a change must produce: who gets the new path, and the on/off state."""

    served: int  # thousandths of a percent served true
    on: bool | None  # None: either (the weights decide)
    weights: dict[int, int] | None  # fallthrough weights per variation index, when set


def snapshot(flag: FlagState) -> dict[str, Any]:
    return {"on": flag.on, "served": flag.served, "weights": {str(k): v for k, v in flag.fallthrough_weights().items()},
            "version": flag.version, "flag_version": flag.flag_version, "off_serves_true": flag.off_serves_true}


def rollout_instructions(flag: FlagState, served: int, *, bucket_by: str, context_kind: str) -> list[dict[str, Any]]:
    """Fallthrough rollout giving ``served`` to the true variation, every other variation
    named with its weight, so LaunchDarkly keeps the variation order (index order) and the
    contexts in a smaller rollout stay in a larger one."""
    true_i, false_i = flag.index_of(True), flag.index_of(False)
    assert true_i is not None and false_i is not None
    weights = {v.id: 0 for v in flag.variations}
    weights[flag.variations[true_i].id] = served
    weights[flag.variations[false_i].id] = FULL - served
    return [{
        "kind": "updateFallthroughVariationOrRollout",
        "rolloutWeights": weights,
        "rolloutBucketBy": flag.bucket_by or bucket_by,
        "rolloutContextKind": flag.context_kind or context_kind,
    }]


def rollout_weights(flag: FlagState, served: int) -> dict[int, int]:
    true_i, false_i = flag.index_of(True), flag.index_of(False)
    out = {i: 0 for i in range(len(flag.variations))}
    out[true_i] = served  # type: ignore[index]
    out[false_i] = FULL - served  # type: ignore[index]
    return out


def differences(asked: Target, found: FlagState) -> list[str]:
    out = []
    if asked.on is not None and found.on != asked.on:
        out.append(f"the flag is {'on' if found.on else 'off'}, asked {'on' if asked.on else 'off'}")
    if asked.weights is not None and found.on and found.fallthrough_weights() != asked.weights:
        out.append(f"fallthrough weights are {_weights_text(found.fallthrough_weights())}, "
                   f"asked {_weights_text(asked.weights)}")
    if found.served != asked.served:
        out.append(f"it serves {format_pct(found.served)} to the new path, asked {format_pct(asked.served)}")
    return out


def _weights_text(weights: dict[int, int]) -> str:
    return "/".join(format_pct(w) for _, w in sorted(weights.items()))


# -- results ------------------------------------------------------------------------------------
@dataclass
class Proposal:
    token: str
    kind: str  # ramp | rollback
    launch_id: int
    requested_by: str
    current: FlagState
    target_pct: int  # 0 for a rollback
    reason: str
    findings: list[HealthFinding] = field(default_factory=list)
    gate_ok: bool = True
    forced: bool = False
    outside: list[str] = field(default_factory=list)
    expires_ts: float = 0.0
    kill_label: str = ""

    @property
    def increasing(self) -> bool:
        return self.target_pct * 1000 > self.current.served


@dataclass
class Outcome:
    status: str  # verified | unverified | refused | failed | unknown | noop
    text: str  # a sentence for whoever asked (replaces the confirmation message)
    change_id: int | None = None
    verification: Verification | None = None
    durations: dict[str, float] = field(default_factory=dict)
    ld_calls: int = 0


class TrafficService:
    def __init__(self, services: Services, config: TrafficConfig, provider: LaunchDarkly | None) -> None:
        self.services = services
        self.config = config
        self.provider = provider
        self.settings = services.settings
        self.repo = services.store.traffic
        # host:pid:random: a lock whose process is gone from this host is released at once
        self.boot_id = liveness.new_owner_id()
        self.flag_key = services.settings.launchdarkly_flag or ""
        self.environment = services.settings.launchdarkly_environment or ""
        self.stream: SDKStream | None = None

    # -- small helpers --------------------------------------------------------------------------
    def _ld(self) -> LaunchDarkly:
        if self.provider is None:
            raise UserError(
                "LaunchDarkly is not configured, so traffic cannot be moved: set LAUNCHDARKLY_API_TOKEN, "
                "LAUNCHDARKLY_PROJECT, LAUNCHDARKLY_ENVIRONMENT and LAUNCHDARKLY_FLAG."
            )
        return self.provider

    def _now(self) -> tuple[str, float]:
        now = self.services.clock.now()
        return now.astimezone(UTC).isoformat(timespec="milliseconds"), now.timestamp()

    def channel(self, channel_id: str) -> str:
        return self.settings.launch_channel or channel_id

    def launch_id(self, channel_id: str, user_id: str) -> int:
        return int(self.services.store.launches.ensure(self.channel(channel_id), user_id)["id"])

    async def read(self, *, timeout: float | None = None) -> FlagState:
        """The flag now; a failure to read is a sentence saying nothing was changed."""
        try:
            flag = await self._ld().get_flag(self.flag_key, timeout=timeout)
        except ProviderError as exc:
            raise UserError(f"I could not read the flag from LaunchDarkly, so nothing was changed: {exc}.") from None
        if not flag.boolean:
            raise UserError(
                f"Flag `{self.flag_key}` does not have true and false variations, so I cannot tell which "
                "serves Customer.io; point LAUNCHDARKLY_FLAG at the boolean flag that routes traffic."
            )
        return flag

    def in_flight(self, launch_id: int) -> dict[str, Any] | None:
        return self.repo.lock(launch_id, self._now()[1])

    @staticmethod
    def busy_sentence(lock: dict[str, Any]) -> str:
        return (f"<@{lock['holder']}> is changing traffic right now ({lock['what']}, started "
                f"{blocks.user_date(lock['acquired_ts'], lock['acquired_at'][11:19] + ' UTC', '{time}')}); "
                "one change at a time: wait for it to finish, then check `/cio status`.")

    def outside_changes(self, launch_id: int, flag: FlagState) -> list[str]:
        """What differs between LaunchDarkly now and the bot's last verified change."""
        last = self.repo.last_verified(launch_id)
        if not last or not last.get("after"):
            return []
        after = last["after"]
        if after.get("version") == flag.version:
            return []
        out = [f"LaunchDarkly version {after.get('version')} → {flag.version}"]
        if bool(after.get("on")) != flag.on:
            out.append(f"the flag was turned {'on' if flag.on else 'off'}")
        if after.get("served") != flag.served:
            out.append(f"it serves {format_pct(flag.served)} to the new path, the bot had set "
                       f"{format_pct(int(after.get('served') or 0))}")
        elif {str(k): v for k, v in flag.fallthrough_weights().items()} != after.get("weights"):
            out.append("the fallthrough weights differ")
        if len(out) == 1:
            out.append("targeting was edited (weights and on/off unchanged)")
        who = f"<@{last['confirmed_by'] or last['requested_by']}>"
        out.insert(0, f"since {who}'s change to {format_pct(int(after.get('served') or 0))}")
        latest = self.repo.history(launch_id, 1)[0]
        if latest["id"] != last["id"] and latest["status"] in ("unknown", "interrupted", "unverified"):
            out.append(f"note: the bot's latest attempt ({latest['kind']} to {latest['to_pct']:g}%) ended "
                       f"{latest['status']}, so part of this may be that attempt")
        return out

    # -- the health gate ------------------------------------------------------------------------
    async def soak_findings(self, launch_id: int | None) -> list[HealthFinding]:
        """Minimum time at the current step (the ``traffic soak`` health source)."""
        if launch_id is None or self.config.min_soak_minutes <= 0:
            return [HealthFinding("soak time", True, "no minimum soak time configured")]
        last = self.repo.last_verified(launch_id)
        if not last or not last.get("to_pct"):
            return [HealthFinding("soak time", True, "no earlier step to soak")]
        _, now_ts = self._now()
        elapsed = (now_ts - float(last["finished_ts"] or now_ts)) / 60
        need = self.config.min_soak_minutes
        pct = f"{last['to_pct']:g}%"
        if elapsed >= need:
            return [HealthFinding("soak time", True, f"{elapsed:.0f} min at {pct} (minimum {need:g} min)")]
        ready = float(last["finished_ts"]) + need * 60
        when = blocks.user_date(ready, datetime.fromtimestamp(ready, UTC).strftime("%H:%M UTC"), "{time}")
        return [HealthFinding("soak time", False,
                              f"only {elapsed:.0f} min at {pct} of the {need:g} min minimum; increasing is allowed from {when}")]

    # -- requests -------------------------------------------------------------------------------
    async def propose_ramp(self, *, channel_id: str, user_id: str, percent: int, force_reason: str | None) -> Proposal:
        self._ld()
        launch_id = self.launch_id(channel_id, user_id)
        if lock := self.in_flight(launch_id):
            raise UserError(self.busy_sentence(lock))
        flag = await self.read()
        target = percent * 1000
        if target == flag.served and (flag.on or target == 0):
            raise UserError(f"`{self.flag_key}` already serves {percent}% to the new path ({flag.describe()}, "
                            f"LaunchDarkly version {flag.version}); nothing to change.")
        proposal = Proposal("", "ramp", launch_id, user_id, flag, percent, force_reason or "")
        if proposal.increasing:
            proposal.findings = await self.services.health.findings(launch_id)
            proposal.gate_ok = all(f.ok for f in proposal.findings)
            if not proposal.gate_ok:
                if not force_reason:
                    failing = "; ".join(f"{f.name}: {f.detail}" for f in proposal.findings if not f.ok)
                    raise UserError(
                        f"The health gate blocks {format_pct(flag.served)} → {percent}%: {failing}. "
                        f"Fix that first, or override with `/cio ramp {percent} --force \"reason\"` "
                        "(the reason is recorded and announced)."
                    )
                proposal.forced = True
        await self._dry_run(flag, target, user_id, force_reason)
        proposal.outside = self.outside_changes(launch_id, flag)
        return self._store_proposal(proposal, channel_id)

    def _ramp_build(self, served: int) -> Callable[[FlagState], list[dict[str, Any]]]:
        def build(current: FlagState) -> list[dict[str, Any]]:
            instructions = rollout_instructions(current, served, bucket_by=self.config.bucket_by,
                                                context_kind=self.config.context_kind)
            if served and not current.on:
                instructions.append({"kind": "turnFlagOn"})
            return instructions

        return build

    async def _dry_run(self, flag: FlagState, served: int, user_id: str, reason: str | None) -> None:
        """Ask LaunchDarkly to validate the ramp (``?dryRun=true``) before anyone confirms it,
        so an approval requirement or a rejected patch shows up now, not after the click."""
        comment = self._comment("ramp", user_id, "", reason or "", False, served // 1000)
        try:
            await self._ld().patch_flag(self.flag_key, self._ramp_build(served), current=flag,
                                        comment=comment, dry_run=True)
        except ApprovalRequired as exc:
            raise UserError(f"LaunchDarkly would refuse this change: {exc.message}.") from None
        except ProviderError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                raise UserError(f"LaunchDarkly rejects this change in a dry run (HTTP {exc.status}): "
                                f"{exc.message}. Nothing was changed.") from None
            # no clear answer to a validation: the confirmed change handles it for real
            log.warning("LaunchDarkly dry run not conclusive: %s", exc)

    async def request_rollback(self, *, channel_id: str, user_id: str, reason: str) -> Proposal | Outcome:
        """With confirmation on: a proposal. Off: the rollback itself."""
        self._ld()
        launch_id = self.launch_id(channel_id, user_id)
        if not self.config.rollback_confirmation:
            return await self.rollback(launch_id=launch_id, actor=user_id, reason=reason,
                                       channel_id=channel_id, trigger="command", started=time.perf_counter())
        flag = await self.read()
        if flag.served == 0:
            raise UserError(f"`{self.flag_key}` already sends no traffic to the new path ({flag.describe()}, "
                            f"LaunchDarkly version {flag.version}); nothing to roll back.")
        proposal = Proposal("", "rollback", launch_id, user_id, flag, 0, reason)
        proposal.kill_label = self._kill_plan(flag)[0]
        proposal.outside = self.outside_changes(launch_id, flag)
        return self._store_proposal(proposal, channel_id)

    def _store_proposal(self, proposal: Proposal, channel_id: str) -> Proposal:
        at, now_ts = self._now()
        proposal.token = secrets.token_urlsafe(18)
        proposal.expires_ts = now_ts + self.config.confirmation_minutes * 60
        self.repo.create_confirmation(
            token=proposal.token, launch_id=proposal.launch_id, kind=proposal.kind,
            target_pct=proposal.target_pct, requested_by=proposal.requested_by, reason=proposal.reason,
            forced=proposal.forced, channel_id=channel_id, observed_version=proposal.current.version,
            observed=snapshot(proposal.current), created_at=at, expires_ts=proposal.expires_ts,
        )
        return proposal

    async def cancel(self, token: str, *, user_id: str) -> str:
        conf = self._usable(token)
        at, _ = self._now()
        if not self.repo.use_confirmation(token, user_id=user_id, at=at, outcome="cancelled"):
            raise UserError(self._used_sentence(self.repo.confirmation(token) or conf))
        what = f"ramp to {conf['target_pct']}%" if conf["kind"] == "ramp" else "rollback"
        return f"Cancelled by <@{user_id}>: the {what} asked by <@{conf['requested_by']}> was not made; nothing changed."

    def _usable(self, token: str) -> dict[str, Any]:
        conf = self.repo.confirmation(token) if token else None
        if conf is None:
            raise UserError("I have no record of this confirmation; run the command again.")
        if conf["used_at"]:
            raise UserError(self._used_sentence(conf))
        _, now_ts = self._now()
        if now_ts > conf["expires_ts"]:
            minutes = f"{self.config.confirmation_minutes:g}"
            again = f"/cio ramp {conf['target_pct']}" if conf["kind"] == "ramp" else "/cio rollback"
            raise UserError(f"This confirmation expired (buttons are valid for {minutes} minutes) and nothing "
                            f"was changed; run `{again}` again to see the current state.")
        return conf

    @staticmethod
    def _used_sentence(conf: dict[str, Any]) -> str:
        verb = "cancelled" if conf.get("outcome") == "cancelled" else "confirmed"
        return (f"This was already {verb} by <@{conf['used_by']}> at {str(conf['used_at'])[11:19]} UTC; "
                "a confirmation works once, so nothing more was changed. See `/cio status`.")

    async def confirm(self, token: str, *, user_id: str, channel_id: str) -> Outcome:
        """A confirmation click (the clicker's operator status is checked by the dispatcher)."""
        started = time.perf_counter()
        conf = self._usable(token)
        launch_id = int(conf["launch_id"])
        what = (f"ramp to {conf['target_pct']}%" if conf["kind"] == "ramp" else "rollback")
        at, now_ts = self._now()
        if busy := self.repo.acquire_lock(launch_id, holder=user_id, what=what, boot_id=self.boot_id,
                                          now_ts=now_ts, at=at, ttl=self.config.lock_seconds):
            if conf["kind"] != "rollback":
                raise UserError(self.busy_sentence(busy))
            busy = await self._wait_for_lock(launch_id, user_id, what)
            if busy:
                raise UserError(self.busy_sentence(busy))
        async with self._holding(launch_id, user_id):
            if not self.repo.use_confirmation(token, user_id=user_id, at=at, outcome="confirmed"):
                raise UserError(self._used_sentence(self.repo.confirmation(token) or conf))
            if conf["kind"] == "rollback":
                return await self._rollback_locked(
                    launch_id=launch_id, actor=conf["requested_by"], confirmed_by=user_id,
                    reason=conf["reason"] or "", channel_id=conf["channel_id"] or channel_id,
                    trigger="button", requested_at=conf["created_at"], started=started,
                )
            return await self._ramp_locked(conf, user_id, started)

    async def _wait_for_lock(self, launch_id: int, holder: str, what: str) -> dict[str, Any] | None:
        """A rollback waits (briefly) for an in-flight change rather than being refused; a lock
        whose process died is released (and its change reported) as soon as it is stale."""
        deadline = time.monotonic() + self.config.rollback_wait_seconds
        while True:
            at, now_ts = self._now()
            busy = self.repo.acquire_lock(launch_id, holder=holder, what=what, boot_id=self.boot_id,
                                          now_ts=now_ts, at=at, ttl=self.config.lock_seconds)
            if busy is None or time.monotonic() >= deadline:
                return busy
            if busy["expires_ts"] <= now_ts or liveness.process_gone(busy["boot_id"]):
                # the lock in the way is stale: release it now rather than at the next sweep
                if interrupted := self.sweep_stale_locks():
                    self.services.spawn(self.report_interrupted(interrupted), name="traffic.interrupted")
                    continue
            await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def _holding(self, launch_id: int, holder: str) -> Any:
        """While a change runs, renew its lock so that other processes know this one is alive;
        on the way out (done, failed or cancelled) release it."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.config.lock_seconds / 3)
                if not self.repo.renew_lock(launch_id, self.boot_id, self._now()[1] + self.config.lock_seconds):
                    log.error("the traffic lock of launch %s was taken from this process mid-change", launch_id)
                    return

        renewing = asyncio.get_running_loop().create_task(renew(), name="traffic.lock-renewal")
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            self.repo.release_lock(launch_id, self.boot_id, holder)

    def sweep_stale_locks(self) -> list[int]:
        """Release the locks of processes that are gone; the changes they held, now marked
        interrupted, are returned to be reported."""
        at, now_ts = self._now()
        released = self.repo.release_stale(self.boot_id, at, now_ts, liveness.process_gone)
        for lock in released:
            log.warning("released the traffic lock of a stopped process (%s by %s); its outcome is read from "
                        "LaunchDarkly, not assumed", lock["what"], lock["holder"])
        return [int(lock["change_id"]) for lock in released if lock["change_id"]]

    async def watch_locks(self) -> None:
        """Look for locks left by dead processes (another replica killed mid-change)."""
        while True:
            await asyncio.sleep(max(0.2, min(2.0, self.config.lock_seconds / 5)))
            if interrupted := self.sweep_stale_locks():
                await self.report_interrupted(interrupted)

    # -- ramp -----------------------------------------------------------------------------------
    async def _ramp_locked(self, conf: dict[str, Any], confirmer: str, started: float) -> Outcome:
        launch_id = int(conf["launch_id"])
        percent = int(conf["target_pct"])
        calls0 = self._ld().calls
        t = time.perf_counter()
        flag = await self.read()
        read_ms = (time.perf_counter() - t) * 1000
        if flag.version != conf["observed_version"]:
            raise UserError(
                f"The flag changed in LaunchDarkly since this was asked (version {conf['observed_version']} → "
                f"{flag.version}; it is now {flag.describe()}), so I changed nothing. Run "
                f"`/cio ramp {percent}` again to see the current state and confirm over it."
            )
        forced = bool(conf["forced"])
        if percent * 1000 > flag.served and not forced:
            findings = await self.services.health.findings(launch_id)
            failing = [f for f in findings if not f.ok]
            if failing and conf["reason"]:
                forced = True  # asked with --force "reason": the bypass holds at the click too
            elif failing:
                raise UserError(
                    "The health gate no longer passes, so nothing was changed: "
                    + "; ".join(f"{f.name}: {f.detail}" for f in failing)
                    + f". Fix that first, or override with `/cio ramp {percent} --force \"reason\"`."
                )
        served = percent * 1000
        target = Target(served, True if served or flag.on else None, rollout_weights(flag, served))

        build = self._ramp_build(served)
        comment = self._comment("ramp", conf["requested_by"], confirmer, conf["reason"], forced, percent)
        outcome = await self._apply(
            kind="ramp", launch_id=launch_id, requested_by=conf["requested_by"], confirmed_by=confirmer,
            reason=conf["reason"] or "", forced=forced, trigger="button", channel_id=conf["channel_id"],
            requested_at=conf["created_at"], before=flag, target=target, build=build, comment=comment,
            started=started, calls0=calls0, durations={"read_ms": read_ms},
        )
        if outcome.status == "verified":
            await self._announce(self._ramp_announcement(conf, confirmer, flag, percent, outcome, forced),
                                 conf["channel_id"], outcome)
            self._finish_durations(outcome, started)
            await self.services.events.publish("traffic.changed", {
                "launch_id": launch_id, "from_pct": flag.percent, "to_pct": float(percent),
                "actor": confirmer, "reason": conf["reason"] or "", "forced": forced,
            })
        elif outcome.status in ("unknown", "unverified"):
            await self._announce((f":warning: Traffic change to {percent}% NOT confirmed: {outcome.text}", None),
                                 conf["channel_id"], outcome)
        log.info("ramp %s → %s%%: %s in %.0f ms, %d LaunchDarkly calls", format_pct(flag.served), percent,
                 outcome.status, (time.perf_counter() - started) * 1000, outcome.ld_calls)
        return outcome

    # -- rollback -------------------------------------------------------------------------------
    def _kill_plan(self, flag: FlagState) -> tuple[str, bool]:
        """(label, use turnFlagOff). Falls back to a 0% rollout when the off variation would
        not serve the old path."""
        if self.config.kill_mode == "flag_off" and flag.off_serves_true is False:
            return "flag off (off variation = old path)", True
        if self.config.kill_mode == "flag_off":
            return "0% rollout (the off variation does not serve the old path, so turning the flag off would not stop traffic)", False
        return "0% rollout (kill_mode = zero_rollout)", False

    async def rollback(self, *, launch_id: int, actor: str, reason: str, channel_id: str, trigger: str,
                       started: float | None = None) -> Outcome:
        """The rollback path without a confirmation (confirmation off, or auto-rollback)."""
        started = started or time.perf_counter()
        what = "rollback"
        busy = await self._wait_for_lock(launch_id, actor, what)
        if busy:
            raise UserError(self.busy_sentence(busy))
        async with self._holding(launch_id, actor):
            return await self._rollback_locked(launch_id=launch_id, actor=actor, confirmed_by="", reason=reason,
                                               channel_id=channel_id, trigger=trigger, requested_at=None,
                                               started=started)

    async def _rollback_locked(self, *, launch_id: int, actor: str, confirmed_by: str, reason: str,
                               channel_id: str, trigger: str, requested_at: str | None, started: float) -> Outcome:
        calls0 = self._ld().calls
        t = time.perf_counter()
        flag = await self.read()
        read_ms = (time.perf_counter() - t) * 1000
        who = confirmed_by or actor
        if flag.served == 0:
            text = (f"`{self.flag_key}` already sends no traffic to the new path ({flag.describe()}, "
                    f"LaunchDarkly version {flag.version}); nothing to roll back, nothing changed.")
            if trigger == "auto":
                await self._post(self.channel(channel_id), f":information_source: Auto-rollback requested "
                                 f"({reason or 'no reason given'}): {text}")
            return Outcome("noop", text, ld_calls=self._ld().calls - calls0)
        label, turn_off = self._kill_plan(flag)
        if turn_off:
            target = Target(0, False, None)

            def build(current: FlagState) -> list[dict[str, Any]]:
                return [{"kind": "turnFlagOff"}]
        else:
            target = Target(0, None, rollout_weights(flag, 0))

            def build(current: FlagState) -> list[dict[str, Any]]:
                return rollout_instructions(current, 0, bucket_by=self.config.bucket_by,
                                            context_kind=self.config.context_kind)

        comment = self._comment("rollback", actor, confirmed_by, reason, False, 0)
        outcome = await self._apply(
            kind="rollback", launch_id=launch_id, requested_by=actor, confirmed_by=confirmed_by, reason=reason,
            forced=False, trigger=trigger, channel_id=channel_id, requested_at=requested_at, before=flag,
            target=target, build=build, comment=comment, started=started, calls0=calls0,
            durations={"read_ms": read_ms},
        )
        if outcome.status == "verified":
            await self._announce(self._rollback_announcement(actor, confirmed_by, reason, trigger, flag, label,
                                                             outcome), channel_id, outcome)
            self._finish_durations(outcome, started)
            payload = {"launch_id": launch_id, "actor": who, "reason": reason, "channel_id": self.channel(channel_id)}
            await self.services.events.publish("traffic.changed", {
                "launch_id": launch_id, "from_pct": flag.percent, "to_pct": 0.0, "actor": who,
                "reason": reason, "forced": False,
            })
            await self.services.events.publish("traffic.rolled_back", payload)
        else:
            await self._announce((f":rotating_light: ROLLBACK NOT CONFIRMED (asked by <@{who}>"
                                  f"{': ' + reason if reason else ''}): {outcome.text} Act in LaunchDarkly now: "
                                  f"{self._ld().where(self.flag_key)}.", None),
                                 channel_id, outcome)
        log.info("rollback path: %s in %.0f ms from confirmation to verified announcement "
                 "(%d LaunchDarkly calls; %s)", outcome.status, outcome.durations.get("total_ms", 0.0),
                 outcome.ld_calls, ", ".join(f"{k} {v:.0f}" for k, v in outcome.durations.items()))
        return outcome

    # -- the change engine ----------------------------------------------------------------------
    async def _apply(self, *, kind: str, launch_id: int, requested_by: str, confirmed_by: str, reason: str,
                     forced: bool, trigger: str, channel_id: str, requested_at: str | None, before: FlagState,
                     target: Target, build: Callable[[FlagState], list[dict[str, Any]]], comment: str,
                     started: float, calls0: int, durations: dict[str, float]) -> Outcome:
        ld = self._ld()
        at, _ = self._now()
        change_id = self.repo.start_change(
            launch_id=launch_id, kind=kind, requested_by=requested_by, confirmed_by=confirmed_by, reason=reason,
            forced=forced, trigger=trigger, from_pct=before.percent, to_pct=target.served / 1000,
            before=snapshot(before), channel_id=self.channel(channel_id), requested_at=requested_at, started_at=at,
        )
        self.repo.attach_lock(launch_id, change_id, self.boot_id)

        def finish(status: str, text: str, *, after: FlagState | None = None,
                   verification: Verification | None = None, error: str | None = None) -> Outcome:
            fin_at, fin_ts = self._now()
            durations["total_ms"] = (time.perf_counter() - started) * 1000
            calls = ld.calls - calls0
            self.repo.update_change(
                change_id, status=status, after=snapshot(after) if after else None,
                verification=verification.as_dict() if verification else None, durations=durations,
                ld_calls=calls, error=error, finished_at=fin_at, finished_ts=fin_ts,
            )
            return Outcome(status, text, change_id, verification, durations, calls)

        t = time.perf_counter()
        try:
            await ld.patch_flag(self.flag_key, build, current=before, comment=comment)
        except ApprovalRequired as exc:
            durations["patch_ms"] = (time.perf_counter() - t) * 1000
            return finish("refused", f"LaunchDarkly refused the change: {exc.message}. Nothing changed.",
                          error=str(exc))
        except OutcomeUnknown as exc:
            durations["patch_ms"] = (time.perf_counter() - t) * 1000
            return finish("unknown", self._unknown_sentence(exc, target), after=exc.found, error=str(exc))
        except ProviderError as exc:
            durations["patch_ms"] = (time.perf_counter() - t) * 1000
            status = f"HTTP {exc.status}" if exc.status else "no answer"
            return finish("failed", f"LaunchDarkly refused the change ({status}): {exc.message}. "
                                    "LaunchDarkly applies all of a change or none of it, so nothing changed.",
                          error=str(exc))
        durations["patch_ms"] = (time.perf_counter() - t) * 1000

        # 1. read back what LaunchDarkly now holds and compare with what was asked
        t = time.perf_counter()
        try:
            after = await ld.get_flag(self.flag_key)
        except ProviderError as exc:
            durations["readback_ms"] = (time.perf_counter() - t) * 1000
            return finish("unverified", f"LaunchDarkly accepted the change, but reading it back failed ({exc}), "
                                        "so it is not verified; check `/cio status`.", error=str(exc))
        durations["readback_ms"] = (time.perf_counter() - t) * 1000
        wrong = differences(target, after)
        if wrong:
            return finish("unverified", f"LaunchDarkly accepted the change but reading it back shows "
                                        f"{'; '.join(wrong)} (version {after.version}); not announced as done.",
                          after=after, error="; ".join(wrong))
        # 2. evaluate with the real server SDK over a sample of contexts: on the SDK stream the
        #    applications use when LAUNCHDARKLY_SDK_KEY is set, else from the flag JSON just read
        t = time.perf_counter()
        kind = after.context_kind or self.config.context_kind
        try:
            if self.stream is not None and self.stream.ready:
                verification = await asyncio.to_thread(
                    self.stream.verify, self.flag_key, after.version, target.served / FULL,
                    sample=self.config.verify_sample, z=self.config.verify_z,
                    wait=self.config.sdk_stream_wait_seconds, context_kind=kind, bucket_by=after.bucket_by,
                )
            else:
                verification = await asyncio.to_thread(
                    verify_served_fraction, after.raw, self.environment, target.served / FULL,
                    sample=self.config.verify_sample, z=self.config.verify_z, context_kind=kind,
                    bucket_by=after.bucket_by,
                    source="the flag data just read" + (" (the SDK stream is not connected)" if self.stream else ""),
                )
        except StreamLagging as exc:
            durations["sdk_ms"] = (time.perf_counter() - t) * 1000
            return finish("unverified", f"The flag reads back as asked (version {after.version}), but {exc}, so "
                                        "the applications may not have it yet; not announced as done.",
                          after=after, error=str(exc))
        except Exception as exc:  # the SDK itself failing is a verification failure, said so
            log.exception("SDK evaluation failed")
            durations["sdk_ms"] = (time.perf_counter() - t) * 1000
            return finish("unverified", f"The flag reads back as asked, but the LaunchDarkly SDK could not "
                                        f"evaluate it ({type(exc).__name__}); not announced as done.",
                          after=after, error=str(exc))
        durations["sdk_ms"] = (time.perf_counter() - t) * 1000
        if not verification.ok:
            return finish("unverified", f"The flag reads back as asked, but {verification.describe()}, outside "
                                        "the tolerance; not announced as done.", after=after,
                          verification=verification, error="served fraction outside tolerance")
        return finish("verified", f"Verified: {before.describe()} → {after.describe()} (LaunchDarkly version "
                                  f"{after.version}); {verification.describe()}.", after=after,
                      verification=verification)

    def _unknown_sentence(self, exc: OutcomeUnknown, target: Target) -> str:
        what = "did not answer in time" if exc.status is None else f"answered HTTP {exc.status}"
        if exc.found is None:
            return (f"LaunchDarkly {what}, and re-reading the flag failed too ({exc.reread_error}), so the "
                    "outcome is unknown. Check the flag in LaunchDarkly before doing anything else.")
        matches = not differences(target, exc.found)
        verdict = ("which is what was asked, but LaunchDarkly never confirmed it, so it is not announced as done"
                   if matches else "so the change was not applied")
        return (f"LaunchDarkly {what}, so the outcome was unknown. I re-read the flag: it is "
                f"{exc.found.describe()} (LaunchDarkly version {exc.found.version}), {verdict}.")

    def _comment(self, kind: str, requested_by: str, confirmed_by: str, reason: str, forced: bool, pct: int) -> str:
        who = f"Slack user {requested_by}" + (f", confirmed by {confirmed_by}" if confirmed_by and confirmed_by != requested_by else "")
        what = f"ramp to {pct}%" if kind == "ramp" else "rollback"
        return f"cio-launchbot {what} by {who}" + (" (health gate forced)" if forced else "") + (
            f": {reason}" if reason else "")

    def _finish_durations(self, outcome: Outcome, started: float) -> None:
        outcome.durations["total_ms"] = (time.perf_counter() - started) * 1000
        if outcome.change_id:
            self.repo.update_change(outcome.change_id, durations=outcome.durations)

    # -- announcements --------------------------------------------------------------------------
    async def _post(self, channel: str, text: str, out: list[Block] | None = None) -> bool:
        try:
            await self.services.slack.post_message(channel, text, out)
            return True
        except ProviderError as exc:
            log.error("could not post the traffic announcement: %s", exc)
            return False

    async def _announce(self, message: tuple[str, list[Block] | None], channel_id: str, outcome: Outcome) -> None:
        t = time.perf_counter()
        posted = await self._post(self.channel(channel_id), message[0], message[1])
        outcome.durations["announce_ms"] = (time.perf_counter() - t) * 1000
        if not posted:
            outcome.text += " (Posting the announcement to the launch channel failed; tell the channel.)"

    def _ramp_announcement(self, conf: dict[str, Any], confirmer: str, before: FlagState, percent: int,
                           outcome: Outcome, forced: bool) -> tuple[str, list[Block]]:
        arrow = ":arrow_up:" if percent * 1000 > before.served else ":arrow_down:"
        who = f"<@{conf['requested_by']}>" + (f", confirmed by <@{confirmer}>" if confirmer != conf["requested_by"] else "")
        text = f"{arrow} Customer.io traffic: {format_pct(before.served)} → {percent}% (verified). By {who}."
        lines = [f"*{arrow} Customer.io traffic: {format_pct(before.served)} → {percent}%* (verified)",
                 f"*By:* {who}"]
        if conf["reason"]:
            lines.append(f"*Reason:* {conf['reason']}")
        if forced:
            lines.append(f":warning: *Health gate bypassed with --force* by <@{conf['requested_by']}>: "
                         f"“{conf['reason']}”")
            text += f" Health gate bypassed with --force: {conf['reason']}."
        ctx = self._figures(outcome)
        return text, [blocks.section("\n".join(lines)), blocks.context(ctx)]

    def _rollback_announcement(self, actor: str, confirmed_by: str, reason: str, trigger: str, before: FlagState,
                               label: str, outcome: Outcome) -> tuple[str, list[Block]]:
        who = f"<@{actor}>" if trigger != "auto" else f"auto-rollback ({actor})"
        if confirmed_by and confirmed_by != actor:
            who += f", confirmed by <@{confirmed_by}>"
        why = reason or "no reason given"
        text = (f":rotating_light: Incident: Customer.io traffic rolled back, {format_pct(before.served)} → 0% "
                f"(verified). Who: {who}. Why: {why}.")
        lines = [
            f"*:rotating_light: Incident: Customer.io traffic rolled back ({format_pct(before.served)} → 0%)*",
            f"*Who:* {who}",
            f"*Why:* {why}",
            f"*How:* {label}; every context now gets the old path.",
        ]
        return text, [blocks.section("\n".join(lines)), blocks.context(self._figures(outcome))]

    @staticmethod
    def _figures(outcome: Outcome) -> str:
        parts = []
        if outcome.verification:
            parts.append(outcome.verification.describe())
        row_total = outcome.durations.get("total_ms")
        if row_total is not None:
            parts.append(f"{row_total:.0f} ms from confirmation to verification, {outcome.ld_calls} LaunchDarkly calls")
        return " · ".join(parts) or "verified"

    # -- events ---------------------------------------------------------------------------------
    async def on_rollback_requested(self, payload: dict[str, Any]) -> None:
        """``rollback.requested`` (auto-rollback): the rollback path without confirmation."""
        launch_id = payload.get("launch_id")
        channel = payload.get("channel_id") or self.settings.launch_channel or ""
        actor = str(payload.get("actor") or "alerts")
        reason = str(payload.get("reason") or "auto-rollback")
        if launch_id is None:
            launch_id = self.launch_id(channel, actor)
        self.services.store.audit.record(user_id=actor if actor[:1] in "UW" else None, channel_id=channel,
                                         kind="system", action="rollback.requested", outcome="started",
                                         detail={"reason": reason, "launch_id": launch_id})
        self.services.spawn(self._auto_rollback(int(launch_id), actor, reason, channel), name="traffic.auto-rollback")

    async def _auto_rollback(self, launch_id: int, actor: str, reason: str, channel: str) -> None:
        try:
            outcome = await self.rollback(launch_id=launch_id, actor=actor, reason=reason, channel_id=channel,
                                          trigger="auto")
        except (UserError, ProviderError) as exc:
            await self._post(self.channel(channel), f":rotating_light: Auto-rollback could not run: {exc}")
            outcome_text, status = str(exc), "error"
        else:
            outcome_text, status = outcome.text, outcome.status
        self.services.store.audit.record(user_id=None, channel_id=channel, kind="system",
                                         action="rollback.requested", outcome=status, detail=outcome_text)

    async def report_interrupted(self, change_ids: list[int]) -> None:
        """Changes an earlier process confirmed but never verified (it stopped mid-change): tell
        their channel what LaunchDarkly now has, so the person who clicked is not left guessing.
        What LaunchDarkly reports is said as reported: it is not verified, and never "done"."""
        try:
            flag: FlagState | None = await self.read(timeout=self.config.request_timeout_seconds)
        except UserError as exc:
            flag, found = None, f"I could not read the flag from LaunchDarkly either ({exc})"
        else:
            assert flag is not None
            found = f"LaunchDarkly now reports `{self.flag_key}` {flag.describe()} (version {flag.version})"
        for change_id in change_ids:
            row = self.repo.change(change_id)
            if row is None:
                continue
            if flag is not None:
                self.repo.update_change(change_id, after=snapshot(flag))
            what = "rollback" if row["kind"] == "rollback" else f"ramp to {row['to_pct']:g}%"
            who = row["confirmed_by"] or row["requested_by"]
            if flag is None:
                verdict = "check the flag in LaunchDarkly before anything else."
            elif flag.served == round(float(row["to_pct"]) * 1000):
                verdict = await self._verify_found(change_id, flag)
            else:
                verdict = (f"that is *not* what was asked ({format(row['to_pct'], 'g')}%): the change did not "
                           "take effect. Run it again if it is still wanted.")
            text = (f":warning: The bot stopped in the middle of a traffic change: the {what} confirmed by "
                    f"<@{who}> was neither verified nor announced. {found}; {verdict}")
            posted = await self._post(self.channel(row["channel_id"] or ""), text)
            self.services.store.audit.record(
                user_id=None, channel_id=row["channel_id"], kind="system", action=f"traffic {what} interrupted",
                outcome="reported" if posted else "not posted",
                detail={"change_id": change_id, "found": flag.describe() if flag else None})

    async def _verify_found(self, change_id: int, flag: FlagState) -> str:
        """The flag as found after a restart matches what the cut-off change asked: evaluate it
        with the SDK now, as a change is verified, and say what that shows."""
        try:
            verification = await asyncio.to_thread(
                verify_served_fraction, flag.raw, self.environment, flag.served / FULL,
                sample=self.config.verify_sample, z=self.config.verify_z,
                context_kind=flag.context_kind or self.config.context_kind, bucket_by=flag.bucket_by,
                source="the flag data read after the restart")
        except Exception as exc:  # the SDK failing is said, not hidden
            log.exception("SDK evaluation of the flag found after a restart failed")
            return (f"that is what was asked, but the LaunchDarkly SDK could not evaluate it "
                    f"({type(exc).__name__}), so it is not verified.")
        self.repo.update_change(change_id, verification=verification.as_dict())
        if not verification.ok:
            return f"that is what was asked, but {verification.describe()}, outside the tolerance: not verified."
        return f"that is what was asked, and verified now: {verification.describe()}."

    # -- /cio status ----------------------------------------------------------------------------
    async def status_section(self, launch: dict[str, Any] | None, channel_id: str) -> StatusSection:
        title = "Traffic (LaunchDarkly)"
        if self.provider is None:
            return StatusSection(title, ["Not configured: set LAUNCHDARKLY_API_TOKEN, LAUNCHDARKLY_PROJECT, "
                                         "LAUNCHDARKLY_ENVIRONMENT and LAUNCHDARKLY_FLAG."])
        lines: list[str] = []
        try:
            flag = await self.read(timeout=3.0)
        except UserError as exc:
            flag = None
            lines.append(f":warning: {exc}")
        if flag is not None:
            lines.append(f"*Now (as LaunchDarkly reports it):* `{self.flag_key}` in `{self.environment}` is "
                         f"{flag.describe()} · version {flag.version}")
        if launch is None:
            return StatusSection(title, lines)
        launch_id = int(launch["id"])
        last = self.repo.last_verified(launch_id)
        if last:
            ts = float(last["finished_ts"] or 0)
            when = blocks.user_date(ts, str(last["finished_at"])[:16].replace("T", " ") + " UTC")
            who = last["confirmed_by"] or last["requested_by"]
            label = "rollback" if last["kind"] == "rollback" else "ramp"
            lines.append(f"*Last change:* {label} {last['from_pct']:g}% → {last['to_pct']:g}% by <@{who}> {when}"
                         + (f" — {last['reason']}" if last["reason"] else "")
                         + (" (health gate forced)" if last["forced"] else ""))
        else:
            lines.append("*Last change:* none made by the bot yet.")
        latest = self.repo.history(launch_id, 1)
        if latest and latest[0]["status"] not in ("verified", "started"):
            lines.append(f":warning: The latest attempt ({latest[0]['kind']} to {latest[0]['to_pct']:g}%) ended "
                         f"*{latest[0]['status']}*: {latest[0]['error'] or ''}"[:400])
        if flag is not None and (outside := self.outside_changes(launch_id, flag)):
            lines.append(":warning: *Changed outside the bot* " + "; ".join(outside)
                         + ". The next `/cio ramp` shows this and asks before overwriting it.")
        if lock := self.in_flight(launch_id):
            lines.append(":hourglass_flowing_sand: " + self.busy_sentence(lock))
        return StatusSection(title, lines)


def configure(services: Services) -> None:
    settings = services.settings
    config = TrafficConfig.from_settings(settings)
    provider = None
    if settings.launchdarkly_configured and settings.launchdarkly_project and \
            settings.launchdarkly_environment and settings.launchdarkly_flag:
        assert settings.launchdarkly_api_token is not None
        provider = LaunchDarkly(
            settings.launchdarkly_api_url, settings.launchdarkly_api_token,
            project=settings.launchdarkly_project, environment=settings.launchdarkly_environment,
            timeout=config.request_timeout_seconds, retry=RetryPolicy(attempts=4, base_delay=0.2, max_delay=2.0),
        )
    service = TrafficService(services, config, provider)
    services.traffic = service
    # before serving: locks of processes known dead (a restart on this host) are released now,
    # those of other hosts when their lease runs out (watch_locks)
    interrupted = service.sweep_stale_locks()

    async def watch() -> None:
        try:
            if interrupted:
                await service.report_interrupted(interrupted)
            await service.watch_locks()
        finally:
            liveness.release(service.boot_id)

    services.loops["traffic.locks"] = watch
    services.health.register("traffic soak", service.soak_findings)
    services.status.register("traffic", service.status_section)
    services.events.subscribe("rollback.requested", service.on_rollback_requested)
    if provider is not None and settings.launchdarkly_sdk_key:
        service.stream = SDKStream(settings.launchdarkly_sdk_key.reveal(), stream_uri=config.sdk_stream_url,
                                   base_uri=config.sdk_base_url)
    if provider is not None:
        services.loops["traffic.launchdarkly-clients"] = lambda: _clients(provider, service.stream)


async def _clients(provider: LaunchDarkly, stream: SDKStream | None) -> None:
    """Holds the LaunchDarkly connections for the server's lifetime: the REST client's pool
    and, with LAUNCHDARKLY_SDK_KEY, the SDK stream (connected in a thread at start)."""
    try:
        if stream is not None and not await asyncio.to_thread(stream.start):
            log.warning("the LaunchDarkly SDK stream did not connect; verification evaluates the flag data "
                        "read from the REST API until it does")
        await asyncio.Event().wait()
    finally:
        await provider.aclose()
        if stream is not None:
            await asyncio.to_thread(stream.close)
