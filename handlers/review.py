"""``/cio review``: the post-launch review (report and chart) posted in the channel. Anyone."""

from __future__ import annotations

from bot.errors import UserError
from handlers.registry import CommandContext, Reply, UsageError, command


@command("review", usage="/cio review", order=70,
         summary="The launch review: timeline, traffic changes, alerts, checks, delivery per step, with a chart")
async def review_command(ctx: CommandContext) -> Reply:
    if ctx.args:
        raise UsageError("`/cio review` takes no arguments; it reviews this channel's latest launch.")
    if ctx.services.review is None:
        raise UserError("The launch review is not available in this bot.")
    report = await ctx.services.review.post(ctx.channel_id)
    text = f"Posted the review of launch #{report.launch_id} and its chart in this channel."
    return Reply(text)
