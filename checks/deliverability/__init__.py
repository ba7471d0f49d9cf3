"""Deliverability checks: SPF, DKIM, DMARC and return path of the sending domain.

Pure validation logic over a :class:`~checks.deliverability.dnstypes.Resolver` (the
project's implementation is ``bot.providers.dns.DnsClient``). Entry point:
:func:`check_domain`. Every finding has category ``deliverability``, an id such as
``deliverability.spf.lookup_limit``, the rule it enforces, the record as found and, when
it does not pass, the fix. The last finding, ``deliverability.bulk_sender``, states
whether the Gmail/Yahoo bulk-sender DNS requirements are met.

Return-path expectations come from the ``[deliverability]`` TOML table; see
:mod:`checks.deliverability.returnpath` for the keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from checks.base import CheckResult, Status
from checks.deliverability.dkim import DkimEvaluation, evaluate_dkim
from checks.deliverability.dmarc import AlignmentIdentifiers, DmarcEvaluation, evaluate_dmarc
from checks.deliverability.dnstypes import (
    DnsAnswer,
    MxRecord,
    Outcome,
    Resolver,
    TxtRecord,
    normalize_name,
)
from checks.deliverability.findings import CATEGORY, finding
from checks.deliverability.returnpath import (
    TOML_KEYS,
    ReturnPathEvaluation,
    ReturnPathExpectation,
    evaluate_return_path,
)
from checks.deliverability.spf import SpfEvaluation, evaluate_spf

BULK_SENDER_RULE = "Gmail/Yahoo bulk sender requirements (Feb 2024)"

__all__ = [
    "CATEGORY",
    "TOML_KEYS",
    "DnsAnswer",
    "MxRecord",
    "Outcome",
    "Resolver",
    "ReturnPathExpectation",
    "TxtRecord",
    "check_domain",
    "is_go",
]


async def check_domain(
    domain: str,
    *,
    resolver: Resolver,
    dkim_selectors: Sequence[str] = (),
    expected: ReturnPathExpectation | None = None,
) -> list[CheckResult]:
    """Every deliverability finding for ``domain``; independent lookups run concurrently."""
    domain = normalize_name(domain)
    identifiers = AlignmentIdentifiers(
        return_path_domain=expected.return_path_domain if expected else None,
        dkim_domain=(expected.dkim_domain or expected.return_path_domain) if expected else None,
    )
    # DKIM keys live under the signing domain: configured, else Customer.io's sending
    # subdomain (return path) when configured, else the sending domain itself.
    dkim_domain = identifiers.dkim_domain or domain
    spf, dmarc, dkim, rp = await asyncio.gather(
        evaluate_spf(domain, resolver),
        evaluate_dmarc(domain, resolver, identifiers),
        evaluate_dkim(dkim_domain, dkim_selectors, resolver),
        evaluate_return_path(domain, expected, resolver),
    )
    results = [*spf.results, *dmarc.results, *dkim.results, *(rp.results or [])]
    results.append(bulk_sender_summary(domain, spf, dmarc, dkim, rp, expected))
    return results


def bulk_sender_summary(
    domain: str,
    spf: SpfEvaluation,
    dmarc: DmarcEvaluation,
    dkim: DkimEvaluation,
    rp: ReturnPathEvaluation,
    expected: ReturnPathExpectation | None,
) -> CheckResult:
    """Gmail/Yahoo 2024: SPF and DKIM, DMARC at least p=none, aligned From possible."""
    items: dict[str, bool | None] = {}
    # SPF is checked on the envelope domain: Customer.io's return path when configured.
    if expected is not None and expected.return_path_domain:
        items[f"SPF ({expected.return_path_domain})"] = rp.spf_ok
    else:
        items[f"SPF ({domain})"] = (
            _verdict(spf.results, "deliverability.spf.") if spf.published else False
        )
    dkim_errors = any(r.status is Status.ERROR for r in dkim.results)
    if dkim.usable_selectors:
        items["DKIM"] = True
    elif any(r.status is Status.SKIP for r in dkim.results):
        items["DKIM"] = None
    else:
        items["DKIM"] = None if dkim_errors else False
    dmarc_errors = any(
        r.status is Status.ERROR and r.id == "deliverability.dmarc.record" for r in dmarc.results
    )
    dmarc_failed = any(
        r.status is Status.FAIL
        for r in dmarc.results
        if r.id
        in (
            "deliverability.dmarc.record",
            "deliverability.dmarc.syntax",
            "deliverability.dmarc.policy",
        )
    )
    items["DMARC p=none or stronger"] = None if dmarc_errors else dmarc.applies and not dmarc_failed
    alignment = next((r for r in dmarc.results if r.id == "deliverability.dmarc.alignment"), None)
    if alignment is None:
        items["aligned From possible"] = None if dmarc_errors else False
    else:
        items["aligned From possible"] = (
            None if alignment.status is Status.ERROR else alignment.status is not Status.FAIL
        )

    missing = [k for k, v in items.items() if v is False]
    unknown = [k for k, v in items.items() if v is None]
    met = [k for k, v in items.items() if v]
    data = {"met": met, "not_met": missing, "unknown": unknown}
    rid, title = "deliverability.bulk_sender", "Gmail/Yahoo bulk-sender DNS requirements"
    detail = (
        "Also required and checked elsewhere: one-click unsubscribe (RFC 8058), spam rate < 0.3%."
    )
    if missing:
        return finding(
            rid,
            title,
            Status.FAIL,
            f"Not met: {', '.join(missing)} missing or invalid.",
            rule=BULK_SENDER_RULE,
            detail=detail,
            data=data,
            fix="Fix the failing SPF/DKIM/DMARC findings above; Gmail and Yahoo reject or spam-folder bulk mail without them.",
        )
    if unknown:
        status = Status.ERROR if any(k != "DKIM" or dkim_errors for k in unknown) else Status.WARN
        return finding(
            rid,
            title,
            status,
            f"Not confirmed: {', '.join(unknown)} could not be verified; met so far: {', '.join(met) or 'nothing'}.",
            rule=BULK_SENDER_RULE,
            detail=detail,
            data=data,
            fix="Configure the DKIM selectors / retry the DNS failures above, then run the check again.",
        )
    return finding(
        rid,
        title,
        Status.PASS,
        f"Met: {', '.join(met)}.",
        rule=BULK_SENDER_RULE,
        detail=detail,
        data=data,
    )


def _verdict(results: list[CheckResult], prefix: str) -> bool | None:
    relevant = [r for r in results if r.id.startswith(prefix)]
    if any(r.status is Status.FAIL for r in relevant):
        return False
    if any(r.status is Status.ERROR for r in relevant):
        return None
    return True


def is_go(results: Sequence[CheckResult]) -> bool:
    """Nothing blocking failed or errored."""
    return not any(r.blocks_launch for r in results)
