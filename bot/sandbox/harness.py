"""Drive a real bot over HTTP the way Slack does: for tests, benches and the rehearsal.

``BotHarness.start()`` boots the sandbox fakes and the bot (real aiohttp server on an
ephemeral loopback port), then :meth:`command` and :meth:`press` send signed requests to
``/slack/events`` and return what the user would see.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import Runtime
from bot.clock import Clock
from bot.config import Settings
from bot.sandbox.requests import action_body, signed_headers, slash_body
from bot.sandbox.slack import SANDBOX_SIGNING_SECRET, Message
from bot.sandbox.world import SANDBOX_OPERATOR, Sandbox


@dataclass
class Answer:
    """What one request produced: the HTTP answer (the ack) and the response_url posts."""

    status: int
    ack: dict[str, Any] | None
    responses: list[Message] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def texts(self) -> list[str]:
        out = []
        if self.ack and self.ack.get("text"):
            out.append(self.ack["text"])
        out.extend(m.text for m in self.responses)
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def all_text(self) -> str:
        """Text plus every block's text, for assertions on rendered content."""
        parts = [self.text]
        for payload in ([self.ack] if self.ack else []) + [{"blocks": m.blocks} for m in self.responses]:
            parts.append(json.dumps(payload.get("blocks") or []))
        return "\n".join(parts)


class BotHarness:
    def __init__(self, sandbox: Sandbox, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.runtime = runtime
        self.session = session
        self.slack = sandbox.slack
        self.services = runtime.services
        self.store = runtime.services.store
        self.settings: Settings = runtime.services.settings
        self.channel = self.settings.launch_channel or "C0LAUNCH01"
        self.secret = SANDBOX_SIGNING_SECRET

    @classmethod
    async def start(
        cls,
        db_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        sandbox: Sandbox | None = None,
    ) -> BotHarness:
        own_sandbox = sandbox is None
        sandbox = sandbox or await Sandbox().start()
        try:
            merged = sandbox.overlay({"CIO_DB_PATH": str(db_path), **(env or {})})
            settings = Settings.from_env(merged)
            runtime = await Runtime.start(settings, port=0, clock=clock)
        except BaseException:
            if own_sandbox:
                await sandbox.stop()
            raise
        harness = cls(sandbox, runtime, aiohttp.ClientSession())
        harness._own_sandbox = own_sandbox
        return harness

    async def stop(self) -> None:
        await self.session.close()
        await self.runtime.stop()
        if getattr(self, "_own_sandbox", False):
            await self.sandbox.stop()

    @property
    def url(self) -> str:
        return self.runtime.url

    async def post_slack(self, body: str, headers: Mapping[str, str]) -> tuple[int, str, float]:
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/slack/events", data=body.encode(), headers=dict(headers)) as r:
            text = await r.text()
            return r.status, text, (time.perf_counter() - started) * 1000

    async def _collect(self, status: int, text: str, elapsed: float, key: str, settle: bool) -> Answer:
        if settle:
            await asyncio.sleep(0.01)
            await self.services.idle(timeout=30)
        ack = None
        if text.strip().startswith("{"):
            ack = json.loads(text)
        responses = [m for m in self.slack.responses if m.response_key == key]
        return Answer(status, ack, responses, elapsed)

    async def command(
        self,
        text: str,
        *,
        user: str = SANDBOX_OPERATOR,
        channel: str | None = None,
        settle: bool = True,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Answer:
        """Send ``/cio <text>`` as Slack would; wait for the work after the ack unless told not to."""
        key = f"cmd{time.monotonic_ns()}"
        text = text.strip().removeprefix("/cio").strip()
        body = slash_body(text, user_id=user, channel_id=channel or self.channel,
                          response_url=self.slack.response_url(key))
        headers = signed_headers(secret or self.secret, body, timestamp)
        status, resp, elapsed = await self.post_slack(body, headers)
        return await self._collect(status, resp, elapsed, key, settle)

    async def press(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str = SANDBOX_OPERATOR,
        message_ts: str | None = None,
        channel: str | None = None,
        settle: bool = True,
    ) -> Answer:
        """Press a button as Slack would send it."""
        key = f"act{time.monotonic_ns()}"
        body = action_body(action_id=action_id, value=value, user_id=user, channel_id=channel or self.channel,
                           message_ts=message_ts, response_url=self.slack.response_url(key))
        status, resp, elapsed = await self.post_slack(body, signed_headers(self.secret, body))
        return await self._collect(status, resp, elapsed, key, settle)

    def buttons(self, message: Message) -> list[dict[str, Any]]:
        """Every button of a message's blocks (accessories and actions blocks)."""
        found = []
        for block in message.blocks:
            if block.get("type") == "actions":
                found.extend(e for e in block.get("elements", []) if e.get("type") == "button")
            acc = block.get("accessory")
            if isinstance(acc, dict) and acc.get("type") == "button":
                found.append(acc)
        return found

    async def click(self, message: Message, action_id: str, *, user: str = SANDBOX_OPERATOR) -> Answer:
        """Press the button ``action_id`` found on ``message`` (with its value)."""
        for button in self.buttons(message):
            if button.get("action_id") == action_id:
                ts = message.ts if message.kind == "message" else None
                return await self.press(action_id, button.get("value", ""), user=user, message_ts=ts,
                                        channel=message.channel or self.channel)
        raise AssertionError(f"no button {action_id!r} on message {message.text!r}")
