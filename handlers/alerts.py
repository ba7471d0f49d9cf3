"""``/cio alerts`` and the alert buttons (Acknowledge, Escalate now, Resolve).

Anyone in the launch channel may press the buttons (on-call people need not be
operators); the alerts service checks who pressed, server side, and every press is
audited by the button dispatcher.
"""

from __future__ import annotations

from typing import Any

from bot import blocks
from bot.alerts import ACK, ESCALATE, RESOLVE, AlertsService, fmt_value
from bot.errors import UserError
from bot.services import Services
from handlers.registry import ActionContext, CommandContext, Reply, UsageError, action, command


def _service(services: Services) -> AlertsService:
    if services.alerts is None:
        raise UserError("Alerts are not configured on this bot.")
    return services.alerts


def _alert_id(value: str) -> int:
    if not value.isdigit():
        raise UserError("That button does not name an alert; run `/cio alerts` to see open alerts.")
    return int(value)


@command("alerts", usage="/cio alerts", summary="Open and recent alerts, and where each metric stands now",
         quick=True, order=40)
async def alerts_command(ctx: CommandContext) -> Reply:
    if ctx.args:
        raise UsageError("`/cio alerts` takes no arguments.")
    svc = _service(ctx.services)
    now = svc.now()
    open_rows = svc.repo.open_alerts()
    recent = svc.repo.recent_resolved(now - 86400, 10)
    readings = [svc.reading_line(r) for r in svc.readings(now).values()]

    def line(row: dict[str, Any]) -> str:
        state = {"open": ":rotating_light: open", "acknowledged": f":eyes: acknowledged by <@{row['acknowledged_by']}>",
                 "resolved": ":white_check_mark: resolved"}[row["status"]]
        since = blocks.user_date(row["opened_at"], "opened")
        return (f"• *#{row['id']} {row['title']}* — {fmt_value(row['value'], row['unit'])}, {state}, "
                f"opened {since}, {svc._escalation_line(row)}")

    out = [blocks.header("Alerts")]
    if open_rows:
        out.append(blocks.section(f"*Open ({len(open_rows)})*\n" + "\n".join(line(r) for r in open_rows[:15])))
    else:
        out.append(blocks.section("*Open:* none."))
    out.append(blocks.section("*Now*\n" + "\n".join(readings)))
    if recent:
        out.append(blocks.section("*Resolved in the last 24 h*\n" + "\n".join(
            f"• #{r['id']} {r['title']} — {r['resolution'] or 'resolved'}" for r in recent)))
    out.append(blocks.context(f"Buttons on each alert in <#{svc.channel(ctx.channel_id)}>: Acknowledge, "
                              "Escalate now, Resolve."))
    text = (f"Alerts: {len(open_rows)} open. " + " ".join(r.lstrip("• ") for r in readings))
    return Reply(text, blocks.fit(out))


@action(ACK, description="Acknowledge an alert: stops the escalation")
async def acknowledge(ctx: ActionContext) -> Reply:
    svc = _service(ctx.services)
    return Reply(await svc.acknowledge(_alert_id(ctx.value), ctx.user_id, ctx.channel_id))


@action(ESCALATE, description="Escalate an alert to the next tier now")
async def escalate(ctx: ActionContext) -> Reply:
    svc = _service(ctx.services)
    return Reply(await svc.escalate_now(_alert_id(ctx.value), ctx.user_id, ctx.channel_id))


@action(RESOLVE, description="Resolve an alert by hand")
async def resolve(ctx: ActionContext) -> Reply:
    svc = _service(ctx.services)
    return Reply(await svc.resolve(_alert_id(ctx.value), ctx.user_id, ctx.channel_id))
