"""The ``/cio`` listener: parse, check permission, dispatch, audit, answer.

Every command is acknowledged at once. Quick commands answer inside the ack; the others
ack empty and continue in the background, answering through ``respond()``. A failure is
always a sentence to the user, never a Slack timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.blocks import shown
from bot.errors import UserError
from bot.services import Services
from handlers.registry import (
    COMMANDS,
    CommandContext,
    Permission,
    Reply,
    UsageError,
    ack_then_continue,
    commands,
    split_args,
)

log = logging.getLogger(__name__)

QUICK_BUDGET = 2.0  # seconds a quick command may take inside the 3 s ack window
MAX_TEXT = 1000  # characters after /cio: room for a reason, not for a pasted log


def usage_reply(problem: str | None = None) -> Reply:
    entries = [blocks.HelpEntry(c.usage, c.summary, c.permission is Permission.OPERATORS) for c in commands()]
    text = (problem + "\n" if problem else "") + "Usage: /cio <command> [arguments]. Try `/cio help`."
    return Reply(text, blocks.usage_blocks(problem, entries))


def register(app: AsyncApp, services: Services) -> None:
    audit = services.store.audit

    async def handle(ack: Any, body: dict[str, Any], respond: Any) -> None:
        started = time.perf_counter()
        user = body.get("user_id", "")
        channel = body.get("channel_id", "")
        full = (body.get("text") or "").strip()
        name, _, rest = full.partition(" ")
        name = name.lower()
        rest = rest.strip()
        action = f"/cio {full}".strip()

        def record(outcome: str, detail: str = "") -> None:
            detail = detail or f"{(time.perf_counter() - started) * 1000:.0f} ms"
            audit.record(user_id=user, channel_id=channel, kind="command", action=action,
                         outcome=outcome, detail=detail)

        if len(full) > MAX_TEXT:
            action = blocks.truncate(action, 80)
            await ack(**usage_reply(f"That is {len(full):,} characters; a /cio command takes at most {MAX_TEXT:,}. "
                                    "Keep a reason to a sentence or two and link to the details.").payload())
            record("usage", f"{len(full)} characters")
            return
        cmd = COMMANDS.get(name)
        if cmd is None:
            problem = None if not name else f"{shown(name)} is not a /cio command."
            await ack(**usage_reply(problem).payload())
            record("usage")
            return
        try:
            args = rest.split() if cmd.free_text else split_args(rest)
        except UsageError as exc:
            await ack(**usage_reply(f"{exc} Usage: `{cmd.usage}`").payload())
            record("usage", str(exc))
            return

        if cmd.permission is Permission.OPERATORS:
            decision = await services.permissions.check(user)
            if not decision.allowed:
                await ack(**Reply(
                    f":no_entry: Only launch operators can run `/cio {cmd.name}`: {decision.reason}. "
                    "Ask an operator, or have an admin add you to CIO_OPERATORS."
                ).payload())
                record("refused", decision.reason)
                return

        async def send(reply: Reply) -> None:
            await respond(**reply.payload())

        ctx = CommandContext(
            services=services, user_id=user, channel_id=channel, command=cmd.name, text=rest,
            args=args, respond=send, response_url=body.get("response_url"),
            trigger_id=body.get("trigger_id"),
        )

        if cmd.quick:
            try:
                reply = await asyncio.wait_for(cmd.func(ctx), QUICK_BUDGET)
            except (UserError, UsageError) as exc:
                await ack(**Reply(_sentence(exc, cmd.usage)).payload())
                record("rejected", str(exc))
                return
            except Exception as exc:  # a bug must still answer
                log.exception("/cio %s failed", cmd.name)
                await ack(**Reply(_failure(cmd.name, exc)).payload())
                record("error", type(exc).__name__)
                return
            await ack(**(reply or Reply("Done.")).payload())
            record("ok")
            return

        await ack()
        try:
            reply = await cmd.func(ctx)
        except (UserError, UsageError) as exc:
            await send(Reply(_sentence(exc, cmd.usage)))
            record("rejected", str(exc))
            return
        except Exception as exc:
            log.exception("/cio %s failed", cmd.name)
            await send(Reply(_failure(cmd.name, exc)))
            record("error", type(exc).__name__)
            return
        if reply is not None:
            await send(reply)
        record("ok")


    @app.command("/cio")
    async def on_cio(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack_then_continue(services, ack, lambda acknowledge: handle(acknowledge, body, respond), name="/cio")


def _sentence(exc: Exception, usage: str) -> str:
    text = str(exc)
    if isinstance(exc, UsageError):
        text += f"\nUsage: `{usage}`"
    return text


def _failure(name: str, exc: Exception) -> str:
    from bot.providers.http import ProviderError

    if isinstance(exc, ProviderError):
        return f":warning: `/cio {name}` could not finish: {exc}"
    return (
        f":warning: `/cio {name}` failed on an internal error ({type(exc).__name__}). "
        "It has been logged; nothing further was attempted."
    )
