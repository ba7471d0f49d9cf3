"""Audit trail: every command and button press, who, where, what, outcome, when."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlite_utils

from bot.secrets import redact

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "audit"


def _v1(db: sqlite_utils.Database) -> None:
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "user_id": str,
            "channel_id": str,
            "kind": str,  # command | button | system
            "action": str,
            "outcome": str,  # ok | refused | usage | error | …
            "detail": str,
        },
        pk="id",
    )
    db["audit"].create_index(["at"])
    db["audit"].create_index(["user_id", "at"])


MIGRATIONS = [_v1]


class AuditRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        *,
        user_id: str | None,
        channel_id: str | None,
        kind: str,
        action: str,
        outcome: str,
        detail: str | dict[str, Any] = "",
        at: str | None = None,
    ) -> int:
        from bot.store import utcnow

        if not isinstance(detail, str):
            detail = json.dumps(detail, default=str, sort_keys=True)
        cur = self.store.execute(
            "INSERT INTO audit(at, user_id, channel_id, kind, action, outcome, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at or utcnow(), user_id or "", channel_id or "", kind, redact(action)[:500], outcome, redact(detail)[:4000]),
        )
        return int(cur.lastrowid or 0)

    def recent(self, limit: int = 50, *, user_id: str | None = None) -> list[dict[str, Any]]:
        if user_id:
            return self.store.query(
                "SELECT * FROM audit WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit)
            )
        return self.store.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    def count(self) -> int:
        return int(self.store.query("SELECT count(*) AS n FROM audit")[0]["n"])
