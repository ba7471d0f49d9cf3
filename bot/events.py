"""A small in-process event bus, so domains react to each other without importing each other.

Publishers await :meth:`EventBus.publish`; every subscriber runs (concurrently), and one
subscriber's failure is logged, never propagated to the publisher or the others.

Event names in use (payloads are plain dicts):

- ``traffic.changed``   {launch_id, from_pct, to_pct, actor, reason, forced}
- ``traffic.rolled_back`` {launch_id, actor, reason, channel_id}
- ``alert.fired`` / ``alert.resolved`` {launch_id, alert_id, metric, value, threshold}
  (also: severity, title, source, channel_id; ``alert.resolved`` adds resolved_by, reason)
- ``alert.acknowledged`` {launch_id, alert_id, metric, value, threshold, user_id, ...}
- ``rollback.requested`` {launch_id, reason, actor, channel_id} (alerts' auto-rollback;
  the traffic domain performs it)
- ``timeline.milestone`` {launch_id, milestone, name}
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Subscriber = Callable[[dict[str, Any]], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)

    def subscribe(self, event: str, subscriber: Subscriber) -> None:
        self._subscribers[event].append(subscriber)

    async def publish(self, event: str, payload: dict[str, Any]) -> None:
        subscribers = list(self._subscribers.get(event, ()))
        if not subscribers:
            return
        results = await asyncio.gather(*(s(dict(payload)) for s in subscribers), return_exceptions=True)
        for subscriber, result in zip(subscribers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("subscriber %s of %s failed", getattr(subscriber, "__qualname__", subscriber),
                          event, exc_info=result)
