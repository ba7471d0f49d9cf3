"""A fake web host for documentation links: each path answers the status tests give it."""

from __future__ import annotations

from aiohttp import web

from bot.sandbox.base import FakeServer


class FakeWeb(FakeServer):
    name = "web"

    def __init__(self) -> None:
        #: path -> status; unknown paths answer 404
        self.pages: dict[str, int] = {"/runbook": 200, "/events": 200, "/escalation": 200}
        #: paths that refuse HEAD with 405 (the probe must fall back to GET)
        self.no_head: set[str] = set()
        super().__init__()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{path:.*}", self._page)

    def link(self, path: str) -> str:
        return f"{self.url}{path}"

    async def _page(self, request: web.Request) -> web.Response:
        if request.method == "HEAD" and request.path in self.no_head:
            return web.Response(status=405)
        status = self.pages.get(request.path, 404)
        return web.Response(status=status, text=f"page {request.path}" if request.method != "HEAD" else None)
