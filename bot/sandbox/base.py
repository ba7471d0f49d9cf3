"""What every fake shares: an aiohttp server on an ephemeral loopback port that records
each request and can be told to misbehave (latency, 429 with headers, 5xx, hang)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


@dataclass
class Fault:
    pattern: re.Pattern[str]
    method: str | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    hang: bool = False
    delay: float = 0.0
    times: int | None = 1  # None = until cleared

    def matches(self, request: web.Request) -> bool:
        if self.method and request.method != self.method.upper():
            return False
        return bool(self.pattern.search(request.path))


class FakeServer:
    """Subclasses add routes in ``setup_routes``. ``await start()`` returns the base URL."""

    name = "fake"

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        self.requests: list[Recorded] = []
        self.latency = 0.0
        self.faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.url = ""
        self.setup_routes(self.app.router)

    def setup_routes(self, router: web.UrlDispatcher) -> None:  # pragma: no cover - overridden
        pass

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # a short shutdown timeout: hung (fault-injected) requests must not hold up a stop
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        server = self._site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        actual_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{actual_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- fault injection ------------------------------------------------------------------
    def fail(
        self,
        path: str = "",
        *,
        method: str | None = None,
        status: int = 500,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        hang: bool = False,
        delay: float = 0.0,
    ) -> Fault:
        """Make the next ``times`` requests whose path matches the regex ``path`` fail."""
        fault = Fault(re.compile(path), method, status, dict(headers or {}), body, hang, delay, times)
        self.faults.append(fault)
        return fault

    def rate_limit(self, path: str = "", *, retry_after: float = 1, times: int = 1, **headers: str) -> Fault:
        hdrs = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        hdrs.update(headers)
        return self.fail(path, status=429, times=times, headers=hdrs, body={"message": "rate limited"})

    def clear_faults(self) -> None:
        self.faults.clear()
        self.latency = 0.0

    def calls(self, path: str = "", method: str | None = None) -> list[Recorded]:
        rx = re.compile(path)
        return [
            r for r in self.requests if rx.search(r.path) and (method is None or r.method == method.upper())
        ]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if self.latency:
            await asyncio.sleep(self.latency)
        for fault in list(self.faults):
            if not fault.matches(request):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.hang:
                await asyncio.sleep(3600)
            payload = fault.body if fault.body is not None else {"message": f"injected {fault.status}"}
            return web.json_response(payload, status=fault.status, headers=fault.headers)
        return await handler(request)
