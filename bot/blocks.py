"""Block Kit rendering with slack_sdk's models (validated at ``to_dict()``).

Slack limits that the models do not check (50 blocks per message, field length) are
enforced here by :func:`fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER = 150


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Free text (a reason, a label) shown as text in Slack mrkdwn: ``&``, ``<`` and ``>`` as
    entities, so it can never ping, link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shown(text: str, limit: int = 40) -> str:
    """Someone's input quoted back to them: a code span, cut to ``limit`` characters, that no
    backtick, newline or control character can break out of."""
    clean = "".join(" " if not ch.isprintable() else ch for ch in text).replace("`", "'")
    return f"`{truncate(clean, limit) or ' '}`"


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=truncate(text, MAX_HEADER), emoji=True))


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(t, MAX_SECTION_TEXT)) for t in texts[:10]])


def fit(blocks: Sequence[Block], *, overflow_note: str = "more not shown") -> list[Block]:
    """Keep a message within 50 blocks, replacing the tail by one line saying how much is cut."""
    blocks = list(blocks)
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    kept.append(context(f"_{len(blocks) - len(kept)} {overflow_note}_"))
    return kept


def user_date(ts: float, fallback: str, fmt: str = "{date_short_pretty} {time}") -> str:
    """A date each reader sees in their own time zone."""
    return f"<!date^{int(ts)}^{fmt}|{fallback}>"


@dataclass(frozen=True)
class HelpEntry:
    usage: str
    summary: str
    operators_only: bool


def _command_lines(entries: Sequence[HelpEntry]) -> str:
    return "\n".join(f"`{e.usage}`\n      {e.summary}" for e in entries)


def help_blocks(entries: Sequence[HelpEntry], *, intro: str | None = None) -> list[Block]:
    anyone = [e for e in entries if not e.operators_only]
    operators = [e for e in entries if e.operators_only]
    out: list[Block] = [header("cio-launchbot")]
    out.append(section(intro or "I take this Customer.io integration to production safely. Commands:"))
    if anyone:
        out.append(section("*For everyone*\n" + _command_lines(anyone)))
    if operators:
        out.append(section("*For launch operators* (CIO_OPERATORS)\n" + _command_lines(operators)))
    out.append(context("Answers visible only to you are marked _only visible to you_. Buttons check who pressed them."))
    return fit(out)


def usage_blocks(problem: str | None, entries: Sequence[HelpEntry]) -> list[Block]:
    lines = "\n".join(f"`{e.usage}`" for e in entries)
    out: list[Block] = []
    if problem:
        out.append(section(f":grey_question: {problem}"))
    out.append(section("*Usage:* `/cio <command> [arguments]`\n" + lines))
    out.append(context("`/cio help` explains each command."))
    return out


def divider() -> DividerBlock:
    return DividerBlock()


def audit_blocks(rows: Sequence[dict]) -> tuple[list[Block], str]:
    """The audit trail, newest first, within Block Kit limits."""
    if not rows:
        return [section("Nothing recorded yet.")], "Nothing recorded yet."
    lines = [
        f"`{r['at'][:19].replace('T', ' ')}` <@{r['user_id']}> {r['kind']} `{truncate(r['action'], 80)}` → *{r['outcome']}*"
        if r["user_id"] else
        f"`{r['at'][:19].replace('T', ' ')}` bot {r['kind']} `{truncate(r['action'], 80)}` → *{r['outcome']}*"
        for r in rows
    ]
    out: list[Block] = [header(f"Audit trail (latest {len(rows)})")]
    chunk: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > MAX_SECTION_TEXT - 10:
            out.append(section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        out.append(section("\n".join(chunk)))
    return fit(out), "Audit trail:\n" + "\n".join(lines)
