"""Readiness check runs (who, environment, every result, durations) and sign-offs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlite_utils

from bot.secrets import redact

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "checks"


def _v1(db: sqlite_utils.Database) -> None:
    db["check_runs"].create(
        {
            "id": int,
            "started_at": float,  # unix seconds
            "finished_at": float,
            "environment": str,
            "actor": str,  # Slack user id, "cli" or "timeline"
            "source": str,  # slack | cli | timeline
            "categories": str,  # JSON list; empty = all
            "verdict": str,  # running | go | no-go
            "counts": str,  # JSON {pass, warn, fail, skip, error}
            "planned": int,
            "wall_ms": float,
            "channel_id": str,
            "message_ts": str,
            "launch_id": int,
        },
        pk="id",
        not_null={"started_at", "environment", "verdict"},
    )
    db["check_runs"].create_index(["environment", "id"])
    db["check_runs"].create_index(["channel_id", "message_ts"])
    db["check_results"].create(
        {
            "run_id": int,
            "check_id": str,
            "category": str,
            "title": str,
            "severity": str,
            "status": str,
            "summary": str,
            "detail": str,
            "fix": str,
            "rule": str,
            "found": str,
            "duration_ms": float,
            "data": str,
        },
        pk=("run_id", "check_id"),
        foreign_keys=[("run_id", "check_runs", "id")],
    )
    db["signoffs"].create(
        {"launch_id": int, "item_id": str, "state": str, "by_user": str, "at": float},
        pk=("launch_id", "item_id"),
    )
    db["signoff_events"].create(
        {"id": int, "launch_id": int, "item_id": str, "action": str, "by_user": str, "at": float,
         "run_id": int},
        pk="id",
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Which process runs a check run, so a restart marks only the runs of dead processes."""
    db["check_runs"].add_column("runner", str)


MIGRATIONS = [_v1, _v2]


class ChecksRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, *, started_at: float, environment: str, actor: str, source: str,
                  categories: list[str], planned: int, launch_id: int = 0,
                  channel_id: str = "", runner: str = "") -> int:
        cur = self.store.execute(
            "INSERT INTO check_runs(started_at, environment, actor, source, categories, verdict, counts, "
            "planned, channel_id, message_ts, launch_id, runner) "
            "VALUES (?, ?, ?, ?, ?, 'running', '{}', ?, ?, '', ?, ?)",
            (started_at, environment, actor, source, json.dumps(categories), planned, channel_id, launch_id,
             runner),
        )
        return int(cur.lastrowid or 0)

    def set_message(self, run_id: int, channel_id: str, message_ts: str) -> None:
        self.store.execute("UPDATE check_runs SET channel_id = ?, message_ts = ? WHERE id = ?",
                           (channel_id, message_ts, run_id))

    def add_result(self, run_id: int, result: dict[str, Any]) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO check_results(run_id, check_id, category, title, severity, status, "
            "summary, detail, fix, rule, found, duration_ms, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, result["id"], result["category"], result["title"], result["severity"],
             result["status"], redact(result["summary"]), redact(result.get("detail") or ""),
             redact(result.get("fix") or ""), result.get("rule") or "", redact(result.get("found") or ""),
             float(result.get("duration_ms") or 0.0),
             redact(json.dumps(result.get("data") or {}, default=str, sort_keys=True))),
        )

    def finish_run(self, run_id: int, *, finished_at: float, verdict: str, counts: dict[str, int],
                   wall_ms: float) -> None:
        self.store.execute(
            "UPDATE check_runs SET finished_at = ?, verdict = ?, counts = ?, wall_ms = ? WHERE id = ?",
            (finished_at, verdict, json.dumps(counts, sort_keys=True), wall_ms, run_id),
        )

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM check_runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def run_for_message(self, channel_id: str, message_ts: str) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT * FROM check_runs WHERE channel_id = ? AND message_ts = ? ORDER BY id DESC LIMIT 1",
            (channel_id, message_ts))
        return _run(rows[0]) if rows else None

    def last_run(self, environment: str | None = None, *, finished: bool = True) -> dict[str, Any] | None:
        """The latest run; ``finished`` ones only (go / no-go) unless told otherwise."""
        where = ["1 = 1"]
        params: list[Any] = []
        if environment:
            where.append("environment = ?")
            params.append(environment)
        if finished:
            where.append("verdict IN ('go', 'no-go')")
        rows = self.store.query(
            f"SELECT * FROM check_runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT 1", params)
        return _run(rows[0]) if rows else None

    def interrupt_unfinished(self, finished_at: float,
                             abandoned: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Runs left ``running`` by a stopped process (``abandoned`` says which) become
        ``interrupted``; returns them, each once."""
        with self.store.transaction():
            rows = [r for r in self.store.query("SELECT * FROM check_runs WHERE verdict = 'running'")
                    if abandoned(r)]
            for row in rows:
                self.store.execute("UPDATE check_runs SET verdict = 'interrupted', finished_at = ? "
                                   "WHERE id = ? AND verdict = 'running'", (finished_at, row["id"]))
        return [_run(r) for r in rows]

    def results(self, run_id: int) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM check_results WHERE run_id = ? ORDER BY rowid", (run_id,))
        for row in rows:
            row["id"] = row.pop("check_id")
            row["data"] = json.loads(row["data"] or "{}")
        return rows

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [_run(r) for r in self.store.query("SELECT * FROM check_runs ORDER BY id DESC LIMIT ?", (limit,))]

    # -- sign-offs ------------------------------------------------------------------------------
    def signoffs(self, launch_id: int) -> dict[str, dict[str, Any]]:
        rows = self.store.query("SELECT * FROM signoffs WHERE launch_id = ?", (launch_id,))
        return {r["item_id"]: r for r in rows}

    def set_signoff(self, launch_id: int, item_id: str, state: str, by_user: str, at: float,
                    run_id: int | None = None) -> dict[str, Any] | None:
        """Record a confirm or revoke; returns the previous state (None if there was none)."""
        with self.store.transaction():
            before = self.signoffs(launch_id).get(item_id)
            self.store.execute(
                "INSERT INTO signoffs(launch_id, item_id, state, by_user, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(launch_id, item_id) DO UPDATE SET state = excluded.state, "
                "by_user = excluded.by_user, at = excluded.at",
                (launch_id, item_id, state, by_user, at))
            self.store.execute(
                "INSERT INTO signoff_events(launch_id, item_id, action, by_user, at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?)", (launch_id, item_id, state, by_user, at, run_id))
        return before

    def signoff_history(self, launch_id: int, item_id: str | None = None) -> list[dict[str, Any]]:
        if item_id:
            return self.store.query("SELECT * FROM signoff_events WHERE launch_id = ? AND item_id = ? "
                                    "ORDER BY id", (launch_id, item_id))
        return self.store.query("SELECT * FROM signoff_events WHERE launch_id = ? ORDER BY id", (launch_id,))


def _run(row: dict[str, Any]) -> dict[str, Any]:
    row["categories"] = json.loads(row.get("categories") or "[]")
    row["counts"] = json.loads(row.get("counts") or "{}")
    return row
