"""documentation: runbook, event catalog and escalation path configured, and their URLs
answer 2xx."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

from checks.context import CheckContext, Providers
from checks.engine import Outcome, check, failed, passed, skipped


def _is_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


async def _reachable(p: Providers, what: str, url: str, key: str) -> Outcome:
    if not _is_url(url):
        return failed(f"The {what} “{url}” is not an http(s) URL",
                      f"Set [documentation] {key} in CIO_CONFIG to a full https:// link.")
    if p.web is None:
        return skipped(f"no HTTP client to check the {what} URL")
    answer = await p.web.probe(url)
    if answer.ok:
        return passed(f"The {what} answers HTTP {answer.status} ({url})")
    why = f"HTTP {answer.status}" if answer.status is not None else (answer.error or "no answer")
    return failed(f"The {what} at {url} does not answer 2xx ({why})",
                  f"Fix the link in [documentation] {key} or make the page reachable to the team "
                  "(a page behind a login answers 401/403 here: use a link the on-call person can open).")


@check("documentation.runbook", "Runbook linked and reachable")
async def runbook(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.runbook_url:
        return failed("No runbook is linked",
                      "Write the launch runbook (ramp, rollback, who to call) and set "
                      "[documentation] runbook_url in CIO_CONFIG.")
    return await _reachable(p, "runbook", ctx.runbook_url, "runbook_url")


@check("documentation.event_catalog", "Event catalog documented and reachable")
async def event_catalog(ctx: CheckContext, p: Providers) -> Outcome:
    if ctx.event_catalog_url:
        return await _reachable(p, "event catalog", ctx.event_catalog_url, "event_catalog_url")
    if ctx.catalog_path:
        if await asyncio.to_thread(Path(ctx.catalog_path).is_file):
            return passed(f"The event catalog is the file {Path(ctx.catalog_path).name} (no URL linked)")
        return failed(f"The event catalog file {ctx.catalog_path} does not exist",
                      "Fix [checks] event_catalog in CIO_CONFIG, or link it with [documentation] event_catalog_url.")
    return failed("No event catalog is documented",
                  "Set [documentation] event_catalog_url (or [checks] event_catalog for a file) in CIO_CONFIG.")


@check("documentation.escalation", "Escalation path documented and reachable")
async def escalation(ctx: CheckContext, p: Providers) -> Outcome:
    if ctx.escalation_url:
        return await _reachable(p, "escalation path", ctx.escalation_url, "escalation_url")
    if ctx.escalation:
        return passed(f"The escalation path is the {len(ctx.escalation)} tier(s) in [[alerts.escalation]] "
                      "(no page linked)")
    return failed("No escalation path is documented",
                  "Set [documentation] escalation_url to the on-call page, or add [[alerts.escalation]] tiers.")
