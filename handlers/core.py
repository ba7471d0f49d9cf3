"""``/cio help`` and the foundation's ``/cio status``."""

from __future__ import annotations

from bot import blocks
from bot.status import launch_status
from handlers.registry import CommandContext, Permission, Reply, UsageError, command, commands


@command("help", usage="/cio help [command]", summary="What the bot can do, or how to use one command",
         quick=True, order=0)
async def help_command(ctx: CommandContext) -> Reply:
    entries = [blocks.HelpEntry(c.usage, c.summary, c.permission is Permission.OPERATORS) for c in commands()]
    if ctx.args:
        wanted = ctx.args[0].lower().removeprefix("/cio").strip() or ctx.args[0].lower()
        match = [c for c in commands() if c.name == wanted or wanted in c.aliases]
        if not match:
            raise UsageError(f"There is no /cio command called {blocks.shown(ctx.args[0])}.")
        c = match[0]
        who = "launch operators only" if c.permission is Permission.OPERATORS else "anyone"
        text = f"`{c.usage}`\n{c.summary}\nWho: {who}."
        return Reply(text, [blocks.section(text)])
    text = "cio-launchbot commands:\n" + "\n".join(f"{e.usage}: {e.summary}" for e in entries)
    return Reply(text, blocks.help_blocks(entries))


@command("status", usage="/cio status", summary="Where the launch stands and how the bot is connected",
         order=10)
async def status_command(ctx: CommandContext) -> Reply:
    if ctx.args:
        raise UsageError("`/cio status` takes no arguments.")
    report = await launch_status(ctx.services, ctx.channel_id)
    return Reply(report.text, report.blocks)


@command("audit", usage="/cio audit [count]",
         summary="Who did what: the latest commands and button presses (default 15)",
         permission=Permission.OPERATORS, order=90)
async def audit_command(ctx: CommandContext) -> Reply:
    count = 15
    if ctx.args:
        if len(ctx.args) > 1 or not ctx.args[0].isascii() or not ctx.args[0].isdigit() or not 1 <= int(ctx.args[0]) <= 100:
            raise UsageError(f"{blocks.shown(ctx.text)} is not a count: give a whole number from 1 to 100.")
        count = int(ctx.args[0])
    rows = ctx.services.store.audit.recent(count)
    report = blocks.audit_blocks(rows)
    return Reply(report[1], report[0])
