"""Evaluate a flag exactly as the application's LaunchDarkly server SDK will.

The flag JSON just read from the REST API is turned into the SDK's flag data and loaded
into a real ``ldclient.LDClient`` through the file data source (offline: no network, no
events). ``TestData`` cannot express percentage rollouts; the file data source can.
A client costs a few milliseconds to build; evaluating 5,000 contexts about 60 ms, so
this runs per verification in a worker thread.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ldclient import Context
from ldclient.client import LDClient
from ldclient.config import Config
from ldclient.integrations import Files

# one client per verification: its start/stop lines at INFO would flood the bot's log
logging.getLogger("ldclient.util").setLevel(logging.WARNING)

#: fields of an environment's targeting that the SDK evaluates as they are
_PASS_THROUGH = ("targets", "contextTargets", "rules", "prerequisites", "clientSide")


def sdk_flag(flag: Mapping[str, Any], environment: str) -> dict[str, Any]:
    """The server-SDK representation of ``flag`` (REST API JSON) in ``environment``."""
    env = flag["environments"][environment]
    out: dict[str, Any] = {
        "key": flag["key"],
        "version": int(env.get("version", 1)),
        "on": bool(env.get("on")),
        "salt": env.get("salt", ""),
        "variations": [v.get("value") for v in flag.get("variations") or []],
        "offVariation": env.get("offVariation"),
        "fallthrough": env.get("fallthrough") or {},
        "trackEvents": False,
        "deleted": False,
    }
    for key in _PASS_THROUGH:
        if key in env and env[key] is not None:
            out[key] = env[key]
    out.setdefault("targets", [])
    out.setdefault("rules", [])
    out.setdefault("prerequisites", [])
    return out


def sample_keys(n: int, prefix: str = "cio-verify") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def _served(client: LDClient, flag_key: str, keys: Sequence[str], context_kind: str, bucket_by: str | None,
            default: Any) -> list[Any]:
    extra = bucket_by if bucket_by and bucket_by != "key" else None
    out = []
    for key in keys:
        builder = Context.builder(key).kind(context_kind)
        if extra:
            builder.set(extra, key)
        out.append(client.variation(flag_key, builder.build(), default))
    return out


def evaluate(
    flag: Mapping[str, Any],
    environment: str,
    keys: Sequence[str],
    *,
    context_kind: str = "user",
    bucket_by: str | None = None,
    default: Any = False,
) -> list[Any]:
    """The value the SDK serves each context key (blocking: call in a thread). When the
    rollout buckets by an attribute other than the key, each sample context carries it."""
    data = sdk_flag(flag, environment)
    with tempfile.TemporaryDirectory(prefix="cio-ldeval-") as tmp:
        path = os.path.join(tmp, "flags.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"flags": {data["key"]: data}}, fh)
        config = Config(
            "sdk-offline-verification",
            update_processor_class=Files.new_data_source(paths=[path]),
            send_events=False,
            diagnostic_opt_out=True,
        )
        client = LDClient(config, start_wait=2)
        try:
            if not client.is_initialized():
                raise RuntimeError("the LaunchDarkly SDK could not load the flag data")
            return _served(client, data["key"], keys, context_kind, bucket_by, default)
        finally:
            client.close()


def tolerance(p: float, n: int, z: float) -> float:
    """Binomial tolerance ``z * sqrt(p(1-p)/n)``; exactly 0 at p = 0 or 1."""
    if n <= 0:
        return 1.0
    return z * math.sqrt(max(0.0, p * (1 - p)) / n)


@dataclass(frozen=True)
class Verification:
    sample: int
    served: int  # contexts served ``true``
    target: float  # expected fraction 0..1
    tolerance: float
    elapsed_ms: float
    source: str = "the flag data just read"  # or "the SDK stream (version N)"

    @property
    def fraction(self) -> float:
        return self.served / self.sample if self.sample else 0.0

    @property
    def ok(self) -> bool:
        if self.target in (0.0, 1.0):
            return self.fraction == self.target
        return abs(self.fraction - self.target) <= self.tolerance

    def describe(self) -> str:
        return (f"SDK served the new path to {self.served:,} of {self.sample:,} sample contexts "
                f"({self.fraction:.1%}; target {self.target:.0%} ± {self.tolerance:.1%}) from {self.source}")

    def as_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "served": self.served, "fraction": round(self.fraction, 5),
                "target": self.target, "tolerance": round(self.tolerance, 5), "ok": self.ok,
                "elapsed_ms": round(self.elapsed_ms, 1), "source": self.source}


def verify_served_fraction(
    flag: Mapping[str, Any], environment: str, target: float, *, sample: int, z: float,
    context_kind: str = "user", bucket_by: str | None = None, source: str = "the flag data just read",
) -> Verification:
    """Blocking: evaluate ``sample`` contexts and compare the served fraction with ``target``."""
    started = time.perf_counter()
    values = evaluate(flag, environment, sample_keys(sample), context_kind=context_kind, bucket_by=bucket_by)
    served = sum(1 for v in values if v is True)
    return Verification(sample, served, target, tolerance(target, sample, z),
                        (time.perf_counter() - started) * 1000, source)


class StreamLagging(Exception):
    """The SDK stream has not delivered the flag version LaunchDarkly reported."""


class SDKStream:
    """A long-lived server SDK client on LaunchDarkly's stream (``LAUNCHDARKLY_SDK_KEY``):
    verification then evaluates the flag exactly as the applications receive it, once the
    stream has delivered the version the REST API reported. Blocking methods: call them in
    a thread."""

    def __init__(self, sdk_key: str, *, stream_uri: str, base_uri: str, start_wait: float = 5.0) -> None:
        self._config = Config(sdk_key, stream_uri=stream_uri, base_uri=base_uri, events_uri=base_uri,
                              send_events=False, diagnostic_opt_out=True)
        self._start_wait = start_wait
        self.client: LDClient | None = None

    def start(self) -> bool:
        self.client = LDClient(self._config, start_wait=self._start_wait)
        return self.client.is_initialized()

    @property
    def ready(self) -> bool:
        return self.client is not None and self.client.is_initialized()

    def flag_version(self, flag_key: str) -> int | None:
        if self.client is None:
            return None
        state = self.client.all_flags_state(Context.create("cio-launchbot-probe"),
                                            details_only_for_tracked_flags=False)
        meta = state.to_json_dict().get("$flagsState", {}).get(flag_key) or {}
        version = meta.get("version")
        return int(version) if version is not None else None

    def verify(self, flag_key: str, version: int, target: float, *, sample: int, z: float, wait: float,
               context_kind: str = "user", bucket_by: str | None = None) -> Verification:
        started = time.perf_counter()
        deadline = time.monotonic() + wait
        while (seen := self.flag_version(flag_key)) is None or seen < version:
            if time.monotonic() >= deadline:
                raise StreamLagging(f"the SDK stream still had version {seen} of `{flag_key}` after "
                                    f"{wait:g} s, not version {version}")
            time.sleep(0.02)
        assert self.client is not None
        values = _served(self.client, flag_key, sample_keys(sample), context_kind, bucket_by, False)
        served = sum(1 for v in values if v is True)
        return Verification(sample, served, target, tolerance(target, sample, z),
                            (time.perf_counter() - started) * 1000, f"the SDK stream (version {seen})")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
