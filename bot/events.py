"""A small in-process event bus, so domains react to each other without importing each other.

Publishers await :meth:`EventBus.publish`; every subscriber runs (concurrently), and one
subscriber's failure is logged, never propagated to the publisher or the others.

Event names in use (payloads are plain dicts):

- ``traffic.changed``   {launch_id, from_pct, to_pct, actor, reason, forced}
- ``traffic.rolled_back`` {launch_id, actor, reason, channel_id} (the go-live timeline pauses)
- ``alert.fired`` / ``alert.resolved`` {launch_id, alert_id, metric, value, threshold}
  (also: severity, title, source, channel_id; ``alert.resolved`` adds resolved_by, reason)
- ``alert.acknowledged`` {launch_id, alert_id, metric, value, threshold, user_id, ...}
- ``rollback.requested`` {launch_id, reason, actor, channel_id} (alerts' auto-rollback;
  the traffic domain performs it)
- ``checks.completed`` {run_id, environment, verdict, counts, source, channel_id, launch_id}
- ``timeline.milestone`` {launch_id, milestone, name, label, channel_id, thread_ts, late_seconds}
  after a milestone's reminder is posted (``milestone`` is its key, e.g. ``t-24h``)
- ``timeline.action``    {launch_id, milestone, action, channel_id, thread_ts} a milestone's job
  for another domain, to run and answer in the thread of ``thread_ts``: ``readiness_check:staging``
  (T-24h: all checks against staging) and ``smoke_test`` (T-12h: the testing category against
  production) for the readiness domain, which posts its progressive report there, and
  ``review`` (T+24h) for the review;
  actions set in ``[[timeline.milestones]]`` of CIO_CONFIG are published the same way. A late
  action (beyond ``[timeline] grace_minutes``) is published only after an operator confirms it.
  A subscriber returns when its job is finished (the timeline publishes from a background task
  and records the action as done only then; one still running after ``[timeline]
  action_lease_seconds`` in a process that died is offered to an operator to run again).
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
