"""Helpers of the timeline tests: CIO_CONFIG text and reading what the bot posted."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.sandbox.slack import FakeSlack, Message

OWNER_GROUP = "S0LAUNCHERS"


def toml(timeline: dict[str, Any] | None = None, milestones: list[dict[str, Any]] | None = None) -> str:
    lines = ["[timeline]"]
    for key, value in (timeline or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    for entry in milestones or []:
        lines.append("[[timeline.milestones]]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in entry.items())
    return "\n".join(lines) + "\n"


def milestone_posts(slack: FakeSlack, label: str | None = None) -> list[Message]:
    """Channel messages that are milestone reminders (optionally of one label, e.g. "T-24h")."""
    out = []
    for m in slack.messages:
        if m.kind != "message" or not m.blocks:
            continue
        head = json.dumps(m.blocks[0])
        if ":alarm_clock:" not in head and ":bell:" not in head:
            continue
        if label is None or m.text.startswith(f"{label} ·") or (label == "heads-up" and ":bell:" in head):
            out.append(m)
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)
