"""Small constructors for deliverability findings, so every one has the same shape."""

from __future__ import annotations

from typing import Any

from checks.base import CheckResult, Severity, Status
from checks.deliverability.dnstypes import DnsAnswer

CATEGORY = "deliverability"


def finding(
    id: str,
    title: str,
    status: Status,
    summary: str,
    *,
    rule: str,
    found: str = "",
    fix: str = "",
    detail: str = "",
    severity: Severity = Severity.BLOCKING,
    data: dict[str, Any] | None = None,
) -> CheckResult:
    """A finding of the deliverability category. A finding that does not pass needs a fix."""
    if status not in (Status.PASS, Status.SKIP) and not fix:
        raise ValueError(f"finding {id} has status {status} but no fix")
    return CheckResult(
        id=id,
        category=CATEGORY,
        title=title,
        status=status,
        summary=summary,
        detail=detail,
        fix=fix,
        severity=severity,
        rule=rule,
        found=found,
        data=dict(data or {}),
    )


def error_from(id: str, title: str, answer: DnsAnswer, rule: str) -> CheckResult:
    """Status ``error`` for a DNS failure, naming the name that was queried."""
    return finding(
        id,
        title,
        Status.ERROR,
        f"Could not check: {answer.describe_failure()}.",
        rule=rule,
        fix=(
            f"Retry; if it persists, check the DNS servers for {answer.name} "
            "(receivers see the same failure and return a temporary error)."
        ),
        data={"name": answer.name, "rdtype": answer.rdtype, "outcome": answer.outcome.value},
    )
