"""``/cio check [category…] [--env staging]`` and the sign-off buttons."""

from __future__ import annotations

from bot.blocks import shown
from bot.errors import UserError
from checks.base import CATEGORIES
from handlers.registry import (
    ActionContext,
    CommandContext,
    Permission,
    Reply,
    UsageError,
    action,
    command,
)

USAGE = "/cio check [category…] [--env staging]"
ENVIRONMENTS = ("production", "staging")


def parse_check_args(args: list[str]) -> tuple[list[str], str]:
    """(categories, environment) from the words after ``/cio check``."""
    categories: list[str] = []
    environment = "production"
    words = iter(args)
    for word in words:
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name != "--env":
                raise UsageError(f"{shown(word)} is not an option of /cio check; the only option is "
                                 f"--env production|staging. Categories: {', '.join(CATEGORIES)}.")
            if not eq:
                value = next(words, "")
            if value.lower() not in ENVIRONMENTS:
                raise UsageError(f"--env takes production or staging, not {shown(value) if value else '(nothing)'}.")
            environment = value.lower()
        else:
            categories.append(word.lower())
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise UsageError(f"{', '.join(shown(c) for c in unknown[:5])} "
                         f"{'is not a check category' if len(unknown) == 1 else 'are not check categories'}; "
                         f"choose from {', '.join(CATEGORIES)} (or none for all).")
    return list(dict.fromkeys(categories)), environment


@command("check", usage=USAGE, order=20,
         summary="Go / no-go readiness audit (credentials, integration, campaigns, deliverability, "
                 "monitoring, testing, documentation, rollback), updated live in the channel")
async def check_command(ctx: CommandContext) -> Reply | None:
    categories, environment = parse_check_args(ctx.args)
    service = ctx.services.readiness
    if service is None:
        raise UserError("Readiness checks are not configured in this bot.")
    await service.run_in_channel(ctx.channel_id, environment=environment, categories=categories,
                                 actor=ctx.user_id, source="slack")
    return None


async def _signoff(ctx: ActionContext, confirm: bool) -> Reply:
    service = ctx.services.readiness
    if service is None:
        raise UserError("Readiness checks are not configured in this bot.")
    text = await service.set_signoff(ctx.value, ctx.user_id, confirm=confirm, channel_id=ctx.channel_id,
                                     message_ts=ctx.message_ts)
    return Reply(text)


@action("checks.signoff.confirm", permission=Permission.OPERATORS,
        description="Confirm a readiness sign-off item (records who and when)")
async def confirm_signoff(ctx: ActionContext) -> Reply:
    return await _signoff(ctx, True)


@action("checks.signoff.revoke", permission=Permission.OPERATORS,
        description="Revoke a confirmed readiness sign-off item")
async def revoke_signoff(ctx: ActionContext) -> Reply:
    return await _signoff(ctx, False)
