"""LaunchDarkly REST API v2: read a flag, change it with a semantic patch.

- ``GET /api/v2/flags/{project}/{flag}?env={env}`` answers the flag with its variations
  (``_id``, ``value``) and the environment's targeting (``on``, ``offVariation``,
  ``fallthrough`` as a variation index or a rollout of index/weight pairs).
- ``PATCH`` the same path with ``Content-Type: application/json;
  domain-model=launchdarkly.semanticpatch`` and ``{"environmentKey", "comment",
  "instructions"}``; LaunchDarkly applies all instructions or none. ``?dryRun=true``
  validates without applying.
- ``Authorization: <token>`` (no ``Bearer``), ``LD-API-Version`` pinned.
- 429: wait as told by ``Retry-After``, else ``X-Ratelimit-Reset`` (epoch milliseconds).
  409: re-read the flag and send the patch again (built from the fresh flag).
  405: the environment requires approval; said plainly, with where to approve.
  400/401/403/404: LaunchDarkly's own message, never retried.
  A PATCH without an answer leaves the outcome unknown: the flag is re-read and the
  error carries what was found (:class:`OutcomeUnknown`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.providers.http import HTTPProvider, ProviderError, ProviderTimeout, RetryPolicy, Sleep
from bot.secrets import Secret

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
API_VERSION = "20240415"
FULL = 100_000  # rollout weights are thousandths of a percent


class ApprovalRequired(ProviderError):
    """HTTP 405: changes in this environment need an approved request; nothing was applied."""


class OutcomeUnknown(ProviderError):
    """A write got no (or no usable) answer. ``found`` is the flag as re-read afterwards,
    or None when the re-read failed too (``reread_error`` says why)."""

    found: FlagState | None = None
    reread_error: str | None = None


@dataclass(frozen=True)
class Variation:
    id: str
    value: Any
    name: str | None = None


@dataclass(frozen=True)
class FlagState:
    """One flag in one environment, as LaunchDarkly reported it."""

    key: str
    environment: str
    flag_version: int  # ``_version`` of the flag (all environments)
    version: int  # the environment's own version
    on: bool
    variations: tuple[Variation, ...]
    off_variation: int | None
    fallthrough_variation: int | None
    rollout: tuple[tuple[int, int], ...] | None  # (variation index, weight) in list order
    bucket_by: str | None
    context_kind: str | None
    salt: str
    raw: Mapping[str, Any]

    @classmethod
    def from_api(cls, data: Mapping[str, Any], environment: str) -> FlagState:
        envs = data.get("environments") or {}
        env = envs.get(environment)
        if not isinstance(env, Mapping):
            raise ValueError(f"the flag has no environment {environment!r}")
        variations = tuple(
            Variation(str(v.get("_id", "")), v.get("value"), v.get("name"))
            for v in data.get("variations") or []
        )
        fallthrough = env.get("fallthrough") or {}
        rollout = fallthrough.get("rollout")
        pairs = None
        if isinstance(rollout, Mapping):
            pairs = tuple((int(v["variation"]), int(v.get("weight", 0))) for v in rollout.get("variations") or [])
        return cls(
            key=str(data.get("key", "")),
            environment=environment,
            flag_version=int(data.get("_version", 0)),
            version=int(env.get("version", 0)),
            on=bool(env.get("on")),
            variations=variations,
            off_variation=env.get("offVariation"),
            fallthrough_variation=fallthrough.get("variation"),
            rollout=pairs,
            bucket_by=rollout.get("bucketBy") if isinstance(rollout, Mapping) else None,
            context_kind=rollout.get("contextKind") if isinstance(rollout, Mapping) else None,
            salt=str(env.get("salt", "")),
            raw=data,
        )

    # -- the traffic view of a boolean flag -------------------------------------------------
    def index_of(self, value: Any) -> int | None:
        for i, v in enumerate(self.variations):
            if v.value is value or (type(v.value) is type(value) and v.value == value):
                return i
        return None

    @property
    def boolean(self) -> bool:
        return self.index_of(True) is not None and self.index_of(False) is not None

    def fallthrough_weights(self) -> dict[int, int]:
        """Weight per variation index served when the flag is on (a fixed variation = all)."""
        if self.rollout is not None:
            out = {i: 0 for i in range(len(self.variations))}
            for index, weight in self.rollout:
                out[index] = out.get(index, 0) + weight
            return out
        out = {i: 0 for i in range(len(self.variations))}
        if self.fallthrough_variation is not None:
            out[int(self.fallthrough_variation)] = FULL
        return out

    @property
    def off_serves_true(self) -> bool | None:
        """What the off variation serves: False (old path), True, or None (not set)."""
        if self.off_variation is None or not 0 <= int(self.off_variation) < len(self.variations):
            return None
        return self.variations[int(self.off_variation)].value is True

    @property
    def served(self) -> int:
        """Thousandths of a percent of contexts served ``true`` (the new path)."""
        if not self.on:
            return FULL if self.off_serves_true else 0
        index = self.index_of(True)
        return 0 if index is None else self.fallthrough_weights().get(index, 0)

    @property
    def percent(self) -> float:
        return self.served / 1000

    def describe(self) -> str:
        pct = format_pct(self.served)
        if not self.on:
            serve = "the old path" if self.off_serves_true is False else f"{pct} to the new path"
            return f"off (serving {serve})"
        return f"on, {pct} to the new path"


def format_pct(thousandths: int) -> str:
    value = thousandths / 1000
    return f"{value:g}%"


class LaunchDarkly(HTTPProvider):
    name = "LaunchDarkly"

    def __init__(
        self,
        base_url: str,
        token: Secret,
        *,
        project: str,
        environment: str,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        conflict_retries: int = 3,
    ) -> None:
        super().__init__(
            base_url,
            headers={"Authorization": token.reveal(), "LD-API-Version": API_VERSION},
            timeout=timeout,
            retry=retry,
            sleep=sleep,
        )
        self.project = project
        self.environment = environment
        self.conflict_retries = conflict_retries
        self.ui_base = "https://app.launchdarkly.com" if "launchdarkly.com" in base_url else self.base_url

    def _path(self, flag: str) -> str:
        return f"/api/v2/flags/{quote(self.project, safe='')}/{quote(flag, safe='')}"

    def where(self, flag: str) -> str:
        """Where a person finds this flag in the LaunchDarkly UI."""
        return f"flag `{flag}` in project `{self.project}`, environment `{self.environment}`, at {self.ui_base}"

    # -- hooks ------------------------------------------------------------------------------
    def retry_delay(self, response: httpx.Response) -> float | None:
        delay = super().retry_delay(response)
        if delay is not None:
            return delay
        reset = response.headers.get("X-Ratelimit-Reset")
        if reset:
            try:
                return max(0.0, int(reset) / 1000 - time.time())
            except ValueError:
                return None
        return None

    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            code = body.get("code")
            return f"{body['message'][:300]}" + (f" ({code})" if isinstance(code, str) else "")
        return super().error_message(response)

    # -- calls --------------------------------------------------------------------------------
    async def get_flag(self, flag: str, *, timeout: float | None = None) -> FlagState:
        response = await self.request(
            "GET", self._path(flag), params={"env": self.environment},
            endpoint="/api/v2/flags/{project}/{flag}", timeout=timeout,
        )
        try:
            return FlagState.from_api(response.json(), self.environment)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(self.name, "GET", "/api/v2/flags/{project}/{flag}",
                                f"unexpected flag data: {exc}", status=response.status_code) from None

    async def patch_flag(
        self,
        flag: str,
        build: Callable[[FlagState], list[dict[str, Any]]],
        *,
        current: FlagState,
        comment: str,
        dry_run: bool = False,
    ) -> tuple[FlagState, dict[str, Any]]:
        """Apply ``build(current)`` as a semantic patch. On 409 the flag is re-read and the
        instructions rebuilt from it. Returns (the flag as answered, the body sent)."""
        label = "/api/v2/flags/{project}/{flag}"
        for conflict in range(self.conflict_retries + 1):
            body = {"environmentKey": self.environment, "comment": comment[:500],
                    "instructions": build(current)}
            try:
                response = await self.request(
                    "PATCH", self._path(flag), endpoint=label, content=_json(body), headers={"Content-Type": SEMANTIC_PATCH},
                    params={"dryRun": "true"} if dry_run else None,
                )
            except ProviderTimeout as exc:
                if dry_run:
                    raise
                raise await self._unknown(flag, exc) from None
            except ProviderError as exc:
                if exc.status == 409 and conflict < self.conflict_retries:
                    current = await self.get_flag(flag)
                    continue
                if exc.status == 405:
                    raise ApprovalRequired(
                        self.name, "PATCH", label,
                        f"the environment `{self.environment}` requires an approved change request "
                        f"for this flag, so LaunchDarkly applied nothing ({exc.message}). Approve it where "
                        f"LaunchDarkly keeps approvals: open {self.where(flag)}, make the change with "
                        "Review and save → request approval (or approve a pending request), or ask a "
                        "LaunchDarkly admin to give the bot's token a role that bypasses approvals",
                        status=405, body=exc.body, attempts=exc.attempts,
                    ) from None
                if exc.status is not None and exc.status >= 500 and not dry_run:
                    raise await self._unknown(flag, exc) from None
                raise
            try:
                return FlagState.from_api(response.json(), self.environment), body
            except (ValueError, KeyError, TypeError):
                # applied, but the answer is unusable: the caller reads back anyway
                return current, body
        raise AssertionError("unreachable")  # pragma: no cover

    async def _unknown(self, flag: str, cause: ProviderError) -> OutcomeUnknown:
        """A write without a clear answer: re-read and say what is there now."""
        err = OutcomeUnknown(cause.provider, cause.method, cause.endpoint, cause.message,
                             status=cause.status, body=cause.body, attempts=cause.attempts)
        try:
            err.found = await self.get_flag(flag)
        except ProviderError as exc:
            err.reread_error = str(exc)
        return err


def _json(body: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode()
