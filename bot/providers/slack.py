"""Posting to Slack: the one place the bot calls the Slack Web API itself.

Wraps slack_sdk's ``AsyncWebClient`` (shared with the Bolt app) with its own
rate-limit and server-error retry handlers, and turns Slack errors into
:class:`~bot.providers.http.ProviderError` sentences.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.providers.http import ProviderError

log = logging.getLogger(__name__)

Blocks = Sequence[Block | dict[str, Any]] | None


def _blocks(blocks: Blocks) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [b.to_dict() if isinstance(b, Block) else b for b in blocks]


class SlackGateway:
    def __init__(self, token: str, base_url: str, *, timeout: int = 10) -> None:
        self.client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout)
        self.client.retry_handlers.extend(
            [
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=1),
            ]
        )
        # for posts that must not be doubled: a 5xx or a dropped connection may come after Slack
        # accepted the message, so only 429 (not processed) is retried here; the caller retries
        # after checking whether the post landed (see bot.timeline)
        self.strict_client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout)
        self.strict_client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self._group_cache: dict[str, tuple[float, frozenset[str]]] = {}
        self.group_cache_ttl = 60.0

    async def _call(self, method: str, coro: Any) -> dict[str, Any]:
        try:
            response = await coro
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error") if exc.response else "unknown_error"
            raise ProviderError("Slack", "POST", method, f"Slack answered {error}",
                                status=exc.response.status_code if exc.response else None) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise ProviderError("Slack", "POST", method, f"could not reach Slack ({type(exc).__name__})") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post_message(
        self, channel: str, text: str, blocks: Blocks = None, *, thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None, retry_unsafe: bool = True,
    ) -> str:
        """Post; ``metadata`` ({event_type, event_payload}) lets the bot find the message again.
        ``retry_unsafe=False`` retries only rate limits, never an error that may follow a post."""
        client = self.client if retry_unsafe else self.strict_client
        data = await self._call(
            "chat.postMessage",
            client.chat_postMessage(
                channel=channel, text=text, blocks=_blocks(blocks), thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False, metadata=metadata,
            ),
        )
        return str(data.get("ts"))

    async def recent_messages(self, channel: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """The channel's latest messages, newest first, with their metadata."""
        data = await self._call(
            "conversations.history",
            self.client.conversations_history(channel=channel, limit=limit, include_all_metadata=True),
        )
        return list(data.get("messages") or [])

    async def update_message(self, channel: str, ts: str, text: str, blocks: Blocks = None) -> None:
        await self._call(
            "chat.update", self.client.chat_update(channel=channel, ts=ts, text=text, blocks=_blocks(blocks))
        )

    async def post_ephemeral(self, channel: str, user: str, text: str, blocks: Blocks = None) -> None:
        await self._call(
            "chat.postEphemeral",
            self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=_blocks(blocks)),
        )

    async def channel_info(self, channel: str) -> dict[str, Any]:
        data = await self._call("conversations.info", self.client.conversations_info(channel=channel))
        return dict(data.get("channel") or {})

    async def upload_file(
        self, channel: str, filename: str, content: bytes, *, title: str, comment: str = "",
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            "files.uploadV2",
            self.client.files_upload_v2(
                channel=channel, filename=filename, content=content, title=title,
                initial_comment=comment or None, thread_ts=thread_ts,
            ),
        )

    async def thread_replies(self, channel: str, ts: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """A thread's parent and replies, oldest first, with their metadata (one page)."""
        data = await self._call(
            "conversations.replies",
            self.client.conversations_replies(channel=channel, ts=ts, limit=limit, include_all_metadata=True),
        )
        return list(data.get("messages") or [])

    async def channel_members(self, channel: str) -> frozenset[str]:
        """Every member of a channel (``conversations.members``, all pages)."""
        members: set[str] = set()
        cursor: str | None = None
        for _ in range(100):  # 100 pages of 1000: a bound, not a real limit
            data = await self._call(
                "conversations.members",
                self.client.conversations_members(channel=channel, limit=1000, cursor=cursor),
            )
            members.update(data.get("members") or [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return frozenset(members)

    async def usergroup_members(self, group_id: str) -> frozenset[str]:
        """Members of a user group, cached for ``group_cache_ttl`` seconds."""
        now = time.monotonic()
        cached = self._group_cache.get(group_id)
        if cached and now - cached[0] < self.group_cache_ttl:
            return cached[1]
        data = await self._call(
            "usergroups.users.list", self.client.usergroups_users_list(usergroup=group_id)
        )
        members = frozenset(data.get("users") or [])
        self._group_cache[group_id] = (now, members)
        return members
