"""A scheduler-only process: the go-live timeline's scheduler without the HTTP server.

    python -m bot.timeline_worker

reads the bot's usual environment (CIO_DB_PATH, SLACK_*, CIO_CONFIG…) and posts milestones
from the shared database, alongside or instead of ``cio-bot serve`` (every process claims
before it posts, so any number of them can share one database). SIGTERM stops it.

Driven mode, for tests and rehearsals (``CIO_WORKER_CONTROL=stdin``): the clock is a
:class:`~bot.clock.FakeClock` that only moves when told, and the process reads commands on
stdin, one per line, answering on stdout:

- ``clock <ISO 8601>``: set the clock -> ``clock <ISO>``
- ``tick``: post what is due -> ``ticked <n>``
- ``press <action_id> <value> <user> <message_ts> <response_url>``: a button pressed in the launch
  channel, as Slack sends it (signed, through the bot's Bolt app and handlers: permission, audit,
  answer to ``response_url``) -> ``pressed <HTTP status>`` once acknowledged; what the button
  starts goes on in the background
- ``quit``

``CIO_WORKER_HOLD_AFTER_CLAIM=<milestone key>`` (driven mode only) makes the process print
``claimed <key>`` after claiming that milestone and then hold the claim without posting, so
a test can SIGKILL it between the claim and the post; ``CIO_WORKER_HOLD_AFTER_POST=<key>``
holds after Slack accepted the post and before the database records it (``posted <key>``);
``CIO_WORKER_HOLD_IN_ACTION=<key>`` holds once the milestone is posted and recorded and its
action has started, before the action finishes (``acting <key>``), also an action an operator
started with a button (``press``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.app import build_bolt_app, configure_domains
from bot.cli import setup_logging
from bot.clock import FakeClock
from bot.config import ConfigError, Settings
from bot.services import Services


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _hold(key: str, word: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
    async def hold(m: dict[str, Any]) -> None:
        if m["key"] == key:
            _say(f"{word} {key}")
            await asyncio.Event().wait()  # until the test kills the process

    return hold


async def _press(services: Services, bolt: AsyncApp, arg: str) -> int:
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.sandbox.requests import action_body, signed_headers

    action_id, value, user, message_ts, response_url = arg.split()
    secret = services.settings.slack_signing_secret
    assert secret is not None, "a press is signed as Slack signs it: SLACK_SIGNING_SECRET is needed"
    body = action_body(action_id=action_id, value=value, user_id=user,
                       channel_id=services.settings.launch_channel or "", message_ts=message_ts,
                       response_url=response_url)
    response = await bolt.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(secret.reveal(), body)))
    return response.status


async def _driven(services: Services, clock: FakeClock) -> None:
    timeline = services.timeline
    assert timeline is not None
    # each hook parks the process at one point of a milestone, for the test to kill it there
    hooks = (("CIO_WORKER_HOLD_AFTER_CLAIM", "after_claim", "claimed"),  # claimed, nothing sent
             ("CIO_WORKER_HOLD_AFTER_POST", "after_post", "posted"),  # Slack has it, the database does not
             ("CIO_WORKER_HOLD_IN_ACTION", "in_action", "acting"))  # posted and recorded, action unfinished
    for variable, attribute, word in hooks:
        if key := os.environ.get(variable):
            setattr(timeline, attribute, _hold(key, word))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    bolt: AsyncApp | None = None
    _say(f"ready {timeline.worker_id}")
    while line := (await reader.readline()).decode().strip():
        word, _, arg = line.partition(" ")
        if word == "clock":
            clock.set(datetime.fromisoformat(arg))
            _say(f"clock {clock.now().isoformat()}")
        elif word == "tick":
            _say(f"ticked {await timeline.tick()}")
        elif word == "press":
            bolt = bolt or build_bolt_app(services)
            _say(f"pressed {await _press(services, bolt, arg)}")
        elif word == "quit":
            break
        else:
            _say(f"unknown {word}")
    await services.idle(5)


async def main() -> int:
    driven = os.environ.get("CIO_WORKER_CONTROL") == "stdin"
    setup_logging(os.environ.get("CIO_LOG_LEVEL", "WARNING" if driven else "INFO"))
    settings = Settings.from_env()
    clock = FakeClock() if driven else None
    services = configure_domains(Services.build(settings, clock=clock))
    try:
        if clock is not None:
            await _driven(services, clock)
            return 0
        assert services.timeline is not None
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(services.timeline.run())
        _say(f"ready {services.timeline.worker_id}")
        await stop.wait()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        return 0
    finally:
        await services.aclose()


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
