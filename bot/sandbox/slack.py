"""A fake of the Slack Web API and of ``response_url`` endpoints.

Answers the methods the bot uses with Slack's envelope (``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``), checks the bot token, keeps channels, messages
(with ``ts``), ephemerals and response_url posts, and lets a watcher (the console)
see every message as it lands.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from bot.sandbox.base import FakeServer

SANDBOX_BOT_TOKEN = "sandbox-bot-token"
SANDBOX_APP_TOKEN = "sandbox-app-token"
SANDBOX_SIGNING_SECRET = "sandbox-signing-secret"
SANDBOX_CHANNEL = "C0LAUNCH01"
SANDBOX_BOT_USER = "U0BOTUSER"
SANDBOX_TEAM = "T0SANDBOX"


@dataclass
class Message:
    kind: str  # message | update | ephemeral | response
    channel: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    user: str | None = None  # ephemeral recipient
    response_type: str | None = None
    replace_original: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier versions (updates)
    response_key: str | None = None  # which response_url received it
    files: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # chat.postMessage metadata {event_type, event_payload}


Watcher = Callable[[Message], None]


class FakeSlack(FakeServer):
    name = "slack"

    def __init__(self, *, token: str = SANDBOX_BOT_TOKEN) -> None:
        self.tokens = {token}
        self.channels: dict[str, dict[str, Any]] = {
            SANDBOX_CHANNEL: {"id": SANDBOX_CHANNEL, "name": "cio-launch", "is_member": True}
        }
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: list[Message] = []  # channel messages, in order, updated in place
        #: Web API method -> seconds to hold the answer back after the call took effect (an
        #: answer lost on the wire: the caller times out although Slack has the message)
        self.answer_delays: dict[str, float] = {}
        self.ephemerals: list[Message] = []
        self.responses: list[Message] = []  # posts to response_url endpoints
        self.response_url_uses: dict[str, int] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.watchers: list[Watcher] = []
        self.app_tokens = {SANDBOX_APP_TOKEN}
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.socket_connected = asyncio.Event()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        super().__init__()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/api/{method}", self._api)
        router.add_post("/response/{key}", self._response_url)
        router.add_post("/upload/{file_id}", self._upload)
        router.add_get("/socket", self._socket)

    # -- helpers for tests and the console -----------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str | None = None) -> str:
        return f"{self.url}/response/{key or next(self._ids)}"

    def watch(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)

    def channel_messages(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages if channel is None or m.channel == channel]

    def find(self, channel: str, ts: str) -> Message | None:
        for m in self.messages:
            if m.channel == channel and m.ts == ts:
                return m
        return None

    def _emit(self, message: Message) -> None:
        for watcher in list(self.watchers):
            watcher(message)

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- Web API -----------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            ctype = request.headers.get("Content-Type", "")
            if "json" in ctype:
                params.update(json.loads(body))
            else:
                params.update(dict(parse_qsl(body.decode())))
        for key in ("blocks", "attachments"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        params = await self._params(request)
        token = auth.removeprefix("Bearer ").strip() or params.get("token", "")
        if method == "apps.connections.open":
            if token not in self.app_tokens:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": self.url.replace("http", "ws", 1) + "/socket"})
        if token not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(params)
        if delay := self.answer_delays.get(method):
            await asyncio.sleep(delay)
        return web.json_response(result)

    def m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://sandbox.slack.test/",
            "team": "Sandbox",
            "user": "cio-bot",
            "team_id": SANDBOX_TEAM,
            "user_id": SANDBOX_BOT_USER,
            "bot_id": "B0SANDBOX",
            "is_enterprise_install": False,
        }

    def _channel_error(self, channel: str | None) -> dict[str, Any] | None:
        if not channel or channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not self.channels[channel].get("is_member"):
            return {"ok": False, "error": "not_in_channel"}
        return None

    def m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if err := self._channel_error(channel):
            return err
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        metadata = p.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        msg = Message(
            "message", channel, self._next_ts(), p.get("text", ""), p.get("blocks") or [],
            thread_ts=p.get("thread_ts"), metadata=metadata,
        )
        self.messages.append(msg)
        self._emit(msg)
        return {"ok": True, "channel": channel, "ts": msg.ts,
                "message": {"text": msg.text, "blocks": msg.blocks, "ts": msg.ts}}

    def m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if err := self._channel_error(channel):
            return err
        limit = int(p.get("limit") or 100)
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in reversed(self.messages) if m.channel == channel and not m.thread_ts]
        out = []
        for m in found[:limit]:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "user": SANDBOX_BOT_USER}
            if with_metadata and m.metadata:
                item["metadata"] = m.metadata
            out.append(item)
        return {"ok": True, "messages": out, "has_more": len(found) > limit}

    def m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), p.get("ts")
        msg = self.find(channel or "", ts or "")
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msg.history.append({"text": msg.text, "blocks": msg.blocks})
        msg.text = p.get("text", msg.text)
        if "blocks" in p:
            msg.blocks = p.get("blocks") or []
        update = Message("update", msg.channel, msg.ts, msg.text, msg.blocks, thread_ts=msg.thread_ts)
        self._emit(update)
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text}

    def m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if err := self._channel_error(channel):
            return err
        msg = Message("ephemeral", channel, self._next_ts(), p.get("text", ""), p.get("blocks") or [],
                      user=p.get("user"))
        self.ephemerals.append(msg)
        self._emit(msg)
        return {"ok": True, "message_ts": msg.ts}

    def m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        group = p.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": dict(self.channels[channel])}

    def m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), p.get("ts")
        if err := self._channel_error(channel):
            return err
        parent = self.find(channel or "", ts or "")
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        replies = [m for m in self.messages if m.channel == channel and m.thread_ts == ts]
        out = []
        for m in [parent, *replies][: int(p.get("limit") or 100)]:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "user": SANDBOX_BOT_USER}
            if m.thread_ts:
                item["thread_ts"] = m.thread_ts
            if with_metadata and m.metadata:
                item["metadata"] = m.metadata
            out.append(item)
        return {"ok": True, "messages": out, "has_more": False}

    def m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        members = list(self.channels[channel].get("members") or [])
        return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}

    def m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user")
        info = self.users.get(user or "", {"id": user, "name": user, "tz": "UTC"})
        return {"ok": True, "user": info}

    def m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = {"filename": p.get("filename"), "length": int(p.get("length", 0)), "data": b""}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        channel = p.get("channel_id")
        done = []
        for f in files or []:
            upload = self.uploads.get(f.get("id"))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            upload["title"] = f.get("title")
            done.append({"id": f["id"], "title": f.get("title"), "name": upload["filename"]})
        if channel:
            if err := self._channel_error(channel):
                return err
            msg = Message("message", channel, self._next_ts(), p.get("initial_comment", ""),
                          thread_ts=p.get("thread_ts"), files=done)
            self.messages.append(msg)
            self._emit(msg)
        return {"ok": True, "files": done}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404, text="unknown upload")
        body = await request.read()
        if request.content_type.startswith("multipart/"):
            # slack_sdk posts raw bytes; accept multipart too, keep the first part
            reader = await request.multipart()
            part = await reader.next()
            body = await part.read() if part is not None else b""  # type: ignore[union-attr]
        self.uploads[file_id]["data"] = body
        return web.Response(text="OK - " + str(len(body)))

    # -- Socket Mode ---------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets),
                            "connection_info": {"app_id": "A0SANDBOX"}, "debug_info": {"host": "sandbox"}})
        self.socket_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                fut = self.socket_acks.pop(data.get("envelope_id", ""), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        finally:
            self.sockets.remove(ws)
        return ws

    async def socket_send(self, kind: str, payload: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
        """Deliver an envelope (``slash_commands``, ``interactive``…) over Socket Mode; return the ack."""
        await asyncio.wait_for(self.socket_connected.wait(), timeout)
        envelope_id = f"env-{next(self._ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.socket_acks[envelope_id] = fut
        await self.sockets[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                          "accepts_response_payload": kind != "events_api"})
        return await asyncio.wait_for(fut, timeout)

    # -- response_url ----------------------------------------------------------------------
    async def _response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        uses = self.response_url_uses.get(key, 0)
        if uses >= 5:
            return web.Response(status=404, text="used_url")
        self.response_url_uses[key] = uses + 1
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        msg = Message(
            "response",
            payload.get("channel", ""),
            self._next_ts(),
            payload.get("text", ""),
            payload.get("blocks") or [],
            response_type=payload.get("response_type", "ephemeral"),
            replace_original=bool(payload.get("replace_original")),
            response_key=key,
        )
        self.responses.append(msg)
        self._emit(msg)
        return web.Response(text="ok")
