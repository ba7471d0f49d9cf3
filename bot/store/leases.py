"""Named leases: one process at a time does a piece of work that must not run twice at once
(posting the alerts outbox), when a second process shares the database for a while."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlite_utils

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "leases"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_ts REAL NOT NULL)")


MIGRATIONS = [_v1]


class LeaseRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def acquire(self, name: str, owner: str, *, now: float, ttl: float, gone: Callable[[str], bool]) -> bool:
        """Take (or keep) the lease: free, ours, expired, or held by a process known dead."""
        with self.store.transaction():
            rows = self.store.query("SELECT owner, expires_ts FROM leases WHERE name = ?", (name,))
            if rows and rows[0]["owner"] != owner and rows[0]["expires_ts"] > now and not gone(rows[0]["owner"]):
                return False
            self.store.execute(
                "INSERT INTO leases(name, owner, expires_ts) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                "SET owner = excluded.owner, expires_ts = excluded.expires_ts", (name, owner, now + ttl))
            return True

    def release(self, name: str, owner: str) -> None:
        self.store.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
