"""Block Kit as plain text, for the console and the rehearsal transcript."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Button:
    action_id: str
    value: str
    label: str
    block_id: str | None
    style: str | None


_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^|>]+)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)>")


def mrkdwn(text: str) -> str:
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _GROUP.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(r"@\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return mrkdwn(str(obj.get("text", "")))
    return mrkdwn(str(obj or ""))


def render(text: str, blocks: list[dict[str, Any]] | None) -> tuple[list[str], list[Button]]:
    """Lines to print and the buttons found, in order."""
    if not blocks:
        return mrkdwn(text).splitlines() or [""], []
    lines: list[str] = []
    buttons: list[Button] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {_text(block.get('text'))} ==")
        elif kind == "section":
            if block.get("text"):
                lines.extend(_text(block["text"]).splitlines())
            for f in block.get("fields") or []:
                lines.append("  " + _text(f).replace("\n", " "))
            acc = block.get("accessory")
            if isinstance(acc, dict) and acc.get("type") == "button":
                buttons.append(_button(acc, block.get("block_id")))
        elif kind == "context":
            parts = [_text(e) for e in block.get("elements") or [] if e.get("type") != "image"]
            lines.append("  (" + " · ".join(parts) + ")")
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            for el in block.get("elements") or []:
                if el.get("type") == "button":
                    buttons.append(_button(el, block.get("block_id")))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            lines.append(mrkdwn(text))
    return lines, buttons


def _button(el: dict[str, Any], block_id: str | None) -> Button:
    return Button(
        action_id=el.get("action_id", ""),
        value=el.get("value", ""),
        label=_text(el.get("text")),
        block_id=block_id,
        style=el.get("style"),
    )
