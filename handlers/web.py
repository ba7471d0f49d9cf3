"""The HTTP surface: ``POST /slack/events`` (Bolt verifies the signature), ``GET /healthz``,
and the routes that handler modules add through a ``setup_routes(app, services)`` hook."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.services import Services
from bot.store import probe

MAX_BODY = 1024 * 1024


def build_web_app(services: Services, bolt_app: AsyncApp | None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt_app is not None
        bolt_request = await to_bolt_request(request)
        bolt_response = await bolt_app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.Response:
        ok, reason = await asyncio.to_thread(probe, services.store.path)
        body = {"status": "ok" if ok else "unavailable", "database": reason}
        return web.json_response(body, status=200 if ok else 503)

    if bolt_app is not None:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)

    import handlers

    for info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"handlers.{info.name}")
        hook = getattr(module, "setup_routes", None)
        if callable(hook):
            hook(app, services)
    return app
