"""Is a URL reachable? HEAD (GET when HEAD is not allowed), redirects followed, any status
reported: for the documentation checks (runbook, event catalog, escalation page)."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from bot.providers.http import HTTPProvider, ProviderError, RetryPolicy
from checks.context import URLAnswer

#: statuses answered directly (no retry): every one except those HTTPProvider retries
_ANSWERED = tuple(s for s in range(100, 600) if s not in (408, 429, 500, 502, 503, 504))


class WebProbe(HTTPProvider):
    name = "Web"

    def __init__(self, *, timeout: float = 5.0, retry: RetryPolicy | None = None) -> None:
        super().__init__("", timeout=timeout, retry=retry or RetryPolicy(attempts=2, base_delay=0.2),
                         headers={"User-Agent": "cio-launchbot (readiness check)"})

    async def probe(self, url: str) -> URLAnswer:
        parsed = urlparse(url)
        label = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"  # no query: it may carry a token
        started = time.perf_counter()
        try:
            response = await self.request("HEAD", url, endpoint=label, expect=_ANSWERED, follow_redirects=True)
            if response.status_code in (405, 501):
                response = await self.request("GET", url, endpoint=label, expect=_ANSWERED,
                                              follow_redirects=True)
        except ProviderError as exc:
            return URLAnswer(url, exc.status, exc.message, (time.perf_counter() - started) * 1000)
        return URLAnswer(url, response.status_code, "", (time.perf_counter() - started) * 1000)
