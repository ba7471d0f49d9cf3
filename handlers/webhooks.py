"""HTTP intake: ``POST /webhooks/customerio`` (Customer.io reporting webhooks, HMAC-signed)
and ``POST /webhooks/alertmanager`` (Prometheus Alertmanager, bearer token).

Parse the request, hand it to the alerts service, render its answer as JSON. A 200 from
the Customer.io endpoint means the event is durably counted.
"""

from __future__ import annotations

from aiohttp import web

from bot.alerts import MAX_WEBHOOK_BYTES, WebhookResult
from bot.services import Services


def _response(result: WebhookResult) -> web.Response:
    return web.Response(body=result.encoded, status=result.status, content_type="application/json")


def _too_large() -> web.Response:
    return web.json_response({"status": "rejected", "error": f"Body is larger than {MAX_WEBHOOK_BYTES} bytes."},
                             status=413)


async def _read(request: web.Request) -> bytes | None:
    """The body, or None when it is over the limit (announced, or found while reading: the
    app's own ``client_max_size`` bounds what a body without Content-Length can make us read)."""
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return None
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None
    return None if len(body) > MAX_WEBHOOK_BYTES else body


def setup_routes(app: web.Application, services: Services) -> None:
    async def admitted(request: web.Request) -> bytes | web.Response:
        """The body, or the refusal when alerts are off or the body is too large."""
        if services.alerts is None:
            return web.json_response({"status": "rejected", "error": "Alerts are not configured."}, status=503)
        body = await _read(request)
        return _too_large() if body is None else body

    async def customerio(request: web.Request) -> web.Response:
        body = await admitted(request)
        if isinstance(body, web.Response):
            return body
        assert services.alerts is not None
        return _response(await services.alerts.customerio_webhook(request.headers, body))

    async def alertmanager(request: web.Request) -> web.Response:
        body = await admitted(request)
        if isinstance(body, web.Response):
            return body
        assert services.alerts is not None
        result = await services.alerts.alertmanager_webhook(request.headers.get("Authorization", ""), body)
        headers = {"WWW-Authenticate": "Bearer"} if result.status == 401 else None
        return web.json_response(result.body, status=result.status, headers=headers)

    app.router.add_post("/webhooks/customerio", customerio)
    app.router.add_post("/webhooks/alertmanager", alertmanager)
