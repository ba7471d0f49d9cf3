"""monitoring: alert thresholds sane, the launch channel reachable, an escalation path."""

from __future__ import annotations

from checks.base import Severity
from checks.context import CheckContext, Providers
from checks.engine import Outcome, check, failed, passed, skipped, warned

#: (label, attribute, unit, sane upper bound, why)
SANE = (
    ("API error rate", "api_error_rate", "ratio", 0.05, "above 5% the integration is already failing"),
    ("bounce rate", "bounce_rate", "ratio", 0.10, "above 10% mailbox providers block the domain"),
    ("complaint rate", "complaint_rate", "ratio", 0.003, "Gmail and Yahoo require spam complaints below 0.3%"),
    ("p99 latency", "p99_latency_seconds", "seconds", 30.0, "above 30 s the Track API calls time out first"),
)


def _show(value: float, unit: str) -> str:
    return f"{value * 100:g}%" if unit == "ratio" else f"{value:g} s"


@check("monitoring.thresholds", "Alert thresholds configured and sane")
async def thresholds(ctx: CheckContext, p: Providers) -> Outcome:
    t = ctx.thresholds
    if t.problems:
        return failed(f"{len(t.problems)} threshold(s) cannot be read: {'; '.join(t.problems[:4])}",
                      "Fix [alerts.thresholds] in CIO_CONFIG: rates like \"5%\" or 0.05, latency like 5 or \"500ms\".")
    bad = []
    shown = []
    for label, attr, unit, ceiling, why in SANE:
        value = float(getattr(t, attr))
        shown.append(f"{label} > {_show(value, unit)}")
        if value <= 0:
            bad.append(f"{label} {_show(value, unit)} never fires")
        elif value > ceiling:
            bad.append(f"{label} {_show(value, unit)} is too lax ({why})")
    if bad:
        return failed(f"{len(bad)} threshold(s) are not sane: {'; '.join(bad)}",
                      "Set [alerts.thresholds] in CIO_CONFIG closer to the defaults: API errors 1%, "
                      "bounces 5%, complaints 0.1%, p99 latency 5 s.")
    origin = "configured" if t.configured else "defaults"
    return passed(f"Alerts at {', '.join(shown)} ({origin})")


@check("monitoring.channel", "The launch channel exists and the bot is in it")
async def channel(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.launch_channel:
        return failed("CIO_LAUNCH_CHANNEL is not set, so alerts have nowhere to go",
                      "Set CIO_LAUNCH_CHANNEL to the launch channel's ID (C…).")
    if p.slack is None:
        return skipped("Slack is not configured here, so the channel cannot be checked")
    info = await p.slack.channel(ctx.launch_channel)
    if not info.exists:
        return failed(f"Channel {ctx.launch_channel} does not exist or the bot cannot see it",
                      "Check CIO_LAUNCH_CHANNEL (the channel ID from the channel's details), and invite "
                      "the bot if the channel is private.")
    if not info.is_member:
        return failed(f"The bot is not a member of <#{ctx.launch_channel}>",
                      f"Invite the bot: type /invite @cio-launchbot in <#{ctx.launch_channel}>.")
    return passed(f"<#{ctx.launch_channel}> exists and the bot is in it")


@check("monitoring.escalation", "An escalation path is configured")
async def escalation(ctx: CheckContext, p: Providers) -> Outcome:
    tiers = [t for t in ctx.escalation if t.mentions]
    if tiers:
        path = " → ".join(f"{t.name} (+{t.delay_minutes:g} min)" for t in tiers)
        return passed(f"{len(tiers)} escalation tier(s): {path}")
    if ctx.escalation:
        return failed("The escalation tiers mention nobody",
                      "Give each [[alerts.escalation]] tier in CIO_CONFIG the people or groups to page "
                      "(mentions = [\"U…\", \"S…\"]).")
    if ctx.operators:
        return warned("No escalation tiers are configured; unacknowledged alerts only reach the operators",
                      "Add [[alerts.escalation]] tiers to CIO_CONFIG (name, delay_minutes, mentions) so an "
                      "unanswered alert climbs to on-call and then to management.")
    return failed("No escalation path: no [[alerts.escalation]] tiers and no CIO_OPERATORS",
                  "Add [[alerts.escalation]] tiers to CIO_CONFIG (name, delay_minutes, mentions).")


@check("monitoring.operators", "Launch operators are named", severity=Severity.ADVISORY)
async def operators(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.operators:
        return warned("No launch operators: nobody can ramp traffic, roll back or confirm sign-offs",
                      "Set CIO_OPERATORS to the Slack user IDs (U…) or user group (S…) running the launch.")
    return passed(f"{len(ctx.operators)} operator entr{'y' if len(ctx.operators) == 1 else 'ies'} in CIO_OPERATORS")
