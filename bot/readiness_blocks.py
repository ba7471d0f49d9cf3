"""The readiness report as Block Kit (slack_sdk models), within Slack's limits.

Failures and errors come first, each with its fix; then the sign-off items with their
Confirm / Revoke buttons; then warnings; passes and skips are summarised per category.
However many checks there are, the message stays within 50 blocks and 3000 characters
per section: what does not fit is summarised in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot import blocks
from checks.base import CATEGORIES, CheckResult, Severity, Status

CONFIRM_ACTION = "checks.signoff.confirm"
REVOKE_ACTION = "checks.signoff.revoke"

ICON = {Status.PASS: ":white_check_mark:", Status.WARN: ":warning:", Status.FAIL: ":x:",
        Status.SKIP: ":fast_forward:", Status.ERROR: ":rotating_light:"}
ITEM_LIMIT = 700  # characters per failure block, so many fit in one message


@dataclass(frozen=True)
class ReportView:
    environment: str
    planned: int
    results: Sequence[CheckResult]
    done: bool
    run_id: int | None = None
    actor: str = ""
    wall_ms: float = 0.0
    started_at: float = 0.0
    note: str = ""  # e.g. "Sign-off updated by …"


def utc_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def is_signoff(r: CheckResult) -> bool:
    return bool(r.data.get("signoff"))


def verdict_of(results: Sequence[CheckResult]) -> str:
    return "no-go" if any(r.blocks_launch for r in results) else "go"


def counts_line(results: Sequence[CheckResult], planned: int, done: bool) -> str:
    n = {s: 0 for s in Status}
    for r in results:
        n[r.status] += 1
    parts = [f"*{n[Status.PASS]}* passed"]
    if n[Status.WARN]:
        parts.append(f"*{n[Status.WARN]}* warning{'s' if n[Status.WARN] != 1 else ''}")
    pending = sum(1 for r in results if is_signoff(r) and r.status is Status.FAIL)
    failed = n[Status.FAIL] - pending
    if failed:
        parts.append(f"*{failed}* failed")
    if n[Status.ERROR]:
        parts.append(f"*{n[Status.ERROR]}* could not run")
    if pending:
        parts.append(f"*{pending}* sign-off{'s' if pending != 1 else ''} pending")
    if n[Status.SKIP]:
        parts.append(f"*{n[Status.SKIP]}* skipped")
    if not done:
        parts.append(f"*{max(planned - len(results), 0)}* still running")
    return " · ".join(parts)


def headline(view: ReportView) -> str:
    env = view.environment
    if not view.done:
        return f"Readiness check ({env}): running {view.planned} checks… {len(view.results)} done"
    if verdict_of(view.results) == "go":
        return f"GO: {env} is ready for launch"
    return f"NO-GO: {env} is not ready for launch"


def fallback_text(view: ReportView) -> str:
    plain = counts_line(view.results, view.planned, view.done).replace("*", "")
    if not view.done:
        return f"Running {view.planned} readiness checks ({view.environment})… {plain}"
    return f"Readiness {verdict_of(view.results).upper()} ({view.environment}): {plain}"


def _item(r: CheckResult) -> str:
    icon = ICON[r.status]
    advisory = " _(advisory)_" if r.severity is Severity.ADVISORY else ""
    text = f"{icon} *{r.title}*{advisory} `{r.id}`\n{r.summary}"
    if r.fix and r.status is not Status.PASS:
        text += f"\n*Fix:* {r.fix}"
    return blocks.truncate(text, ITEM_LIMIT)


def _signoff_block(r: CheckResult, *, buttons: bool) -> SectionBlock:
    state = r.data.get("state")
    icon = ":white_check_mark:" if state == "confirmed" else (":fast_forward:" if state == "n/a" else ":pencil2:")
    line = r.summary
    if state == "confirmed" and r.data.get("at"):
        at = float(r.data["at"])
        line = f"Confirmed by <@{r.data.get('by')}> {blocks.user_date(at, utc_text(at))}"
    elif r.data.get("revoked_by") and r.data.get("revoked_at"):
        at = float(r.data["revoked_at"])
        line = (f"Pending: revoked by <@{r.data['revoked_by']}> {blocks.user_date(at, utc_text(at))}. "
                f"{r.data.get('description', '')}")
    text = blocks.truncate(f"{icon} *Sign-off: {r.title}* `{r.id}`\n{line}", ITEM_LIMIT)
    accessory = None
    if buttons and state == "pending":
        accessory = ButtonElement(text=PlainTextObject(text="Confirm"), action_id=CONFIRM_ACTION,
                                  value=r.id, style="primary")
    elif buttons and state == "confirmed":
        accessory = ButtonElement(
            text=PlainTextObject(text="Revoke"), action_id=REVOKE_ACTION, value=r.id, style="danger",
            confirm=ConfirmObject(title="Revoke this sign-off?",
                                  text=blocks.truncate(f"“{r.title}” goes back to pending and blocks the "
                                                       "launch until it is confirmed again.", 300),
                                  confirm="Revoke", deny="Keep it", style="danger"))
    return SectionBlock(text=MarkdownTextObject(text=text), accessory=accessory)


def _chunks(lines: Sequence[str], title: str) -> list[str]:
    out: list[str] = []
    current = title
    for line in lines:
        if len(current) + len(line) + 1 > blocks.MAX_SECTION_TEXT - 20:
            out.append(current)
            current = ""
        current += ("\n" if current else "") + line
    if current:
        out.append(current)
    return out


def render(view: ReportView) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the report as it stands."""
    results = list(view.results)
    go = verdict_of(results) == "go"
    title = (("✅ " if go else "⛔ ") if view.done else "⏳ ") + headline(view)
    meta = [f"Run #{view.run_id}" if view.run_id else "Readiness check", view.environment,
            f"{view.planned} checks"]
    if view.done and view.wall_ms:
        meta.append(f"{view.wall_ms / 1000:.1f} s")
    if view.actor:
        meta.append(f"by <@{view.actor}>" if view.actor[:1] in "UW" else f"by {view.actor}")
    if view.started_at:
        meta.append(blocks.user_date(view.started_at, utc_text(view.started_at)))
    top: list[Block] = [blocks.header(title), blocks.context(" · ".join(meta)),
                        blocks.section(counts_line(results, view.planned, view.done))]
    if view.note:
        top.append(blocks.context(view.note))

    problems = [r for r in results if r.status in (Status.FAIL, Status.ERROR) and not is_signoff(r)]
    problems.sort(key=lambda r: (r.severity is not Severity.BLOCKING, r.status is not Status.FAIL,
                                 CATEGORIES.index(r.category) if r.category in CATEGORIES else 99))
    signoffs = [r for r in results if is_signoff(r)]
    warnings = [r for r in results if r.status is Status.WARN and not is_signoff(r)]

    tail: list[Block] = []
    if warnings:
        for text in _chunks([_item(r) for r in warnings], "")[:2]:
            tail.append(blocks.section(text))
    tail.extend(_summary_blocks(results, view.done))

    budget = blocks.MAX_BLOCKS - len(top) - len(tail) - len(signoffs[:10]) - 1
    body: list[Block] = []
    shown = problems[:max(budget, 0)]
    for r in shown:
        body.append(blocks.section(_item(r)))
    rest = problems[len(shown):]
    if rest:
        names = ", ".join(f"`{r.id}`" for r in rest)
        body.append(blocks.section(blocks.truncate(
            f"…and {len(rest)} more failure(s): {names}. Run `cio-bot check --format json` for every fix.",
            blocks.MAX_SECTION_TEXT)))
    for r in signoffs[:10]:
        body.append(_signoff_block(r, buttons=view.done))
    return fallback_text(view), blocks.fit(top + body + tail, overflow_note="more results not shown")


def _summary_blocks(results: Sequence[CheckResult], done: bool) -> list[Block]:
    per: dict[str, list[CheckResult]] = {}
    for r in results:
        per.setdefault(r.category, []).append(r)
    parts = []
    for category in CATEGORIES:
        items = per.get(category)
        if not items:
            continue
        ok = sum(1 for r in items if r.status is Status.PASS)
        mark = ":white_check_mark:" if all(r.status in (Status.PASS, Status.SKIP) for r in items) else ":x:"
        if any(r.status is Status.WARN for r in items) and mark != ":x:" and \
                not any(r.status in (Status.FAIL, Status.ERROR) for r in items):
            mark = ":warning:"
        parts.append(f"{mark} {category} {ok}/{len(items)}")
    out: list[Block] = []
    if parts:
        out.append(blocks.context(" · ".join(parts)))
    skips = [r for r in results if r.status is Status.SKIP and not is_signoff(r)]
    if skips and done:
        lines = "; ".join(f"`{r.id}`: {r.summary}" for r in skips)
        out.append(blocks.context(blocks.truncate(f"Skipped: {lines}", 2900)))
    return out


def stopped(environment: str, reason: str, run_id: int | None = None) -> tuple[str, list[Block]]:
    """A report that did not finish: no verdict, and what to do."""
    text = f"Readiness check ({environment}) did not finish: {reason}. No verdict; run `/cio check` again."
    label = f"Run #{run_id} · {environment}" if run_id else environment
    return text, [blocks.header(f"⚠️ Readiness check interrupted ({environment})"),
                  blocks.section(f"{reason[:1].upper()}{reason[1:]}. *No verdict was reached*; run "
                                 "`/cio check` again."),
                  blocks.context(label)]
