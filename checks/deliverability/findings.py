"""Small constructors for deliverability findings, so every one has the same shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

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


class Extras(TypedDict, total=False):
    """What a verdict may add or override: see :func:`finding`."""

    rule: str
    found: str
    detail: str
    severity: Severity
    data: dict[str, Any]


@dataclass(frozen=True)
class Verdicts:
    """The verdicts one finding can reach, each in one call: ``v.fail(summary, fix=...)``,
    ``v.passed(summary)``. ``rule`` and ``severity`` hold for every verdict unless a call
    names its own."""

    id: str
    title: str
    rule: str
    severity: Severity = Severity.BLOCKING

    def passed(self, summary: str, **extra: Unpack[Extras]) -> CheckResult:
        return self._verdict(Status.PASS, summary, "", extra)

    def warn(self, summary: str, *, fix: str, **extra: Unpack[Extras]) -> CheckResult:
        return self._verdict(Status.WARN, summary, fix, extra)

    def fail(self, summary: str, *, fix: str, **extra: Unpack[Extras]) -> CheckResult:
        return self._verdict(Status.FAIL, summary, fix, extra)

    def error(self, summary: str, *, fix: str, **extra: Unpack[Extras]) -> CheckResult:
        return self._verdict(Status.ERROR, summary, fix, extra)

    def dns_error(self, answer: DnsAnswer, rule: str | None = None) -> CheckResult:
        """Status ``error`` for a DNS failure (see :func:`error_from`)."""
        return error_from(self.id, self.title, answer, rule or self.rule)

    def _verdict(self, status: Status, summary: str, fix: str, extra: Extras) -> CheckResult:
        merged: Extras = {"rule": self.rule, "severity": self.severity, **extra}
        return finding(self.id, self.title, status, summary, fix=fix, **merged)
