"""What ``/cio status`` reports: connections, operators, the store, recent activity."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

from bot import blocks

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusSection:
    title: str
    lines: list[str]


#: arguments: the current launch (a row of ``launches``) or None, and the channel ID
StatusSource = Callable[[dict[str, Any] | None, str], Awaitable[StatusSection | None]]


class StatusRegistry:
    """Domains register what ``/cio status`` shows about them (flag state, next milestone…)."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, StatusSource]] = []

    def register(self, name: str, source: StatusSource) -> None:
        self.sources.append((name, source))

    async def sections(self, launch: dict[str, Any] | None, channel_id: str,
                       *, timeout: float = 5.0) -> list[StatusSection]:
        async def one(name: str, source: StatusSource) -> StatusSection | None:
            try:
                return await asyncio.wait_for(source(launch, channel_id), timeout)
            except Exception as exc:
                log.warning("status source %s failed: %s", name, exc)
                return StatusSection(name, [f":warning: could not be read right now ({exc})"])

        found = await asyncio.gather(*(one(n, s) for n, s in self.sources))
        return [s for s in found if s is not None]


@dataclass
class StatusReport:
    text: str
    blocks: list[Block]


async def launch_status(services: Services, channel_id: str) -> StatusReport:
    """The foundation's lines plus every registered domain's section."""
    base = foundation_status(services)
    launch = services.store.launches.current(services.settings.launch_channel or channel_id)
    sections = await services.status.sections(launch, channel_id)
    out = list(base.blocks[:2])
    text = base.text
    for sec in sections:
        body = f"*{sec.title}*\n" + "\n".join(sec.lines)
        out.append(blocks.section(body))
        text += "\n" + sec.title + "\n" + "\n".join(sec.lines)
    out.extend(base.blocks[2:])
    return StatusReport(text, blocks.fit(out))


def foundation_status(services: Services) -> StatusReport:
    s = services.settings
    lines = [
        f"*Launch channel:* {f'<#{s.launch_channel}>' if s.launch_channel else 'not set (CIO_LAUNCH_CHANNEL)'}",
        f"*Operators:* {', '.join(_mention(o) for o in s.operators) or 'none configured (CIO_OPERATORS)'}",
        f"*Customer.io:* {'region ' + s.customerio_region.upper() + ', Track API at ' + _host(s.customerio_track_url) if s.customerio_configured else 'not configured'}",
        f"*LaunchDarkly:* {('flag `' + (s.launchdarkly_flag or '?') + '` in `' + (s.launchdarkly_environment or '?') + '` at ' + _host(s.launchdarkly_api_url)) if s.launchdarkly_configured else 'not configured'}",
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


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).netloc or url
