"""PagerDuty Events API v2: trigger, acknowledge and resolve an incident by dedup key.

``POST /v2/enqueue`` with the routing key (an integration key, kept as a
:class:`~bot.secrets.Secret`); PagerDuty answers 202. The dedup key makes every call
idempotent, so retries on 429/5xx and on timeouts are safe.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.providers.http import HTTPProvider, RetryPolicy, Sleep
from bot.secrets import Secret

SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyEvents(HTTPProvider):
    name = "PagerDuty Events API"

    def __init__(self, base_url: str, routing_key: Secret, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, sleep: Sleep | None = None,
                 source: str = "cio-launchbot") -> None:
        super().__init__(base_url, timeout=timeout, retry=retry, sleep=sleep,
                         headers={"User-Agent": "cio-launchbot", "Content-Type": "application/json"})
        self._routing_key = routing_key
        self.source = source

    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.reason_phrase or "unexpected answer"
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                return "; ".join(str(e)[:120] for e in errors[:3])
            if isinstance(body.get("message"), str):
                return body["message"][:200]
        return response.reason_phrase or "unexpected answer"

    async def send(self, action: str, dedup_key: str, *, summary: str = "", severity: str = "critical",
                   details: dict[str, Any] | None = None) -> str:
        """Send one event; returns PagerDuty's dedup key."""
        if action not in ("trigger", "acknowledge", "resolve"):
            raise ValueError(f"unknown PagerDuty event action {action!r}")
        body: dict[str, Any] = {
            "routing_key": self._routing_key.reveal(),
            "event_action": action,
            "dedup_key": dedup_key[:255],
        }
        if action == "trigger":
            body["payload"] = {
                "summary": (summary or dedup_key)[:1024],
                "source": self.source,
                "severity": severity if severity in SEVERITIES else "critical",
                "custom_details": details or {},
            }
        r = await self.request("POST", "/v2/enqueue", json=body, idempotent=True, expect=(200, 202))
        data = r.json() if r.content else {}
        return str(data.get("dedup_key") or dedup_key)
