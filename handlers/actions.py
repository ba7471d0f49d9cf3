"""Button presses: ack at once, check who clicked (confirm dialogs are client-side only),
dispatch to the registered action, audit."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.errors import UserError
from bot.providers.http import ProviderError
from bot.services import Services
from handlers.registry import ACTIONS, ActionContext, Permission, Reply, ack_then_continue

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    audit = services.store.audit

    async def handle(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        act = (body.get("actions") or [{}])[0]
        action_id = act.get("action_id", "")
        value = act.get("value") or (act.get("selected_option") or {}).get("value") or ""
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
        message_ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")

        entry = ACTIONS.get(action_id)
        shown = value if entry is None or entry.audit_value else "(token)"

        def record(outcome: str, detail: str = "") -> None:
            audit.record(user_id=user, channel_id=channel, kind="button",
                         action=f"{action_id}:{shown}"[:200], outcome=outcome, detail=detail)

        async def send(reply: Reply) -> None:
            await respond(**reply.payload())

        if entry is None:
            log.warning("button %s has no handler", action_id)
            await send(Reply("That button is no longer handled by this bot; run the command again."))
            record("unknown")
            return
        if entry.permission is Permission.OPERATORS:
            decision = await services.permissions.check(user)
            if not decision.allowed:
                await send(Reply(f":no_entry: Only launch operators can press this button: {decision.reason}."))
                record("refused", decision.reason)
                return
        ctx = ActionContext(services, user, channel, action_id, value, message_ts, send, body)
        try:
            reply = await entry.func(ctx)
        except UserError as exc:
            await send(Reply(str(exc)))
            record("rejected", str(exc))
            return
        except Exception as exc:
            log.exception("button %s failed", action_id)
            await send(Reply(button_failure(exc)))
            record("error", type(exc).__name__)
            return
        if reply is not None:
            await send(reply)
        record("ok")


    @app.action(re.compile(r".+"))
    async def on_action(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack_then_continue(services, ack, lambda acknowledge: handle(acknowledge, body, respond),
                                name="button")


def button_failure(exc: Exception) -> str:
    if isinstance(exc, ProviderError):
        return f":warning: That button could not finish: {exc}"
    return f":warning: That button failed on an internal error ({type(exc).__name__}); it has been logged."
