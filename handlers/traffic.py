"""``/cio ramp``, ``/cio rollback`` and their buttons: parse strictly, render, call the
traffic service. Operators only; every click is checked again by the dispatcher and the
service (expiry, single use)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject

from bot import blocks
from bot.blocks import shown
from bot.errors import UserError
from bot.providers.launchdarkly import format_pct
from bot.services import Services
from bot.traffic import Outcome, Proposal, TrafficService
from handlers.registry import (
    ActionContext,
    CommandContext,
    Permission,
    Reply,
    UsageError,
    action,
    command,
)

MAX_REASON = 500  # characters of a reason kept (LaunchDarkly comment, audit, announcement)
RAMP_USAGE = '/cio ramp <0-100>[%] [--force "reason"]'
_NUMBER = re.compile(r"([+-]?)(\d+)(?:[.,](\d+))?%?", re.ASCII)


def parse_percent(text: str) -> int:
    """A whole percentage 0..100, or a UsageError sentence that says the fix."""
    t = text.strip()
    if not t:
        raise UsageError("Say what share of traffic should go to Customer.io: a whole number from 0 to 100, "
                         "e.g. `/cio ramp 10`.")
    m = _NUMBER.fullmatch(t)
    if not m:
        raise UsageError(f"{shown(t)} is not a percentage: give a whole number from 0 to 100, e.g. `/cio ramp 50`.")
    sign, whole, fraction = m.groups()
    if fraction is not None and int(fraction) != 0:
        low = int(whole)
        raise UsageError(f"{shown(t)} is not a whole number: traffic moves in whole percents, so use "
                         f"`{low}` or `{low + 1}`.")
    value = int(whole) * (-1 if sign == "-" else 1)
    if value < 0:
        raise UsageError(f"{shown(t)} is below 0%: give a whole number from 0 to 100 (0 sends no traffic to "
                         "Customer.io; `/cio rollback` is the emergency stop).")
    if value > 100:
        raise UsageError(f"{shown(t)} is above 100%: give a whole number from 0 to 100.")
    return value


def parse_ramp(args: list[str]) -> tuple[int, str | None]:
    percent: int | None = None
    reason: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--force" or arg.startswith("--force="):
            value = arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in arg else 2
            if not value.strip() or value.startswith("--"):
                raise UsageError('`--force` needs the reason in quotes, e.g. `/cio ramp 50 --force "alert is a '
                                 'known false positive"`; the reason is recorded and announced.')
            reason = blocks.truncate(value.strip(), MAX_REASON)
            continue
        if arg.startswith("--"):
            raise UsageError(f"{shown(arg)} is not an option of `/cio ramp`; the only option is `--force \"reason\"`.")
        if percent is not None:
            raise UsageError(f"{shown(arg)} is one word too many: give one percentage, and put a --force reason in "
                             "quotes.")
        percent = parse_percent(arg)
        i += 1
    if percent is None:
        parse_percent("")
    assert percent is not None
    return percent, reason


def _service(services: Services) -> TrafficService:
    if services.traffic is None:
        raise UserError("Traffic control is not available in this bot.")
    return services.traffic


@command("ramp", usage=RAMP_USAGE, permission=Permission.OPERATORS, order=40,
         summary="Move Customer.io traffic to a percentage (health gate, confirmation, verified in LaunchDarkly)")
async def ramp_command(ctx: CommandContext) -> Reply:
    percent, reason = parse_ramp(ctx.args)
    proposal = await _service(ctx.services).propose_ramp(channel_id=ctx.channel_id, user_id=ctx.user_id,
                                                         percent=percent, force_reason=reason)
    return proposal_reply(proposal)


@command("rollback", usage="/cio rollback [reason]", permission=Permission.OPERATORS, order=41, free_text=True,
         summary="Emergency stop: send no traffic to Customer.io (flag off), verified, incident notice")
async def rollback_command(ctx: CommandContext) -> Reply:
    result = await _service(ctx.services).request_rollback(channel_id=ctx.channel_id, user_id=ctx.user_id,
                                                           reason=blocks.truncate(ctx.text.strip(), MAX_REASON))
    if isinstance(result, Proposal):
        return proposal_reply(result)
    return outcome_reply(result)


@action("traffic_confirm", permission=Permission.OPERATORS, description="Confirm a ramp or rollback",
        audit_value=False)
async def confirm_action(ctx: ActionContext) -> Reply:
    outcome = await _service(ctx.services).confirm(ctx.value, user_id=ctx.user_id, channel_id=ctx.channel_id)
    return outcome_reply(outcome, replace=True)


@action("traffic_cancel", permission=Permission.OPERATORS, description="Cancel a ramp or rollback request",
        audit_value=False)
async def cancel_action(ctx: ActionContext) -> Reply:
    text = await _service(ctx.services).cancel(ctx.value, user_id=ctx.user_id)
    return Reply(text, [blocks.section(text)], in_channel=True, replace_original=True)


@action("traffic_ramp_request", permission=Permission.OPERATORS,
        description="A milestone's ramp button: like /cio ramp <value> by whoever clicked")
async def ramp_request_action(ctx: ActionContext) -> Reply:
    percent = _button_percent(ctx.value)
    proposal = await _service(ctx.services).propose_ramp(channel_id=ctx.channel_id, user_id=ctx.user_id,
                                                         percent=percent, force_reason=None)
    return proposal_reply(proposal)


def _button_percent(value: str) -> int:
    try:
        return parse_percent(value)
    except UsageError as exc:
        raise UserError(f"This button carries an invalid percentage ({exc}); use `/cio ramp <percent>`.") from None


# -- rendering -----------------------------------------------------------------------------------
def proposal_reply(p: Proposal) -> Reply:
    now = p.current
    expires = blocks.user_date(p.expires_ts, datetime.fromtimestamp(p.expires_ts, UTC).strftime("%H:%M UTC"),
                               "{time}")
    if p.kind == "rollback":
        title = f":rotating_light: <@{p.requested_by}> asks to roll back Customer.io traffic: {format_pct(now.served)} → 0%"
        lines = [f"*{title}*", f"*Why:* {p.reason or 'no reason given'}", f"*How:* {p.kill_label}"]
        confirm_label, style = "Roll back now", "danger"
    else:
        title = f"<@{p.requested_by}> asks to move Customer.io traffic: {format_pct(now.served)} → {p.target_pct}%"
        lines = [f"*{title}*"]
        confirm_label, style = f"Confirm {p.target_pct}%", "primary"
    lines.append(f"*LaunchDarkly now:* {now.describe()} (version {now.version})")
    if p.kind == "ramp":
        if not p.increasing:
            lines.append("*Health gate:* not needed to decrease traffic.")
        else:
            verdict = "passes" if p.gate_ok else "*FAILS*"
            lines.append(f"*Health gate:* {verdict}")
            lines.extend(f"{':white_check_mark:' if f.ok else ':x:'} {f.name}: {f.detail}" for f in p.findings)
            if not p.findings:
                lines.append("_no health sources registered_")
        if p.forced:
            lines.append(f":warning: *Forced past the health gate*, reason: “{p.reason}” (recorded and announced)")
        elif p.reason:
            lines.append(f"*Reason:* {p.reason}")
    if p.outside:
        lines.append(":warning: *The flag was changed outside the bot* " + "; ".join(p.outside)
                     + f". Confirming overwrites that with {p.target_pct}%.")
        confirm_label = f"Overwrite with {p.target_pct}%" if p.kind == "ramp" else confirm_label
        style = "danger"
    text = title.replace("*", "") + ". Confirm or cancel."
    buttons = ActionsBlock(block_id=f"traffic:{p.token[:20]}", elements=[
        ButtonElement(text=PlainTextObject(text=confirm_label), action_id="traffic_confirm", value=p.token,
                      style=style),
        ButtonElement(text=PlainTextObject(text="Cancel"), action_id="traffic_cancel", value=p.token),
    ])
    return Reply(text, [
        blocks.section("\n".join(lines)),
        buttons,
        blocks.context(f"Any launch operator may confirm; the button works once and expires {expires}."),
    ], in_channel=True)


def outcome_reply(o: Outcome, *, replace: bool = False) -> Reply:
    icon = {"verified": ":white_check_mark:", "noop": ":information_source:"}.get(o.status, ":warning:")
    text = f"{icon} {o.text}"
    return Reply(text, [blocks.section(text)], in_channel=True, replace_original=replace)
