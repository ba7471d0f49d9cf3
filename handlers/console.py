"""``cio-bot console``: type ``/cio …`` in a terminal.

Lines go through the same Bolt app and handlers as Slack (signed requests, dispatched
in-process); what the bot posts lands on the sandbox Slack and is printed as text.
Buttons are numbered: type ``#2`` (or just ``2``) to press the second one. ``as U123``
switches who you are.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import Runtime
from bot.sandbox.requests import action_body, signed_headers, slash_body
from bot.sandbox.slack import FakeSlack, Message
from bot.textrender import Button, render

Out = Callable[[str], None]


@dataclass
class PressTarget:
    button: Button
    channel: str
    message_ts: str | None
    response_url: str


class Console:
    def __init__(self, runtime: Runtime, slack: FakeSlack, *, user: str, channel: str,
                 out: Out | None = None) -> None:
        self.runtime = runtime
        self.slack = slack
        self.user = user
        self.channel = channel
        self.out: Out = out or (lambda line: print(line, flush=True))
        self.buttons: list[PressTarget] = []
        self.transcript: list[str] = []
        self._current_response_url = ""
        slack.watch(self._on_message)
        secret = runtime.services.settings.slack_signing_secret
        assert secret is not None, "the console signs its requests; a signing secret is needed"
        self._secret = secret.reveal()

    # -- output ----------------------------------------------------------------------------
    def emit(self, line: str) -> None:
        self.transcript.append(line)
        self.out(line)

    def _show(self, prefix: str, text: str, blocks: list[dict] | None, *, channel: str,
              ts: str | None, response_url: str) -> None:
        lines, buttons = render(text, blocks)
        self.emit(prefix)
        for line in lines:
            self.emit("    " + line)
        for b in buttons:
            self.buttons.append(PressTarget(b, channel, ts, response_url))
            self.emit(f"    [{len(self.buttons)}] {b.label}" + (f" ({b.style})" if b.style else ""))

    def _on_message(self, m: Message) -> None:
        if m.kind == "message":
            where = f"#{m.channel}" + (" (thread)" if m.thread_ts else "")
            files = "".join(f" [file: {f.get('name')}]" for f in m.files)
            self._show(f"{where} bot:{files}", m.text, m.blocks, channel=m.channel, ts=m.ts,
                       response_url=self.slack.response_url())
        elif m.kind == "update":
            self._show(f"#{m.channel} bot (message updated):", m.text, m.blocks, channel=m.channel,
                       ts=m.ts, response_url=self.slack.response_url())
        elif m.kind == "ephemeral":
            self._show(f"(only visible to {m.user}) bot:", m.text, m.blocks, channel=m.channel,
                       ts=None, response_url=self.slack.response_url())
        elif m.kind == "response":
            label = "bot:" if m.response_type == "in_channel" else "(only visible to you) bot:"
            self._show(label, m.text, m.blocks, channel=self.channel, ts=None,
                       response_url=self._current_response_url)

    # -- input -----------------------------------------------------------------------------
    async def _dispatch(self, body: str) -> tuple[int, str]:
        request = AsyncBoltRequest(body=body, headers=signed_headers(self._secret, body))
        response = await self.runtime.bolt.async_dispatch(request)
        return response.status, response.body

    async def command(self, line: str) -> None:
        self.emit(f"> {line}   (as {self.user})")
        text = line.strip().removeprefix("/cio").strip()
        self._current_response_url = self.slack.response_url()
        body = slash_body(text, user_id=self.user, channel_id=self.channel,
                          response_url=self._current_response_url)
        status, payload = await self._dispatch(body)
        if status != 200:
            self.emit(f"    (Slack would show an error: HTTP {status})")
        elif payload:
            data = json.loads(payload)
            label = "bot:" if data.get("response_type") == "in_channel" else "(only visible to you) bot:"
            self._show(label, data.get("text", ""), data.get("blocks"), channel=self.channel, ts=None,
                       response_url=self._current_response_url)
        await self.settle()

    async def press(self, number: int) -> None:
        if not 1 <= number <= len(self.buttons):
            self.emit(f"    There is no button [{number}].")
            return
        target = self.buttons[number - 1]
        self.emit(f"> pressed [{number}] {target.button.label}   (as {self.user})")
        self._current_response_url = target.response_url
        body = action_body(action_id=target.button.action_id, value=target.button.value,
                           user_id=self.user, channel_id=target.channel, message_ts=target.message_ts,
                           response_url=target.response_url, block_id=target.button.block_id)
        status, _ = await self._dispatch(body)
        if status != 200:
            self.emit(f"    (Slack would show an error: HTTP {status})")
        await self.settle()

    async def settle(self) -> None:
        """Let the work that continues after the ack finish before the next line."""
        await asyncio.sleep(0.01)
        await self.runtime.services.idle(timeout=30)

    async def line(self, raw: str) -> bool:
        """Handle one typed line; False means quit."""
        raw = raw.strip()
        if not raw:
            return True
        if raw in ("quit", "exit", r"\q"):
            return False
        if raw.startswith("as "):
            self.user = raw[3:].strip()
            self.emit(f"    (you are now {self.user})")
            return True
        if raw.lstrip("#").isdigit():
            await self.press(int(raw.lstrip("#")))
            return True
        if not raw.startswith("/cio"):
            self.emit("    Type /cio <command>, a button number like #1, 'as U123' to change user, or quit.")
            return True
        await self.command(raw)
        return True

    async def interact(self) -> None:
        self.emit("cio-launchbot console. Type /cio help, #N to press a button, 'as U…' to switch user, quit to leave.")
        while True:
            try:
                raw = await asyncio.to_thread(_read_line)
            except EOFError:
                break
            if not await self.line(raw):
                break


def _read_line() -> str:
    if sys.stdin.isatty():
        return input("cio> ")
    raw = sys.stdin.readline()
    if raw == "":
        raise EOFError
    return raw
