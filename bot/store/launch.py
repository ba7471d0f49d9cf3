"""Launches: one active launch per launch channel. Other domains hang their rows off it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlite_utils

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "launch"

ACTIVE_STATES = ("planned", "active", "paused")


def _v1(db: sqlite_utils.Database) -> None:
    db["launches"].create(
        {
            "id": int,
            "channel_id": str,
            "status": str,  # planned | active | paused | cancelled | done
            "created_at": str,
            "created_by": str,
            "t0": str,  # ISO UTC instant of go-live, when planned
            "timezone": str,
            "paused_reason": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"channel_id", "status", "created_at"},
    )
    db["launches"].create_index(["channel_id", "status"])


MIGRATIONS = [_v1]


class LaunchRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, launch_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM launches WHERE id = ?", (launch_id,))
        return rows[0] if rows else None

    def current(self, channel_id: str) -> dict[str, Any] | None:
        """The channel's launch that is not cancelled or done, if any."""
        rows = self.store.query(
            "SELECT * FROM launches WHERE channel_id = ? AND status IN (?, ?, ?) ORDER BY id DESC LIMIT 1",
            (channel_id, *ACTIVE_STATES),
        )
        return rows[0] if rows else None

    def ensure(self, channel_id: str, user_id: str, *, timezone: str = "UTC") -> dict[str, Any]:
        """The current launch, created (status ``active``) if there is none."""
        from bot.store import utcnow

        with self.store.transaction():
            existing = self.current(channel_id)
            if existing:
                return existing
            now = utcnow()
            cur = self.store.execute(
                "INSERT INTO launches(channel_id, status, created_at, created_by, timezone, updated_at) "
                "VALUES (?, 'active', ?, ?, ?, ?)",
                (channel_id, now, user_id, timezone, now),
            )
            launch = self.get(int(cur.lastrowid or 0))
            assert launch is not None
            return launch

    def set_status(self, launch_id: int, status: str, *, reason: str | None = None) -> None:
        from bot.store import utcnow

        self.store.execute(
            "UPDATE launches SET status = ?, paused_reason = ?, updated_at = ? WHERE id = ?",
            (status, reason, utcnow(), launch_id),
        )
