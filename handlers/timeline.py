"""``/cio golive`` (plan, re-plan, cancel, resume), ``/cio timeline``, and the buttons of late
milestones. Parsing and rendering only; the timeline service decides."""

from __future__ import annotations

from bot import blocks
from bot.services import Services
from bot.timeline import TimelineService
from handlers.registry import (
    ActionContext,
    CommandContext,
    Permission,
    Reply,
    UsageError,
    action,
    command,
)


def _service(services: Services) -> TimelineService:
    if services.timeline is None:
        raise RuntimeError("the timeline domain is not configured")
    return services.timeline


@command("golive", usage="/cio golive <when> [time zone] | cancel | resume",
         summary="Plan T-0 and the go-live milestones (e.g. `2026-12-10 15:00 Europe/Berlin`, ISO 8601 or "
                 "`in 26h`), move it, cancel it, or resume after a rollback",
         permission=Permission.OPERATORS, order=30)
async def golive_command(ctx: CommandContext) -> Reply:
    service = _service(ctx.services)
    word = ctx.args[0].lower() if ctx.args else ""
    if not ctx.args:
        raise UsageError("Say when T-0 is, e.g. `/cio golive 2026-12-10 15:00 Europe/Berlin` or `/cio golive in 26h`.")
    if word in ("cancel", "resume"):
        if len(ctx.args) > 1:
            raise UsageError(f"`/cio golive {word}` takes nothing after it.")
        if word == "cancel":
            outcome = await service.cancel(channel_id=ctx.channel_id, user_id=ctx.user_id)
        else:
            outcome = await service.resume(channel_id=ctx.channel_id, user_id=ctx.user_id)
    else:
        outcome = await service.plan(channel_id=ctx.channel_id, user_id=ctx.user_id, text=ctx.text)
    return Reply(outcome.text, [blocks.section(outcome.text)])


@command("timeline", usage="/cio timeline",
         summary="The go-live milestones: planned, done, late, waiting, skipped, cancelled, and the history",
         quick=True, order=31)
async def timeline_command(ctx: CommandContext) -> Reply:
    if ctx.args:
        raise UsageError("`/cio timeline` takes no arguments.")
    text, out = _service(ctx.services).view(ctx.channel_id)
    return Reply(text, out)


@action("timeline_run_late", permission=Permission.OPERATORS,
        description="Run a milestone's action that came due more than the grace period late")
async def run_late_action(ctx: ActionContext) -> Reply:
    outcome = await _service(ctx.services).run_late(value=ctx.value, user_id=ctx.user_id)
    return Reply(outcome.text)


@action("timeline_skip", permission=Permission.OPERATORS,
        description="Skip a late milestone's action")
async def skip_action(ctx: ActionContext) -> Reply:
    outcome = await _service(ctx.services).skip_late(value=ctx.value, user_id=ctx.user_id)
    return Reply(outcome.text)
