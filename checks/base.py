"""The data every readiness check returns. Pure data: no Slack, no HTTP, no SQL."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Severity(StrEnum):
    BLOCKING = "blocking"
    ADVISORY = "advisory"


CATEGORIES: tuple[str, ...] = (
    "credentials",
    "integration",
    "campaigns",
    "deliverability",
    "monitoring",
    "testing",
    "documentation",
    "rollback",
)


@dataclass(frozen=True)
class CheckResult:
    """One finding. ``fix`` is required for anything that does not pass.

    ``rule`` cites the rule enforced (e.g. "RFC 7208 §4.6.4") and ``found`` shows the
    record or value as found, when that helps the reader.
    """

    id: str
    category: str
    title: str
    status: Status
    summary: str
    detail: str = ""
    fix: str = ""
    severity: Severity = Severity.BLOCKING
    rule: str = ""
    found: str = ""
    duration_ms: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks_launch(self) -> bool:
        """A blocking check that failed or could not run stops the launch."""
        return self.severity is Severity.BLOCKING and self.status in (Status.FAIL, Status.ERROR)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        out["severity"] = self.severity.value
        return out
