"""The health gate's inputs: sources register here, the ramp reads them.

A source is an async callable returning :class:`HealthFinding` items (for example
"no open alert", "bounce rate 0.8% within 5%"). The alerts domain registers its sources;
the traffic domain adds its own soak-time finding and decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthFinding:
    name: str
    ok: bool
    detail: str


HealthSource = Callable[[int | None], Awaitable[list[HealthFinding]]]  # arg: launch id


class HealthRegistry:
    def __init__(self) -> None:
        self.sources: list[tuple[str, HealthSource]] = []

    def register(self, name: str, source: HealthSource) -> None:
        self.sources.append((name, source))

    async def findings(self, launch_id: int | None, *, timeout: float = 3.0) -> list[HealthFinding]:
        """All sources' findings; a source that fails or is slow is itself a failing finding."""
        async def one(name: str, source: HealthSource) -> list[HealthFinding]:
            try:
                return await asyncio.wait_for(source(launch_id), timeout)
            except Exception as exc:
                log.warning("health source %s failed: %s", name, exc)
                return [HealthFinding(name, False, f"could not be evaluated ({type(exc).__name__})")]

        results = await asyncio.gather(*(one(n, s) for n, s in self.sources))
        return [f for group in results for f in group]
