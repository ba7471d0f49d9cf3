"""Helpers for the alerts tests: signed Customer.io webhooks, Alertmanager payloads, a bot
with an alerts config file, and waiting for the bot's loops on a fake clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.sandbox.harness import BotHarness
from bot.sandbox.slack import Message

AM_TOKEN = "alertmanager-test-token-0123456789"
_ids = itertools.count(1)


def cio_event(metric: str, *, ts: float, event_id: str | None = None, object_type: str = "email") -> dict[str, Any]:
    return {"event_id": event_id or f"evt-{next(_ids):08d}", "object_type": object_type, "metric": metric,
            "timestamp": int(ts), "data": {"customer_id": "c1", "delivery_id": "d1", "email_address": "a@b.test"}}


def cio_headers(key: str, body: bytes, ts: float) -> dict[str, str]:
    stamp = str(int(ts))
    sig = hmac.new(key.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-CIO-Timestamp": stamp, "X-CIO-Signature": sig}


async def post_cio(bot: BotHarness, event: dict[str, Any] | bytes, *, ts: float | None = None,
                   key: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    stamp = bot.services.clock.timestamp() if ts is None else ts
    hdrs = headers if headers is not None else cio_headers(key or bot.sandbox.webhook_signing_key, body, stamp)
    async with bot.session.post(f"{bot.url}/webhooks/customerio", data=body, headers=hdrs) as r:
        return r.status, await r.json()


async def send_metrics(bot: BotHarness, **counts: int) -> None:
    """Post ``counts`` events per email metric (``sent=100, bounced=7``), concurrently."""
    now = bot.services.clock.timestamp()
    events = [cio_event(metric, ts=now) for metric, n in counts.items() for _ in range(n)]
    results = await asyncio.gather(*(post_cio(bot, e) for e in events))
    assert all(status == 200 for status, _ in results), results[:3]


def am_payload(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{alertname=\"CioApi\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "cio-launchbot", "groupLabels": {"alertname": "CioApi"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager.test", "alerts": alerts}


def am_alert(status: str, fingerprint: str, *, name: str = "CustomerIOApiErrors", value: str = "0.034",
             severity: str = "warning", summary: str | None = None) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "severity": severity, "metric": "api_error_rate",
                                         "instance": fingerprint},
            "annotations": {"summary": summary or f"{name} on {fingerprint}", "value": value, "threshold": "0.01",
                            "window": "5 min"},
            "startsAt": "2026-12-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.test/graph", "fingerprint": fingerprint}


async def post_am(bot: BotHarness, payload: dict[str, Any] | bytes, *, token: str | None = AM_TOKEN
                  ) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with bot.session.post(f"{bot.url}/webhooks/alertmanager", data=body, headers=headers) as r:
        return r.status, await r.json()


def write_config(tmp_path: Path, text: str, name: str = "cio.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


#: the three escalation tiers of the tests: (name, who is mentioned)
TIERS = (("On-call", "U0ONCALL"), ("SRE leads", "S0SRELEADS"), ("Head of engineering", "U0HEADENG"))


def escalation_toml(*delays_minutes: float) -> str:
    """``[[alerts.escalation]]`` tables for :data:`TIERS`, with these delays."""
    return "".join(f'\n[[alerts.escalation]]\nname = "{name}"\ndelay_minutes = {delay:g}\nmentions = ["{who}"]\n'
                   for (name, who), delay in zip(TIERS, delays_minutes, strict=True))


BASE_CONFIG = f"""
[alerts]
alertmanager_token = "{AM_TOKEN}"
fire_after = 3
resolve_after = 3

[alerts.thresholds]
bounce_rate = {{ limit = "5%", critical = "20%", min_samples = 100 }}
""" + escalation_toml(0, 10, 15)


async def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def loops_asleep(clock: Any) -> None:
    """Wait until the alert loops (evaluate, escalate, probe) sleep on the fake clock, so that
    moving it wakes them (right after start-up they have not run yet)."""
    await wait_for(lambda: len(clock._waiters) >= 3, what="the alert loops to sleep on the clock")


async def evaluate(bot: BotHarness, clock: Any, seconds: float = 60) -> None:
    """Move the fake clock one evaluation on and wait until the bot evaluated and settled."""
    svc = bot.services.alerts
    before = svc.evaluations
    await loops_asleep(clock)
    clock.advance(seconds)
    await wait_for(lambda: svc.evaluations > before, what="an evaluation")
    await bot.services.idle(5)


async def tick(bot: BotHarness, clock: Any, seconds: float) -> None:
    """Move the fake clock and wait for an escalation tick."""
    svc = bot.services.alerts
    before = svc.ticks
    await loops_asleep(clock)
    clock.advance(seconds)
    await wait_for(lambda: svc.ticks > before, what="an escalation tick")
    await bot.services.idle(5)


def alert_messages(bot: BotHarness) -> list[Message]:
    """Top-level channel messages that are alerts (they carry an Acknowledge button or a resolved header)."""
    out = []
    for m in bot.slack.channel_messages(bot.channel):
        if m.thread_ts is None and any(b.get("type") == "header" for b in m.blocks) and \
                "Alert #" in json.dumps(m.blocks):
            out.append(m)
    return out


def thread(bot: BotHarness, ts: str) -> list[Message]:
    return [m for m in bot.slack.channel_messages(bot.channel) if m.thread_ts == ts]
