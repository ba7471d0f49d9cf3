"""What ``/cio status`` reports: connections, operators, the store, recent activity."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import Block

from bot import blocks
from bot.services import Services


@dataclass
class StatusReport:
    text: str
    blocks: list[Block]


def foundation_status(services: Services) -> StatusReport:
    s = services.settings
    lines = [
        f"*Launch channel:* {f'<#{s.launch_channel}>' if s.launch_channel else 'not set (CIO_LAUNCH_CHANNEL)'}",
        f"*Operators:* {', '.join(_mention(o) for o in s.operators) or 'none configured (CIO_OPERATORS)'}",
        f"*Customer.io:* {'configured, region ' + s.customerio_region.upper() if s.customerio_configured else 'sandbox (no production credentials)'}",
        f"*LaunchDarkly:* {('flag `' + (s.launchdarkly_flag or '?') + '` in `' + (s.launchdarkly_environment or '?') + '`') if s.launchdarkly_configured else 'sandbox (no API token)'}",
        f"*Time zone:* {s.timezone_name}",
    ]
    recent = services.store.audit.recent(5)
    activity = "\n".join(
        f"• {r['at'][:19].replace('T', ' ')} UTC <@{r['user_id']}> `{r['action']}` → {r['outcome']}"
        for r in recent if r["user_id"]
    )
    text = "Launch status\n" + "\n".join(lines)
    out: list[Block] = [blocks.header("Launch status"), blocks.section("\n".join(lines))]
    if activity:
        out.append(blocks.section("*Recent activity*\n" + activity))
    return StatusReport(text, out)


def _mention(operator: str) -> str:
    return f"<!subteam^{operator}>" if operator.startswith("S") else f"<@{operator}>"
