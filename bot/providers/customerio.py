"""Customer.io: the Track API (Basic ``site_id:api_key``) and the App API (Bearer app key).

Async, over :class:`~bot.providers.http.HTTPProvider`: retries with backoff on
408/429/5xx honouring ``Retry-After``, never on other 4xx; errors name the endpoint and
status, never keys, ids or payloads. Not the official (synchronous) client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.providers.http import HTTPProvider, RetryPolicy, Sleep


@dataclass(frozen=True)
class RegionInfo:
    url: str
    region: str
    environment_id: int | None


def _cio_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return {401: "credentials rejected", 403: "not allowed", 404: "not found"}.get(
            response.status_code, response.reason_phrase or "unexpected answer"
        )
    if isinstance(body, dict):
        meta = body.get("meta")
        if isinstance(meta, dict):
            errors = meta.get("errors") or ([meta["error"]] if meta.get("error") else [])
            if errors:
                # Customer.io's own words; cut short, they can quote the request
                return "; ".join(str(e)[:120] for e in errors[:3])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, dict):
                return str(first.get("detail") or first.get("message") or first)[:200]
            return str(first)[:200]
    return {401: "credentials rejected"}.get(response.status_code, response.reason_phrase or "unexpected answer")


class TrackAPI(HTTPProvider):
    name = "Customer.io Track API"

    def __init__(self, base_url: str, site_id: str, api_key: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, sleep: Sleep | None = None) -> None:
        super().__init__(base_url, auth=(site_id, api_key), timeout=timeout, retry=retry, sleep=sleep,
                         headers={"User-Agent": "cio-launchbot"})

    def error_message(self, response: httpx.Response) -> str:
        return _cio_message(response)

    async def region(self) -> RegionInfo:
        """``GET /api/v1/accounts/region``: proves the key pair and names the workspace."""
        r = await self.request("GET", "/api/v1/accounts/region")
        data = r.json()
        env_id = data.get("environment_id")
        return RegionInfo(str(data.get("url", "")), str(data.get("region", "")),
                          int(env_id) if env_id is not None else None)

    async def identify(self, customer_id: str, attributes: dict[str, Any]) -> None:
        await self.request("PUT", f"/api/v1/customers/{quote(customer_id, safe='')}",
                           endpoint="/api/v1/customers/{id}", json=attributes)

    async def track(self, customer_id: str, name: str, data: dict[str, Any] | None = None,
                    *, timestamp: int | None = None) -> None:
        body: dict[str, Any] = {"name": name, "data": data or {}}
        if timestamp is not None:
            body["timestamp"] = timestamp
        await self.request("POST", f"/api/v1/customers/{quote(customer_id, safe='')}/events",
                           endpoint="/api/v1/customers/{id}/events", json=body, idempotent=False)

    async def suppress(self, customer_id: str) -> None:
        await self.request("POST", f"/api/v1/customers/{quote(customer_id, safe='')}/suppress",
                           endpoint="/api/v1/customers/{id}/suppress", idempotent=True)

    async def delete(self, customer_id: str) -> None:
        await self.request("DELETE", f"/api/v1/customers/{quote(customer_id, safe='')}",
                           endpoint="/api/v1/customers/{id}")


class AppAPI(HTTPProvider):
    name = "Customer.io App API"

    def __init__(self, base_url: str, app_key: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, sleep: Sleep | None = None) -> None:
        super().__init__(base_url, headers={"Authorization": f"Bearer {app_key}", "User-Agent": "cio-launchbot"},
                         timeout=timeout, retry=retry, sleep=sleep)

    def error_message(self, response: httpx.Response) -> str:
        return _cio_message(response)

    async def get(self, path: str, *, endpoint: str | None = None, params: dict[str, Any] | None = None) -> Any:
        r = await self.request("GET", path, endpoint=endpoint, params=params)
        return r.json()

    async def paged(self, path: str, key: str, *, endpoint: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every item of a list endpoint that pages with ``start``/``next``."""
        start: str | None = None
        for _ in range(1000):  # a server that never stops paging is not followed forever
            params = {"start": start} if start else None
            data = await self.get(path, endpoint=endpoint, params=params)
            for item in data.get(key) or []:
                yield item
            start = data.get("next") or None
            if not start:
                return

    async def sender_identities(self) -> list[dict[str, Any]]:
        return [i async for i in self.paged("/v1/sender_identities", "sender_identities")]

    async def campaigns(self) -> list[dict[str, Any]]:
        return list((await self.get("/v1/campaigns")).get("campaigns") or [])

    async def campaign_actions(self, campaign_id: int | str) -> list[dict[str, Any]]:
        return [a async for a in self.paged(f"/v1/campaigns/{campaign_id}/actions", "actions",
                                             endpoint="/v1/campaigns/{id}/actions")]

    async def newsletters(self) -> list[dict[str, Any]]:
        return [n async for n in self.paged("/v1/newsletters", "newsletters")]

    async def newsletter_contents(self, newsletter_id: int | str) -> list[dict[str, Any]]:
        data = await self.get(f"/v1/newsletters/{newsletter_id}/contents", endpoint="/v1/newsletters/{id}/contents")
        return list(data.get("contents") or [])

    async def reporting_webhooks(self) -> list[dict[str, Any]]:
        return list((await self.get("/v1/reporting_webhooks")).get("reporting_webhooks") or [])


@dataclass
class CustomerIO:
    """The Track and App clients of one workspace (production or staging)."""

    track: TrackAPI | None
    app: AppAPI | None

    async def aclose(self) -> None:
        for client in (self.track, self.app):
            if client is not None:
                await client.aclose()


def customerio_for(settings: Any, environment: str = "production", *, timeout: float = 10.0,
                   retry: RetryPolicy | None = None) -> CustomerIO:
    """Clients for ``production`` or ``staging`` from Settings; a missing key leaves that side None."""
    creds = settings.customerio if environment == "production" else settings.customerio_staging
    track = app = None
    if creds.site_id and creds.track_api_key:
        track = TrackAPI(settings.customerio_track_url, creds.site_id, creds.track_api_key.reveal(),
                         timeout=timeout, retry=retry)
    if creds.app_api_key:
        app = AppAPI(settings.customerio_app_url, creds.app_api_key.reveal(), timeout=timeout, retry=retry)
    return CustomerIO(track, app)
