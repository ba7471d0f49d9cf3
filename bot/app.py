"""App assembly: the composition root that wires settings, services, Bolt and the HTTP server.

This module (with ``bot.cli``) is the one place in ``bot/`` that reaches up into
``handlers/``: it assembles them, it does not call into them otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.clock import Clock
from bot.config import Settings
from bot.services import Services

log = logging.getLogger(__name__)


#: Domain modules, each with ``configure(services) -> None`` that attaches its service to
#: ``services``, subscribes to events, registers health sources and background loops.
DOMAINS: list[str] = [
    "bot.traffic",
    "bot.readiness",
    "bot.timeline",
    "bot.alerts",
    "bot.review",
]


def configure_domains(services: Services) -> Services:
    import importlib

    for name in DOMAINS:
        importlib.import_module(name).configure(services)
    return services


def build_bolt_app(services: Services) -> AsyncApp:
    from handlers import actions, slash
    from handlers.registry import load_handlers

    settings = services.settings
    signing = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else None
    app = AsyncApp(
        client=services.slack.client,
        signing_secret=signing,
        request_verification_enabled=signing is not None,
        # listeners return once they have acknowledged (handlers.registry.ack_then_continue), so
        # Bolt answers Slack at once instead of polling for the ack every 10 ms
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )
    load_handlers()
    slash.register(app, services)
    actions.register(app, services)
    return app


@dataclass
class Runtime:
    """A running bot: services, the Bolt app, the HTTP server, optionally Socket Mode."""

    services: Services
    bolt: AsyncApp
    runner: web.AppRunner | None = None
    url: str = ""
    socket_handler: object | None = None
    loop_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        clock: Clock | None = None,
    ) -> Runtime:
        from handlers.web import build_web_app

        services = configure_domains(Services.build(settings, clock=clock))
        bolt = build_bolt_app(services)
        socket = settings.socket_mode
        web_app = build_web_app(services, None if socket else bolt)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, settings.port if port is None else port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        bound = sock.getsockname()[1]
        runtime = cls(services, bolt, runner, f"http://{host}:{bound}")
        if socket:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert settings.slack_app_token is not None
            handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.reveal())
            await handler.connect_async()
            runtime.socket_handler = handler
        for name, factory in services.loops.items():
            runtime.loop_tasks.append(asyncio.get_running_loop().create_task(factory(), name=name))
        log.info("cio-launchbot listening on %s%s", runtime.url, " (Socket Mode for Slack)" if socket else "")
        return runtime

    async def stop(self) -> None:
        """Graceful: stop taking requests, let in-flight work finish, close the store. Once."""
        if self._stopped.is_set():
            return
        for task in self.loop_tasks:
            task.cancel()
        for task in self.loop_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.socket_handler is not None:
            with contextlib.suppress(Exception):
                await self.socket_handler.close_async()  # type: ignore[attr-defined]
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.services.aclose()
        self._stopped.set()
