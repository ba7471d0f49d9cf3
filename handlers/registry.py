"""The registry of ``/cio`` subcommands and button actions.

A decorator registers each command with its usage, one-line help and permission, so
``/cio help`` is generated from the code and cannot drift from it. Handler modules in
this package register themselves on import (:func:`load_handlers`).
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

if TYPE_CHECKING:
    from bot.services import Services


class Permission(StrEnum):
    ANYONE = "anyone"
    OPERATORS = "operators"


@dataclass
class Reply:
    """What a handler answers. Ephemeral by default; ``in_channel`` shows it to everyone."""

    text: str
    blocks: list[Block | dict[str, Any]] | None = None
    in_channel: bool = False
    replace_original: bool = False

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "response_type": "in_channel" if self.in_channel else "ephemeral",
        }
        if self.blocks is not None:
            out["blocks"] = [b.to_dict() if isinstance(b, Block) else b for b in self.blocks]
        if self.replace_original:
            out["replace_original"] = True
        return out


Respond = Callable[[Reply], Awaitable[None]]


@dataclass
class CommandContext:
    services: Services
    user_id: str
    channel_id: str
    command: str  # the subcommand name
    text: str  # everything after the subcommand, as typed
    args: list[str]  # ``text`` split like a shell would (quotes group words)
    respond: Respond
    response_url: str | None = None
    trigger_id: str | None = None


@dataclass
class ActionContext:
    services: Services
    user_id: str
    channel_id: str
    action_id: str
    value: str
    message_ts: str | None
    respond: Respond
    body: dict[str, Any] = field(default_factory=dict)


CommandFunc = Callable[[CommandContext], Awaitable[Reply | None]]
ActionFunc = Callable[[ActionContext], Awaitable[Reply | None]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    permission: Permission
    func: CommandFunc
    quick: bool  # answered inside the ack (must be fast and must not post elsewhere)
    order: int
    aliases: tuple[str, ...] = ()
    free_text: bool = False  # the words are prose (a reason): an apostrophe is not an unbalanced quote


@dataclass(frozen=True)
class Action:
    action_id: str
    permission: Permission
    func: ActionFunc
    description: str
    audit_value: bool = True  # False for values that are tokens (kept out of the audit trail)


COMMANDS: dict[str, Command] = {}
ACTIONS: dict[str, Action] = {}


def command(
    name: str,
    *,
    usage: str,
    summary: str,
    permission: Permission = Permission.ANYONE,
    quick: bool = False,
    order: int = 100,
    aliases: tuple[str, ...] = (),
    free_text: bool = False,
) -> Callable[[CommandFunc], CommandFunc]:
    def decorate(func: CommandFunc) -> CommandFunc:
        entry = Command(name, usage, summary, permission, func, quick, order, aliases, free_text)
        for key in (name, *aliases):
            if key in COMMANDS and COMMANDS[key].func is not func:
                raise RuntimeError(f"/cio {key} is registered twice")
            COMMANDS[key] = entry
        return func

    return decorate


def action(
    action_id: str, *, permission: Permission = Permission.ANYONE, description: str = "",
    audit_value: bool = True,
) -> Callable[[ActionFunc], ActionFunc]:
    def decorate(func: ActionFunc) -> ActionFunc:
        if action_id in ACTIONS and ACTIONS[action_id].func is not func:
            raise RuntimeError(f"action {action_id} is registered twice")
        ACTIONS[action_id] = Action(action_id, permission, func, description, audit_value)
        return func

    return decorate


def commands() -> list[Command]:
    """Each command once, in help order."""
    seen: dict[str, Command] = {}
    for entry in COMMANDS.values():
        seen.setdefault(entry.name, entry)
    return sorted(seen.values(), key=lambda c: (c.order, c.name))


class UsageError(Exception):
    """Input that does not parse. The message is shown with the command's usage."""


def split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"I could not read that: {exc} (check your quotes).") from None


_INFRA = {"registry", "slash", "actions", "web", "console"}


def load_handlers() -> None:
    """Import every handler module of this package so that its commands register."""
    import handlers

    for info in pkgutil.iter_modules(handlers.__path__):
        if info.name not in _INFRA:
            importlib.import_module(f"handlers.{info.name}")


async def ack_then_continue(services: Services, ack: Any, work: Callable[[Any], Awaitable[None]], *,
                            name: str) -> None:
    """Run ``work(ack)`` and return as soon as it has acknowledged: Bolt (which processes the
    listener before it responds) sends the ack then, and the rest of the work carries on in
    the background, counted as in flight. Slack has its answer the moment there is one,
    not at Bolt's next 10 ms poll."""
    acked = asyncio.Event()

    async def ack_once(*args: Any, **kwargs: Any) -> None:
        try:
            await ack(*args, **kwargs)
        finally:
            acked.set()

    async def run() -> None:
        with services.busy():
            await work(ack_once)

    task = services.spawn(run(), name=name)
    waiter = asyncio.ensure_future(acked.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()

