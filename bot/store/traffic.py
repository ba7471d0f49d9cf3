"""Traffic changes: history, pending confirmations, and one in-flight lock per launch.

- ``traffic_changes``: every ramp/rollback attempt with before/after state, who asked,
  who confirmed, why, LaunchDarkly versions, verification figures, durations, outcome.
  Written ``started`` before the flag is touched and finished after verification.
- ``traffic_confirmations``: a button's server-side state. Single use (consumed by an
  atomic conditional UPDATE), with an expiry.
- ``traffic_locks``: at most one change in flight per launch. A lock carries the boot id
  of the process that took it; a restart releases locks of earlier boots and marks their
  changes ``interrupted`` (the outcome is then read from LaunchDarkly, never assumed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlite_utils

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "traffic"


def _v1(db: sqlite_utils.Database) -> None:
    db["traffic_changes"].create(
        {
            "id": int,
            "launch_id": int,
            "kind": str,  # ramp | rollback
            "status": str,  # started | verified | unverified | failed | unknown | refused | interrupted
            "requested_by": str,
            "confirmed_by": str,
            "reason": str,
            "forced": int,
            "trigger": str,  # command | button | auto
            "from_pct": float,
            "to_pct": float,
            "before_json": str,  # {on, weights, version, flag_version}
            "after_json": str,
            "ld_version_before": int,
            "ld_version_after": int,
            "verification_json": str,
            "durations_json": str,
            "ld_calls": int,
            "error": str,
            "channel_id": str,
            "requested_at": str,
            "started_at": str,
            "finished_at": str,
            "finished_ts": float,
        },
        pk="id",
        not_null={"launch_id", "kind", "status", "started_at"},
    )
    db["traffic_changes"].create_index(["launch_id", "id"])
    db["traffic_confirmations"].create(
        {
            "token": str,
            "launch_id": int,
            "kind": str,  # ramp | rollback
            "target_pct": int,
            "requested_by": str,
            "reason": str,
            "forced": int,
            "channel_id": str,
            "observed_version": int,
            "observed_json": str,
            "created_at": str,
            "expires_ts": float,
            "used_at": str,
            "used_by": str,
            "outcome": str,  # confirmed | cancelled
        },
        pk="token",
        not_null={"launch_id", "kind", "expires_ts"},
    )
    db["traffic_locks"].create(
        {
            "launch_id": int,
            "holder": str,
            "what": str,
            "change_id": int,
            "boot_id": str,
            "acquired_at": str,
            "acquired_ts": float,
            "expires_ts": float,
        },
        pk="launch_id",
    )


MIGRATIONS = [_v1]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


class TrafficRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- confirmations ------------------------------------------------------------------------
    def create_confirmation(self, *, token: str, launch_id: int, kind: str, target_pct: int | None,
                            requested_by: str, reason: str, forced: bool, channel_id: str,
                            observed_version: int | None, observed: dict[str, Any],
                            created_at: str, expires_ts: float) -> None:
        self.store.execute(
            "INSERT INTO traffic_confirmations(token, launch_id, kind, target_pct, requested_by, reason, "
            "forced, channel_id, observed_version, observed_json, created_at, expires_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (token, launch_id, kind, target_pct, requested_by, reason, int(forced), channel_id,
             observed_version, _dumps(observed), created_at, expires_ts),
        )

    def confirmation(self, token: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM traffic_confirmations WHERE token = ?", (token,))
        return rows[0] if rows else None

    def use_confirmation(self, token: str, *, user_id: str, at: str, outcome: str) -> bool:
        """Mark used; True only for the one caller that got it first (single use)."""
        cur = self.store.execute(
            "UPDATE traffic_confirmations SET used_at = ?, used_by = ?, outcome = ? "
            "WHERE token = ? AND used_at IS NULL",
            (at, user_id, outcome, token),
        )
        return cur.rowcount == 1

    # -- locks --------------------------------------------------------------------------------
    def acquire_lock(self, launch_id: int, *, holder: str, what: str, boot_id: str, now_ts: float,
                     at: str, ttl: float) -> dict[str, Any] | None:
        """Take the launch's lock. None when taken; else the row of whoever holds it."""
        with self.store.transaction():
            rows = self.store.query("SELECT * FROM traffic_locks WHERE launch_id = ?", (launch_id,))
            # an expired lock with a change in flight stays until the sweep has marked the change
            # interrupted and reported it (TrafficService.sweep_stale_locks), so none goes unsaid
            if rows and (rows[0]["expires_ts"] > now_ts or rows[0]["change_id"]):
                return rows[0]
            self.store.execute(
                "INSERT INTO traffic_locks(launch_id, holder, what, change_id, boot_id, acquired_at, "
                "acquired_ts, expires_ts) VALUES (?, ?, ?, NULL, ?, ?, ?, ?) "
                "ON CONFLICT(launch_id) DO UPDATE SET holder = excluded.holder, what = excluded.what, "
                "change_id = NULL, boot_id = excluded.boot_id, acquired_at = excluded.acquired_at, "
                "acquired_ts = excluded.acquired_ts, expires_ts = excluded.expires_ts",
                (launch_id, holder, what, boot_id, at, now_ts, now_ts + ttl),
            )
            return None

    def lock(self, launch_id: int, now_ts: float) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT * FROM traffic_locks WHERE launch_id = ? AND expires_ts > ?", (launch_id, now_ts)
        )
        return rows[0] if rows else None

    def attach_lock(self, launch_id: int, change_id: int, boot_id: str) -> None:
        self.store.execute(
            "UPDATE traffic_locks SET change_id = ? WHERE launch_id = ? AND boot_id = ?",
            (change_id, launch_id, boot_id),
        )

    def release_lock(self, launch_id: int, boot_id: str, holder: str) -> None:
        self.store.execute(
            "DELETE FROM traffic_locks WHERE launch_id = ? AND boot_id = ? AND holder = ?",
            (launch_id, boot_id, holder),
        )

    def renew_lock(self, launch_id: int, boot_id: str, expires_ts: float) -> bool:
        """The holder is alive: push its lock's expiry on. False when the lock is no longer its own."""
        cur = self.store.execute(
            "UPDATE traffic_locks SET expires_ts = ? WHERE launch_id = ? AND boot_id = ?",
            (expires_ts, launch_id, boot_id),
        )
        return cur.rowcount == 1

    def release_stale(self, boot_id: str, at: str, now_ts: float,
                      is_dead: Callable[[str], bool]) -> list[dict[str, Any]]:
        """Locks whose process is gone: another boot's lock that has not been renewed in time
        (expired) or whose process is known to be dead. Release them and mark their changes
        interrupted; the lock of a live process (another replica mid-change) is left alone.
        Returns the locks released (each once: a second sweeper finds nothing)."""
        with self.store.transaction():
            stale = [lock for lock in self.store.query("SELECT * FROM traffic_locks WHERE boot_id != ?", (boot_id,))
                     if lock["expires_ts"] <= now_ts or is_dead(lock["boot_id"])]
            for lock in stale:
                if lock["change_id"]:
                    self.store.execute(
                        "UPDATE traffic_changes SET status = 'interrupted', finished_at = ?, "
                        "error = 'the bot stopped before this change was verified' "
                        "WHERE id = ? AND status = 'started'",
                        (at, lock["change_id"]),
                    )
                self.store.execute("DELETE FROM traffic_locks WHERE launch_id = ? AND boot_id = ?",
                                   (lock["launch_id"], lock["boot_id"]))
        return stale

    # -- changes ------------------------------------------------------------------------------
    def start_change(self, *, launch_id: int, kind: str, requested_by: str, confirmed_by: str,
                     reason: str, forced: bool, trigger: str, from_pct: float | None,
                     to_pct: float | None, before: dict[str, Any] | None, channel_id: str,
                     requested_at: str | None, started_at: str) -> int:
        cur = self.store.execute(
            "INSERT INTO traffic_changes(launch_id, kind, status, requested_by, confirmed_by, reason, "
            "forced, trigger, from_pct, to_pct, before_json, ld_version_before, channel_id, "
            "requested_at, started_at) VALUES (?, ?, 'started', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (launch_id, kind, requested_by, confirmed_by, reason, int(forced), trigger, from_pct, to_pct,
             _dumps(before) if before else None, (before or {}).get("version"), channel_id,
             requested_at, started_at),
        )
        return int(cur.lastrowid or 0)

    def update_change(self, change_id: int, **fields: Any) -> None:
        allowed = {"status", "from_pct", "to_pct", "before", "after", "verification", "durations",
                   "ld_calls", "error", "finished_at", "finished_ts"}
        cols: list[str] = []
        values: list[Any] = []
        for key, value in fields.items():
            if key not in allowed:
                raise ValueError(f"unknown field {key}")
            if key in ("before", "after", "verification", "durations"):
                key = f"{key}_json"
                value = _dumps(value) if value is not None else None
            cols.append(f"{key} = ?")
            values.append(value)
        if fields.get("before"):
            cols.append("ld_version_before = ?")
            values.append(fields["before"].get("version"))
        if fields.get("after"):
            cols.append("ld_version_after = ?")
            values.append(fields["after"].get("version"))
        values.append(change_id)
        self.store.execute(f"UPDATE traffic_changes SET {', '.join(cols)} WHERE id = ?", values)

    def change(self, change_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM traffic_changes WHERE id = ?", (change_id,))
        return _decode(rows[0]) if rows else None

    def history(self, launch_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM traffic_changes WHERE launch_id = ? ORDER BY id DESC LIMIT ?", (launch_id, limit)
        )
        return [_decode(r) for r in rows]

    def last_verified(self, launch_id: int) -> dict[str, Any] | None:
        """The latest change whose resulting state the bot verified (the baseline for
        outside-change detection and soak time)."""
        rows = self.store.query(
            "SELECT * FROM traffic_changes WHERE launch_id = ? AND status = 'verified' "
            "ORDER BY id DESC LIMIT 1",
            (launch_id,),
        )
        return _decode(rows[0]) if rows else None


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("before_json", "after_json", "verification_json", "durations_json"):
        value = row.get(key)
        row[key.removesuffix("_json")] = json.loads(value) if value else None
    return row
