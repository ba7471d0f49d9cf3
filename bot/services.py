"""The launch's services, assembled once per process and handed to every handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.events import EventBus
from bot.health import HealthRegistry
from bot.permissions import Permissions
from bot.providers.slack import SlackGateway
from bot.status import StatusRegistry
from bot.store import Store

if TYPE_CHECKING:
    from bot.alerts import AlertsService
    from bot.readiness import ReadinessService
    from bot.review import ReviewService
    from bot.timeline import TimelineService
    from bot.traffic import TrafficService

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    slack: SlackGateway
    permissions: Permissions
    clock: Clock = field(default_factory=SystemClock)
    events: EventBus = field(default_factory=EventBus)
    health: HealthRegistry = field(default_factory=HealthRegistry)
    status: StatusRegistry = field(default_factory=StatusRegistry)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: long-running loops (scheduler tick, escalation tick, probes) started with the server
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=dict)
    inflight: int = 0  # Slack requests being handled (commands and buttons, after their ack)
    traffic: TrafficService | None = None
    alerts: AlertsService | None = None
    readiness: ReadinessService | None = None
    timeline: TimelineService | None = None
    review: ReviewService | None = None

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> Services:
        if settings.slack_bot_token is None:
            raise ValueError("Services need a Slack bot token (real or sandbox)")
        slack = SlackGateway(settings.slack_bot_token.reveal(), settings.slack_api_url)
        return cls(
            settings=settings,
            store=store or Store(settings.db_path),
            slack=slack,
            permissions=Permissions(settings.operators, slack),
            clock=clock or SystemClock(),
        )

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run work in the background, keep a reference, log (never lose) its failure."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", name, exc_info=t.exception())

        task.add_done_callback(_done)
        return task

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Count a request as in flight until its handler returns."""
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is in flight and no background task runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.inflight or any(not t.done() for t in self.tasks):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for background work to finish (graceful shutdown), cancel what is left."""
        await self.idle(timeout)
        pending = {t for t in self.tasks if not t.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()

    async def aclose(self) -> None:
        await self.drain()
        with contextlib.suppress(Exception):
            session = getattr(self.slack.client, "session", None)
            if session is not None:
                await session.close()
        self.store.close()
