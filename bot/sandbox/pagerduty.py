"""A fake of the PagerDuty Events API v2 (``POST /v2/enqueue``).

Validates what the real API validates (routing key of 32 characters, event action,
dedup key length, trigger payload summary/source/severity), keeps incidents by dedup key
with their state, and records every accepted event in ``events``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.sandbox.base import FakeServer

SANDBOX_ROUTING_KEY = "sandboxroutingkey000000000000001"  # 32 characters, like a real one


class FakePagerDuty(FakeServer):
    name = "pagerduty"

    def __init__(self, routing_keys: tuple[str, ...] = (SANDBOX_ROUTING_KEY,)) -> None:
        self.routing_keys = set(routing_keys)
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, str] = {}  # dedup key -> triggered | acknowledged | resolved
        super().__init__()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/enqueue", self._enqueue)

    @staticmethod
    def _invalid(*errors: str) -> web.Response:
        return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                  "errors": list(errors)}, status=400)

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._invalid("Malformed JSON")
        if not isinstance(body, dict):
            return self._invalid("Event must be an object")
        key = body.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            return self._invalid("'routing_key' must be 32 characters")
        if key not in self.routing_keys:
            return self._invalid("Invalid routing key")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return self._invalid("'event_action' is invalid")
        dedup = body.get("dedup_key")
        if action != "trigger" and not dedup:
            return self._invalid("'dedup_key' is required for acknowledge and resolve")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            return self._invalid("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                return self._invalid("'payload' is missing")
            if not payload.get("summary") or not payload.get("source"):
                return self._invalid("'payload.summary' and 'payload.source' are required")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                return self._invalid("'payload.severity' is invalid")
            dedup = dedup or f"fake-{len(self.events) + 1}"
        state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[action]
        # PagerDuty ignores acknowledge/resolve for an unknown or resolved incident (still 202)
        current = self.incidents.get(dedup)
        if action == "trigger" or (current is not None and current != "resolved"):
            self.incidents[dedup] = state
        self.events.append(body)
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": dedup},
                                 status=202)
