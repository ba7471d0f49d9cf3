"""campaigns: sender identities for the sending domain; unsubscribe link and postal address
(CAN-SPAM) in every active campaign's and every newsletter's email."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from checks.context import CheckContext, Providers
from checks.engine import Outcome, check, failed, passed, skipped

#: Customer.io Liquid tags that render an unsubscribe or subscription-preferences link
UNSUBSCRIBE = re.compile(
    r"\{%-?\s*(unsubscribe_url|unsubscribe|manage_subscription_preferences_url)\s*-?%\}", re.IGNORECASE)
#: the variable form, which renders empty in Customer.io (a common mistake)
UNSUBSCRIBE_VARIABLE = re.compile(
    r"\{\{-?\s*(unsubscribe_url|manage_subscription_preferences_url)\s*-?\}\}", re.IGNORECASE)
STREET = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Za-zÀ-ÿ.'-]+\s){0,4}(?:street|st\.?|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|"
    r"lane|ln\.?|drive|dr\.?|way|court|ct\.?|place|pl\.?|square|sq\.?|highway|hwy\.?|suite|parkway|pkwy\.?)\b"
    r"|\b(?:[A-Za-zÀ-ÿ-]+(?:straße|strasse|str\.|weg|gasse|platz|allee))\s+\d{1,5}\b"
    r"|\bP\.?\s?O\.?\s+Box\s+\d+",
    re.IGNORECASE,
)
TAGS = re.compile(r"<[^>]+>")
CAN_SPAM = "CAN-SPAM Act (15 U.S.C. 7704)"


@dataclass(frozen=True)
class Template:
    where: str  # "campaign “Welcome series” (1), email “Welcome” (11)"
    body: str


def _is_active(campaign: dict[str, Any]) -> bool:
    return campaign.get("active") is True or str(campaign.get("state", "")).lower() in ("running", "active")


def _is_email(item: dict[str, Any]) -> bool:
    return str(item.get("type") or "email").lower() == "email"


def _text(item: dict[str, Any]) -> str:
    return "\n".join(str(item.get(k) or "") for k in ("body", "layout", "body_amp", "preheader_text"))


async def _templates(p: Providers) -> list[Template]:
    assert p.app is not None
    app = p.app

    async def campaign(c: dict[str, Any]) -> list[Template]:
        actions = await app.campaign_actions(c["id"])
        return [Template(f"campaign “{c.get('name', c['id'])}” ({c['id']}), email “{a.get('name') or a.get('id')}” "
                         f"({a.get('id')})", _text(a)) for a in actions if _is_email(a)]

    async def newsletter(n: dict[str, Any]) -> list[Template]:
        contents = await app.newsletter_contents(n["id"])
        return [Template(f"newsletter “{n.get('name', n['id'])}” ({n['id']}), content “{c.get('name') or c.get('id')}” "
                         f"({c.get('id')})", _text(c)) for c in contents if _is_email(c)]

    campaigns, newsletters = await asyncio.gather(p.memo.once("app:campaigns", app.campaigns),
                                                  app.newsletters())
    groups = await asyncio.gather(*(campaign(c) for c in campaigns if _is_active(c)),
                                  *(newsletter(n) for n in newsletters if _is_email(n)))
    return [t for g in groups for t in g]


async def templates(p: Providers) -> list[Template]:
    return await p.memo.once("app:templates", lambda: _templates(p))


async def _emails_to_audit(p: Providers) -> list[Template] | Outcome:
    """The active marketing emails, or the outcome when there is none to audit."""
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    return await templates(p) or passed("No active campaign or newsletter email to check")


def _list(items: list[str], limit: int = 5) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().strip(">").lower() if "@" in address else ""


def _matches(domain: str, sending: str) -> bool:
    return domain == sending or domain.endswith("." + sending) or sending.endswith("." + domain)


@check("campaigns.sender_identity", "A sender identity exists for the sending domain")
async def sender_identity(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.sending_domain:
        return failed("CIO_SENDING_DOMAIN is not set, so the sender identities cannot be checked",
                      "Set CIO_SENDING_DOMAIN to the domain in your From: addresses, e.g. mail.example.com.")
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    identities = await p.memo.once("app:sender_identities", p.app.sender_identities)
    domain = ctx.sending_domain.lower()
    found = [i for i in identities
             if _matches(_domain_of(str(i.get("email") or i.get("address") or "")), domain)]
    if not found:
        others = sorted({_domain_of(str(i.get("email") or "")) for i in identities} - {""})
        return failed(
            f"No sender identity sends from {domain}"
            + (f" (identities use {', '.join(others[:5])})" if others else " (there are none)"),
            f"Add a sender identity with an address at {domain} in Customer.io → Settings → Workspace "
            "Settings → Sender Identities (or fix CIO_SENDING_DOMAIN).",
        )
    names = ", ".join(str(i.get("email") or i.get("address")) for i in found[:3])
    return passed(f"{len(found)} sender identit{'y' if len(found) == 1 else 'ies'} at {domain}: {names}")


@check("campaigns.unsubscribe", "Every marketing email has an unsubscribe link")
async def unsubscribe(ctx: CheckContext, p: Providers) -> Outcome:
    found = await _emails_to_audit(p)
    if isinstance(found, Outcome):
        return found
    missing = [t.where + (" (uses {{ unsubscribe_url }}, which renders empty)"
                          if UNSUBSCRIBE_VARIABLE.search(t.body) else "")
               for t in found if not UNSUBSCRIBE.search(t.body)]
    if missing:
        return failed(
            f"{len(missing)} email(s) have no unsubscribe link: {_list(missing)}",
            "Add a link with the Liquid tag {% unsubscribe_url %} (e.g. <a href=\"{% unsubscribe_url %}\">"
            "Unsubscribe</a>) or {% manage_subscription_preferences_url %} to each email named, or to the "
            "layout they use; it is a {% %} tag, not a {{ }} variable.",
            rule=CAN_SPAM, data={"missing": missing},
        )
    return passed(f"All {len(found)} active email(s) carry an unsubscribe link")


def _has_address(body: str, expected: str | None) -> bool:
    plain = " ".join(TAGS.sub(" ", body).split())
    if expected:
        return " ".join(expected.split()).lower() in plain.lower()
    return bool(STREET.search(plain))


@check("campaigns.postal_address", "Every marketing email shows the postal address")
async def postal_address(ctx: CheckContext, p: Providers) -> Outcome:
    found = await _emails_to_audit(p)
    if isinstance(found, Outcome):
        return found
    missing = [t.where for t in found if not _has_address(t.body, ctx.postal_address)]
    if missing:
        what = f"the postal address “{ctx.postal_address}”" if ctx.postal_address else "a postal address"
        return failed(
            f"{len(missing)} email(s) lack {what}: {_list(missing)}",
            "Add your physical postal address (street, city, postcode) to the footer of each email "
            "named or to its layout; set [checks] postal_address in CIO_CONFIG to check the exact text.",
            rule=CAN_SPAM, data={"missing": missing},
        )
    return passed(f"All {len(found)} active email(s) show a postal address")
