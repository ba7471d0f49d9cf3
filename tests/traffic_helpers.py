"""Helpers for the traffic tests: ramp through real signed requests, read what landed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.sandbox.harness import Answer, BotHarness
from bot.sandbox.launchdarkly import FakeLaunchDarkly
from bot.sandbox.slack import Message
from bot.sandbox.world import SANDBOX_OPERATOR

OPERATOR_2 = "U0OPERAT2"
VIEWER = "U0VIEWER"
FLAG_PATH = "/api/v2/flags/"


def toml(config: dict[str, Any]) -> str:
    lines = ["[traffic]"]
    for key, value in config.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def ld_of(bot: BotHarness) -> FakeLaunchDarkly:
    return bot.sandbox.launchdarkly


def patches(bot: BotHarness) -> list:
    """PATCH requests that were meant to apply (dry runs left out)."""
    return [r for r in ld_of(bot).calls(FLAG_PATH, "PATCH") if r.query.get("dryRun") != "true"]


def dry_runs(bot: BotHarness) -> list:
    return [r for r in ld_of(bot).calls(FLAG_PATH, "PATCH") if r.query.get("dryRun") == "true"]


def methods(bot: BotHarness) -> list[str]:
    """The LaunchDarkly calls in order: GET, PATCH, or DRY (a dry-run PATCH)."""
    return ["DRY" if r.query.get("dryRun") == "true" else r.method for r in ld_of(bot).calls(FLAG_PATH)]


def proposal(answer: Answer) -> Message:
    """The confirmation message a /cio ramp or /cio rollback answered with."""
    for message in reversed(answer.responses):
        if any(b.get("action_id") == "traffic_confirm" for block in message.blocks
               for b in block.get("elements", []) if isinstance(b, dict)):
            return message
    raise AssertionError(f"no confirmation in the answer: {answer.text!r}")


async def ramp(bot: BotHarness, percent: int | str, *, user: str = SANDBOX_OPERATOR,
               confirmer: str | None = None) -> tuple[Answer, Answer]:
    asked = await bot.command(f"/cio ramp {percent}", user=user)
    clicked = await bot.click(proposal(asked), "traffic_confirm", user=confirmer or user)
    return asked, clicked


def channel_texts(bot: BotHarness) -> list[str]:
    return [m.text for m in bot.slack.channel_messages(bot.channel)]


class Events:
    """Collects what the bus publishes (subscribing like another domain would)."""

    def __init__(self, bot: BotHarness, *names: str) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        for name in names:
            bot.services.events.subscribe(name, self._collector(name))

    def _collector(self, name: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def collect(payload: dict[str, Any]) -> None:
            self.seen.append((name, payload))
        return collect

    def of(self, name: str) -> list[dict[str, Any]]:
        return [p for n, p in self.seen if n == name]


def channel_all(bot: BotHarness) -> list[str]:
    """Each launch-channel message's text and block JSON."""
    import json

    return [m.text + "\n" + json.dumps(m.blocks) for m in bot.slack.channel_messages(bot.channel)]
