"""Sign-off items: what a person must confirm (test sends reviewed, staging end to end,
load test). Pending items block the launch until an operator confirms them in Slack."""

from __future__ import annotations

from datetime import UTC, datetime

from checks.base import CheckResult, Severity, Status
from checks.context import DEFAULT_SIGNOFFS, CheckContext, SignoffItem
from checks.engine import register_group


def signoff_result(item: SignoffItem, environment: str = "production") -> CheckResult:
    base = dict(id=item.id, category=item.category, title=item.title, severity=Severity.BLOCKING)
    data = {"signoff": item.id, "description": item.description}
    if environment != "production":
        return CheckResult(**base, status=Status.SKIP,
                           summary="Sign-offs belong to the production launch",
                           data={**data, "state": "n/a"})
    state = item.state
    if state is not None and state.state == "confirmed":
        when = datetime.fromtimestamp(state.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return CheckResult(**base, status=Status.PASS, summary=f"Confirmed by {state.by} at {when}",
                           data={**data, "state": "confirmed", "by": state.by, "at": state.at})
    if state is not None and state.state == "revoked":
        when = datetime.fromtimestamp(state.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        summary = f"Pending (revoked by {state.by} at {when}): {item.description}"
        data.update(revoked_by=state.by, revoked_at=state.at)
    else:
        summary = f"Pending sign-off: {item.description}"
    return CheckResult(**base, status=Status.FAIL, summary=summary,
                       fix="An operator confirms it with the Confirm button once it is done.",
                       data={**data, "state": "pending"})


def _planned(category: str) -> int:
    return sum(1 for item in DEFAULT_SIGNOFFS if item.category == category)


register_group("campaigns.signoff", "campaigns", "Sign-off: test sends",
               lambda ctx, p: _only(ctx, "campaigns"), planned=_planned("campaigns"))
register_group("testing.signoff", "testing", "Sign-off: staging and load test",
               lambda ctx, p: _only(ctx, "testing"), planned=_planned("testing"))


async def _only(ctx: CheckContext, category: str) -> list[CheckResult]:
    return [signoff_result(item, ctx.environment) for item in ctx.signoffs if item.category == category]
