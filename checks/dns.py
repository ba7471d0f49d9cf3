"""The DNS deliverability checks (SPF, DKIM, DMARC, return path) as a group of the engine."""

from __future__ import annotations

from checks.base import CheckResult, Severity, Status
from checks.context import CheckContext, Providers
from checks.deliverability import check_domain
from checks.engine import register_group

GROUP_ID = "deliverability.dns"


async def dns_checks(ctx: CheckContext, p: Providers) -> list[CheckResult]:
    resolver = p.extra.get("dns")
    if not ctx.sending_domain or resolver is None:
        reason = ("CIO_SENDING_DOMAIN is not set" if not ctx.sending_domain
                  else "no DNS resolver is configured for this run")
        return [CheckResult(
            id=GROUP_ID, category="deliverability", title="SPF, DKIM, DMARC, return path",
            status=Status.SKIP, severity=Severity.BLOCKING,
            summary=f"Not checked: {reason}",
            fix="Set CIO_SENDING_DOMAIN to the domain you send from (and CIO_DKIM_SELECTORS) "
                "to check its SPF, DKIM and DMARC records.",
        )]
    return await check_domain(ctx.sending_domain, resolver=resolver, dkim_selectors=ctx.dkim_selectors,
                              expected=ctx.return_path)


# SPF (7), DMARC (6), DKIM (per selector), return path (3) and the bulk-sender summary
register_group(GROUP_ID, "deliverability", "SPF, DKIM, DMARC, return path", dns_checks, planned=20)
