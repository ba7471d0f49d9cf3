"""A fake of Customer.io's Track API and App API on one loopback server.

Track paths (``/api/v1/...``) check Basic ``site_id:api_key`` against the workspaces,
App paths (``/v1/...``) check the Bearer app key. Data (customers, events, sender
identities, campaigns and their actions, newsletters, reporting webhooks) lives in plain
attributes tests can edit. Answers and limits follow the real API's documented shapes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.sandbox.base import FakeServer

REGION_TRACK_URLS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}


@dataclass
class Workspace:
    site_id: str
    track_key: str
    app_key: str
    environment_id: int
    region: str = "us"
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    sender_identities: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    campaign_actions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    newsletters: list[dict[str, Any]] = field(default_factory=list)
    newsletter_contents: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reporting_webhooks: list[dict[str, Any]] = field(default_factory=list)


SANDBOX_PROD = dict(site_id="sandboxprodsite01", track_key="sandbox-prod-track-key",
                    app_key="sandbox-prod-app-key", environment_id=101)
SANDBOX_STAGING = dict(site_id="sandboxstagesite02", track_key="sandbox-staging-track-key",
                       app_key="sandbox-staging-app-key", environment_id=202)

COMPLIANT_BODY = (
    "<p>Hello {{customer.first_name}}</p>"
    "<p><a href=\"{% unsubscribe_url %}\">Unsubscribe</a></p>"
    "<p>Example Inc., 1 Main Street, Springfield, CA 94000, USA</p>"
)


class FakeCustomerIO(FakeServer):
    name = "customerio"

    def __init__(self) -> None:
        self.workspaces: list[Workspace] = []
        super().__init__()

    def add_workspace(self, **kw: Any) -> Workspace:
        ws = Workspace(**kw)
        self.workspaces.append(ws)
        return ws

    def seed_sandbox(self, sending_domain: str = "example.com", bot_url: str = "") -> tuple[Workspace, Workspace]:
        """A production and a staging workspace that pass the readiness checks."""
        prod = self.add_workspace(**SANDBOX_PROD)
        staging = self.add_workspace(**SANDBOX_STAGING)
        for ws in (prod, staging):
            ws.sender_identities = [
                {"id": 1, "name": "Example", "email": f"hello@{sending_domain}",
                 "address": f"hello@{sending_domain}", "template_type": "email"}
            ]
            ws.campaigns = [{"id": 1, "name": "Welcome series", "active": True, "state": "running", "type": "segment"}]
            ws.campaign_actions = {1: [{"id": 11, "campaign_id": 1, "type": "email", "name": "Welcome",
                                        "subject": "Welcome!", "from": f"hello@{sending_domain}",
                                        "body": COMPLIANT_BODY, "layout": ""}]}
            ws.newsletters = [{"id": 2, "name": "December news", "type": "email"}]
            ws.newsletter_contents = {2: [{"id": 21, "newsletter_id": 2, "type": "email", "name": "Dec",
                                           "body": COMPLIANT_BODY, "from": f"hello@{sending_domain}"}]}
            ws.reporting_webhooks = [
                {"id": 7, "name": "cio-launchbot", "endpoint": f"{bot_url}/webhooks/customerio",
                 "disabled": False, "full_resolution": True, "with_content": False,
                 "events": ["email_sent", "email_delivered", "email_bounced", "email_spammed",
                            "email_dropped", "email_failed", "email_unsubscribed"]}
            ]
        return prod, staging

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/accounts/region", self._region)
        router.add_put("/api/v1/customers/{id}", self._identify)
        router.add_delete("/api/v1/customers/{id}", self._delete)
        router.add_post("/api/v1/customers/{id}/events", self._event)
        router.add_post("/api/v1/customers/{id}/suppress", self._suppress)
        router.add_get("/v1/sender_identities", self._senders)
        router.add_get("/v1/campaigns", self._campaigns)
        router.add_get("/v1/campaigns/{id}/actions", self._actions)
        router.add_get("/v1/newsletters", self._newsletters)
        router.add_get("/v1/newsletters/{id}/contents", self._newsletter_contents)
        router.add_get("/v1/reporting_webhooks", self._webhooks)

    # -- auth -------------------------------------------------------------------------------
    def _track_ws(self, request: web.Request) -> Workspace | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            site_id, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        for ws in self.workspaces:
            if ws.site_id == site_id and ws.track_key == key:
                return ws
        return None

    def _app_ws(self, request: web.Request) -> Workspace | None:
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip()
        for ws in self.workspaces:
            if header.startswith("Bearer ") and ws.app_key == key:
                return ws
        return None

    @staticmethod
    def _track_unauthorized() -> web.Response:
        return web.json_response({"meta": {"error": "Unauthorized request"}}, status=401)

    @staticmethod
    def _app_unauthorized() -> web.Response:
        return web.json_response({"errors": [{"detail": "unauthorized", "status": "401"}]}, status=401)

    @staticmethod
    def _bad(*errors: str) -> web.Response:
        return web.json_response({"meta": {"errors": list(errors)}}, status=400)

    # -- Track API ----------------------------------------------------------------------------
    async def _region(self, request: web.Request) -> web.Response:
        ws = self._track_ws(request)
        if ws is None:
            return self._track_unauthorized()
        return web.json_response({"url": REGION_TRACK_URLS[ws.region], "region": ws.region,
                                  "environment_id": ws.environment_id})

    async def _json(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return {}
        return json.loads(raw)

    async def _identify(self, request: web.Request) -> web.Response:
        ws = self._track_ws(request)
        if ws is None:
            return self._track_unauthorized()
        cid = request.match_info["id"]
        if len(cid.encode()) > 150:
            return self._bad("identifier too long (max 150 bytes)")
        try:
            attrs = await self._json(request)
        except ValueError:
            return self._bad("invalid JSON")
        if not isinstance(attrs, dict):
            return self._bad("body must be a JSON object")
        if len(attrs) > 300:
            return self._bad("too many attributes (max 300)")
        for name, value in attrs.items():
            if len(name.encode()) > 150:
                return self._bad("attribute name too long (max 150 bytes)")
            if len(str(value).encode()) > 1000:
                return self._bad(f"attribute {name} value too long (max 1000 bytes)")
        ws.customers.setdefault(cid, {}).update(attrs)
        return web.json_response({})

    async def _event(self, request: web.Request) -> web.Response:
        ws = self._track_ws(request)
        if ws is None:
            return self._track_unauthorized()
        try:
            body = await self._json(request)
        except ValueError:
            return self._bad("invalid JSON")
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            return self._bad("event name is required")
        if len(str(name).encode()) > 100:
            return self._bad("event name too long (max 100 bytes)")
        if len(json.dumps(body.get("data") or {}).encode()) > 100_000:
            return self._bad("event data too large (max 100000 bytes)")
        ws.events.append({"customer_id": request.match_info["id"], **body})
        return web.json_response({})

    async def _suppress(self, request: web.Request) -> web.Response:
        ws = self._track_ws(request)
        if ws is None:
            return self._track_unauthorized()
        ws.suppressed.add(request.match_info["id"])
        return web.json_response({})

    async def _delete(self, request: web.Request) -> web.Response:
        ws = self._track_ws(request)
        if ws is None:
            return self._track_unauthorized()
        cid = request.match_info["id"]
        ws.customers.pop(cid, None)
        ws.deleted.append(cid)
        return web.json_response({})

    # -- App API ------------------------------------------------------------------------------
    async def _app_list(self, request: web.Request, key: str, items: list[dict[str, Any]] | None,
                        page: int = 50) -> web.Response:
        start = int(request.query.get("start") or 0)
        chunk = (items or [])[start:start + page]
        nxt = str(start + page) if start + page < len(items or []) else ""
        return web.json_response({key: chunk, "next": nxt})

    async def _senders(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        return await self._app_list(request, "sender_identities", ws.sender_identities)

    async def _campaigns(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        return web.json_response({"campaigns": ws.campaigns})

    async def _actions(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        cid = int(request.match_info["id"])
        if cid not in ws.campaign_actions:
            return web.json_response({"errors": [{"detail": "campaign not found", "status": "404"}]}, status=404)
        return await self._app_list(request, "actions", ws.campaign_actions[cid])

    async def _newsletters(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        return await self._app_list(request, "newsletters", ws.newsletters)

    async def _newsletter_contents(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        nid = int(request.match_info["id"])
        if nid not in ws.newsletter_contents:
            return web.json_response({"errors": [{"detail": "newsletter not found", "status": "404"}]}, status=404)
        return web.json_response({"contents": ws.newsletter_contents[nid]})

    async def _webhooks(self, request: web.Request) -> web.Response:
        ws = self._app_ws(request)
        if ws is None:
            return self._app_unauthorized()
        return web.json_response({"reporting_webhooks": ws.reporting_webhooks})
