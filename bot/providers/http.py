"""The one retrying HTTP client every provider builds on.

- retries with exponential backoff and jitter on 408/429/5xx and on connection errors,
  honouring ``Retry-After`` (seconds or HTTP date) and provider-specific reset headers;
- never retries other 4xx;
- retries a timeout only when the request is idempotent (a timed-out write leaves the
  outcome unknown, which the caller must find out by reading back);
- raises :class:`ProviderError` naming the provider, method, endpoint and status, never
  credentials or payloads.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bot.secrets import redact

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ProviderError(Exception):
    """A provider call that did not succeed. ``str()`` is safe to show to a user."""

    def __init__(
        self,
        provider: str,
        method: str,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.provider = provider
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.attempts = attempts
        self.message = redact(message)
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.provider} {self.method} {self.endpoint}"
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{where} failed ({status}{tries}): {self.message}"


class ProviderTimeout(ProviderError):
    """No answer in time. For a write, the outcome is unknown."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    #: a server asking us to wait longer than this is reported, not obeyed
    max_wait: float = 30.0


Sleep = Callable[[float], Awaitable[None]]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class HTTPProvider:
    """Base of every provider client: one pooled ``httpx.AsyncClient`` per provider."""

    name = "provider"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=False,
        )
        self.calls = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HTTPProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- hooks for subclasses ---------------------------------------------------------------
    def retry_delay(self, response: httpx.Response) -> float | None:
        """How long the server asked us to wait, if it said."""
        return parse_retry_after(response.headers.get("Retry-After"))

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own words for what went wrong, short and without payloads."""
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            return (text[:200] or response.reason_phrase) if "<html" not in text[:200].lower() else response.reason_phrase
        if isinstance(body, dict):
            for key in ("message", "error", "detail"):
                if isinstance(body.get(key), str):
                    return body[key][:300]
        return response.reason_phrase or "unexpected answer"

    # -- the request loop -----------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        idempotent: bool | None = None,
        expect: tuple[int, ...] = (200, 201, 202, 204, 207),
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, retrying what is safe to retry. ``endpoint`` is the label used in errors
        (a path template such as ``/api/v1/customers/{id}``), so ids and keys stay out."""
        label = endpoint or path.split("?")[0]
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        if timeout is not None:
            kwargs["timeout"] = timeout
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            started = time.perf_counter()
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                if idempotent and attempt < self.retry.attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise ProviderTimeout(
                    self.name, method, label,
                    "no answer before the timeout" + ("" if idempotent else "; the outcome is unknown"),
                    attempts=attempt,
                ) from None
            except httpx.TransportError as exc:
                # connection refused / reset before an answer: nothing was applied for a
                # refused connection, but a reset mid-request could have been, so only
                # idempotent requests are retried.
                if (idempotent or isinstance(exc, httpx.ConnectError)) and attempt < self.retry.attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise ProviderError(
                    self.name, method, label, f"could not reach the service ({type(exc).__name__})",
                    attempts=attempt,
                ) from None
            elapsed = time.perf_counter() - started
            log.debug("%s %s %s -> %s in %.0f ms", self.name, method, label, response.status_code, elapsed * 1000)
            if response.status_code in expect:
                return response
            if response.status_code in RETRY_STATUSES and attempt < self.retry.attempts:
                wait = self.retry_delay(response)
                if wait is None:
                    wait = self._backoff(attempt)
                if wait <= self.retry.max_wait:
                    await self._sleep(wait)
                    continue
            raise self.make_error(method, label, response, attempt)

    def make_error(self, method: str, label: str, response: httpx.Response, attempts: int) -> ProviderError:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        return ProviderError(
            self.name,
            method,
            label,
            self.error_message(response),
            status=response.status_code,
            body=body,
            retry_after=self.retry_delay(response),
            attempts=attempts,
        )

    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry.max_delay, self.retry.base_delay * (2 ** (attempt - 1)))
        return delay * (0.5 + random.random() / 2)
