"""deliverability (webhooks part): Customer.io reporting webhooks exist, are enabled, point
at this bot and subscribe to bounces and spam complaints. The DNS part (SPF, DKIM, DMARC)
plugs into the engine as a group of its own."""

from __future__ import annotations

from typing import Any

from checks.context import CheckContext, Providers
from checks.engine import Outcome, check, failed, passed, skipped, warned

REQUIRED_EVENTS = {"email_bounced": "bounces", "email_spammed": "spam complaints"}
SETTINGS_PATH = "Customer.io → Data & Integrations → Reporting Webhooks"


async def _webhooks(p: Providers) -> list[dict[str, Any]]:
    assert p.app is not None
    return await p.memo.once("app:reporting_webhooks", p.app.reporting_webhooks)


def _expected_endpoint(ctx: CheckContext) -> str | None:
    if not ctx.public_url:
        return None
    return ctx.public_url.rstrip("/") + ctx.webhook_path


def _norm(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _ours(ctx: CheckContext, hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    expected = _expected_endpoint(ctx)
    if expected is None:
        return []
    return [h for h in hooks if _norm(str(h.get("endpoint") or "")) == _norm(expected)]


@check("deliverability.webhooks", "Reporting webhooks exist and are enabled")
async def webhooks_exist(ctx: CheckContext, p: Providers) -> Outcome:
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    hooks = await _webhooks(p)
    enabled = [h for h in hooks if not h.get("disabled")]
    if not hooks:
        return failed("There is no reporting webhook, so bounces and complaints never reach the bot",
                      f"Add a reporting webhook in {SETTINGS_PATH} pointing at "
                      f"{_expected_endpoint(ctx) or '<CIO_PUBLIC_URL>' + ctx.webhook_path}.")
    if not enabled:
        names = ", ".join(f"“{h.get('name') or h.get('id')}”" for h in hooks[:5])
        return failed(f"All {len(hooks)} reporting webhook(s) are disabled ({names})",
                      f"Enable the bot's webhook in {SETTINGS_PATH}.")
    return passed(f"{len(enabled)} of {len(hooks)} reporting webhook(s) enabled")


@check("deliverability.webhook_endpoint", "A reporting webhook points at this bot")
async def webhook_endpoint(ctx: CheckContext, p: Providers) -> Outcome:
    expected = _expected_endpoint(ctx)
    if expected is None:
        return failed("CIO_PUBLIC_URL is not set, so the webhook endpoint cannot be checked",
                      "Set CIO_PUBLIC_URL to this bot's public base URL (e.g. https://bot.example.com).")
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    hooks = await _webhooks(p)
    ours = _ours(ctx, hooks)
    if not ours:
        seen = ", ".join(str(h.get("endpoint")) for h in hooks[:3]) or "none"
        return failed(f"No reporting webhook points at {expected} (endpoints: {seen})",
                      f"Set the webhook's endpoint to {expected} in {SETTINGS_PATH}.")
    enabled = [h for h in ours if not h.get("disabled")]
    if not enabled:
        return failed(f"The webhook to {expected} is disabled",
                      f"Enable webhook “{ours[0].get('name') or ours[0].get('id')}” in {SETTINGS_PATH}.")
    return passed(f"Webhook “{enabled[0].get('name') or enabled[0].get('id')}” delivers to {expected}")


@check("deliverability.webhook_events", "The bot's webhook receives bounces and spam complaints")
async def webhook_events(ctx: CheckContext, p: Providers) -> Outcome:
    if _expected_endpoint(ctx) is None:
        return skipped("CIO_PUBLIC_URL is not set (see deliverability.webhook_endpoint)")
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    ours = [h for h in _ours(ctx, await _webhooks(p)) if not h.get("disabled")]
    if not ours:
        return skipped("no enabled webhook points at this bot (see deliverability.webhook_endpoint)")
    subscribed = {str(e) for h in ours for e in (h.get("events") or [])}
    missing = [label for event, label in REQUIRED_EVENTS.items() if event not in subscribed]
    if missing:
        events = ", ".join(e for e in REQUIRED_EVENTS if e not in subscribed)
        return failed(f"The bot's webhook does not receive {' and '.join(missing)}",
                      f"Tick {events} on the webhook in {SETTINGS_PATH}; without them the bounce and "
                      "complaint alerts stay silent.")
    if not {"email_sent", "email_delivered"} & subscribed:
        return warned("Bounces and complaints are subscribed, but not email_sent/email_delivered",
                      "Tick email_sent and email_delivered too: bounce and complaint rates are "
                      "computed against them.")
    return passed("Bounces (email_bounced) and spam complaints (email_spammed) are subscribed")
