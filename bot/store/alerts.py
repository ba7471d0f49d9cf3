"""Alerts: webhook dedup ids, per-metric per-minute counters, probe samples, alerts and
their escalation steps. Everything here survives a restart.

- ``webhook_events``: one row per Customer.io ``event_id`` (the dedup key), pruned after
  the retention period; ``metric_counts``: one row per (metric, minute), never a row per
  event. Both are written together, many events per transaction, by :class:`IntakeWriter`
  on its own connection (group commit) before any of those events is acknowledged.
- ``alerts``: one open row per dedup key (a partial unique index enforces it).
  ``escalation_step``/``escalation_due`` are the durable timer; each step is *claimed* by
  inserting its ``alert_escalations`` row (primary key ``(alert_id, step)``) in the same
  transaction that moves the timer on, so a step is neither lost nor taken twice.
- ``dirty`` marks an alert whose Slack message must be re-rendered (an outbox): the
  service clears it only after Slack accepted the post or update. ``*_attempted_at``
  record that a post was sent before its answer was stored: after a crash in between, the
  service reads the channel back before posting again, so nothing is posted twice.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlite_utils

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "alerts"

OPEN_STATES = ("open", "acknowledged")


def _v1(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE webhook_events (event_id TEXT PRIMARY KEY, received_at REAL NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX webhook_events_received ON webhook_events(received_at)")
    db.execute(
        "CREATE TABLE metric_counts (metric TEXT NOT NULL, minute INTEGER NOT NULL, "
        "count INTEGER NOT NULL, PRIMARY KEY (metric, minute)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE probe_samples (id INTEGER PRIMARY KEY, at REAL NOT NULL, ok INTEGER NOT NULL, "
        "latency_ms REAL NOT NULL, status INTEGER, error TEXT)"
    )
    db.execute("CREATE INDEX probe_samples_at ON probe_samples(at)")
    db.execute(
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            launch_id INTEGER,
            dedup_key TEXT NOT NULL,
            metric TEXT NOT NULL,
            title TEXT NOT NULL,
            source TEXT NOT NULL,            -- evaluator | alertmanager
            severity TEXT NOT NULL,          -- warning | critical
            status TEXT NOT NULL,            -- open | acknowledged | resolved
            value REAL,
            threshold REAL,
            unit TEXT NOT NULL DEFAULT '',   -- ratio | seconds | ''
            window TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            trend TEXT NOT NULL DEFAULT '[]', -- JSON list of recent values
            labels TEXT NOT NULL DEFAULT '{}',
            channel_id TEXT NOT NULL,
            message_ts TEXT,
            post_attempted_at REAL,          -- a post was sent (its answer may have been lost)
            thread_notice_ts TEXT,
            notice_attempted_at REAL,
            dirty INTEGER NOT NULL DEFAULT 1,
            opened_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            acknowledged_by TEXT,
            acknowledged_at REAL,
            resolved_by TEXT,
            resolved_at REAL,
            resolution TEXT,
            escalation_step INTEGER NOT NULL DEFAULT 0,
            escalation_due REAL,
            rollback_requested_at REAL,
            pagerduty TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute(
        "CREATE UNIQUE INDEX alerts_one_open_per_key ON alerts(dedup_key) WHERE status != 'resolved'"
    )
    db.execute("CREATE INDEX alerts_status ON alerts(status, escalation_due)")
    db.execute(
        """CREATE TABLE alert_escalations (
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            step INTEGER NOT NULL,
            tier INTEGER NOT NULL,
            round INTEGER NOT NULL,
            due_at REAL NOT NULL,
            claimed_at REAL NOT NULL,
            reason TEXT NOT NULL,            -- timer | manual
            actor TEXT,
            attempted_at REAL,
            notified_at REAL,
            message_ts TEXT,
            PRIMARY KEY (alert_id, step)
        )"""
    )
    db.execute(
        "CREATE TABLE metric_state (metric TEXT PRIMARY KEY, breach_streak INTEGER NOT NULL, "
        "ok_streak INTEGER NOT NULL, value REAL, samples INTEGER NOT NULL, breaching INTEGER NOT NULL, "
        "history TEXT NOT NULL, evaluated_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE ramp_state (launch_id INTEGER PRIMARY KEY, pct REAL NOT NULL, updated_at REAL NOT NULL)"
    )


MIGRATIONS = [_v1]


class IntakeEvent(NamedTuple):
    """One verified Customer.io event, ready to be counted (a tuple: cheap on the hot path)."""

    event_id: str
    metric: str  # counter key, e.g. ``email_bounced``
    minute: int  # Unix minute the event belongs to
    received_at: float


class IntakeWriter:
    """Counts webhook events on a connection of its own, one transaction per batch.

    It records each event id and adds the new events to their per-minute counters in one
    transaction, and says, for each event, whether it was new (``False`` for a retry of an
    event already counted, even within the batch). The service stages a batch on the event
    loop (:meth:`stage`: quick, CPU only) and commits it on a worker thread (:meth:`finish`:
    the fsync), or does both at once (:meth:`commit`).
    """

    def __init__(self, store: Store, *, synchronous: str = "FULL") -> None:
        self._shared = str(store.path) == ":memory:"
        self._store = store
        if self._shared:
            self.conn = store.conn
            self._lock: Any = store._lock
        else:
            self.conn = sqlite3.connect(
                str(Path(store.path)), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed batch is on disk before any of its events is acknowledged;
            # the fsync is shared by every event of the batch.
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            self.conn.execute("PRAGMA busy_timeout=10000")
            self._lock = threading.Lock()

    @property
    def splittable(self) -> bool:
        """Whether :meth:`finish` may run on another thread than :meth:`stage` (own connection)."""
        return not self._shared

    def commit(self, events: list[IntakeEvent]) -> list[bool]:
        """Stage and commit a batch on the calling thread."""
        fresh = self.stage(events)
        self.finish()
        return fresh

    def stage(self, events: list[IntakeEvent]) -> list[bool]:
        """Open the batch's transaction and write it (CPU work, no fsync). The transaction stays
        open, and the writer taken, until :meth:`finish` commits it.

        A handful of statements per batch, whatever its size: each sqlite3 call from Python
        is a point where threads trade the GIL, so the work is set-based SQL over a JSON array
        rather than row by row.
        """
        ids = json.dumps([ev.event_id for ev in events])
        self._lock.acquire()
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            unseen = conn.execute(
                "SELECT group_concat(j.key) FROM json_each(?) j "
                "WHERE NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.event_id = j.value)",
                (ids,),
            ).fetchone()[0]
            fresh = [False] * len(events)
            counts: Counter[tuple[str, int]] = Counter()
            first: set[str] = set()
            for index in map(int, unseen.split(",")) if unseen else ():
                ev = events[index]
                if ev.event_id not in first:  # a second copy in the same batch is a retry
                    first.add(ev.event_id)
                    fresh[index] = True
                    counts[(ev.metric, ev.minute)] += 1
            if counts:
                conn.execute(
                    "INSERT INTO webhook_events(event_id, received_at) SELECT value, ? FROM json_each(?) "
                    "WHERE true ON CONFLICT(event_id) DO NOTHING",
                    (events[0].received_at, ids),
                )
                conn.execute(
                    "INSERT INTO metric_counts(metric, minute, count) SELECT json_extract(value, '$[0]'), "
                    "json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?) WHERE true "
                    "ON CONFLICT(metric, minute) DO UPDATE SET count = count + excluded.count",
                    (json.dumps([[m, minute, n] for (m, minute), n in counts.items()]),),
                )
        except BaseException:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            finally:
                self._lock.release()
            raise
        return fresh

    def finish(self) -> None:
        """COMMIT the staged batch (the fsync: the slow part, fit for a worker thread); on
        failure nothing of the batch is kept. Releases the writer either way."""
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            raise
        finally:
            self._lock.release()

    def close(self) -> None:
        if not self._shared:
            with self._lock:
                self.conn.close()


#: (step index, due time of that step) -> (tier index, round, due time of the next step or None)
StepPlan = Callable[[int, float], tuple[int, int, float | None]]


class AlertsRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- intake figures -------------------------------------------------------------------
    def counter_sums(self, metrics: Iterable[str], since_minute: int, until_minute: int) -> dict[str, int]:
        metrics = list(metrics)
        marks = ",".join("?" * len(metrics))
        rows = self.store.query(
            f"SELECT metric, SUM(count) AS n FROM metric_counts WHERE metric IN ({marks}) "
            "AND minute >= ? AND minute <= ? GROUP BY metric",
            (*metrics, since_minute, until_minute),
        )
        out = dict.fromkeys(metrics, 0)
        out.update({r["metric"]: int(r["n"] or 0) for r in rows})
        return out

    def counted_events(self) -> int:
        return int(self.store.query("SELECT count(*) AS n FROM webhook_events")[0]["n"])

    def has_event(self, event_id: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM webhook_events WHERE event_id = ?", (event_id,)))

    def counter_total(self, metric: str | None = None) -> int:
        if metric is None:
            rows = self.store.query("SELECT SUM(count) AS n FROM metric_counts")
        else:
            rows = self.store.query("SELECT SUM(count) AS n FROM metric_counts WHERE metric = ?", (metric,))
        return int(rows[0]["n"] or 0)

    def add_probe(self, at: float, ok: bool, latency_ms: float, status: int | None, error: str | None) -> None:
        self.store.execute(
            "INSERT INTO probe_samples(at, ok, latency_ms, status, error) VALUES (?, ?, ?, ?, ?)",
            (at, int(ok), latency_ms, status, error),
        )

    def probe_samples(self, since: float, until: float) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM probe_samples WHERE at > ? AND at <= ? ORDER BY at", (since, until)
        )

    def prune(self, *, events_before: float, counts_before_minute: int, probes_before: float) -> dict[str, int]:
        with self.store.transaction() as conn:
            a = conn.execute("DELETE FROM webhook_events WHERE received_at < ?", (events_before,)).rowcount
            b = conn.execute("DELETE FROM metric_counts WHERE minute < ?", (counts_before_minute,)).rowcount
            c = conn.execute("DELETE FROM probe_samples WHERE at < ?", (probes_before,)).rowcount
        return {"webhook_events": a, "metric_counts": b, "probe_samples": c}

    # -- evaluation state -----------------------------------------------------------------
    def metric_state(self, metric: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM metric_state WHERE metric = ?", (metric,))
        if not rows:
            return None
        row = rows[0]
        row["history"] = json.loads(row["history"])
        return row

    def claim_evaluation(self, metric: str, now: float, min_gap: float) -> bool:
        """Take this period's evaluation of ``metric``: False when another process (a second
        replica on this database) evaluated it less than ``min_gap`` seconds ago, so that a
        breach or a recovery counts once per period however many processes run."""
        with self.store.transaction():
            cur = self.store.execute(
                "UPDATE metric_state SET evaluated_at = ? WHERE metric = ? AND evaluated_at <= ?",
                (now, metric, now - min_gap))
            if cur.rowcount:
                return True
            cur = self.store.execute(
                "INSERT OR IGNORE INTO metric_state(metric, breach_streak, ok_streak, value, samples, breaching, "
                "history, evaluated_at) VALUES (?, 0, 0, NULL, 0, 0, '[]', ?)", (metric, now))
            return bool(cur.rowcount)

    def save_metric_state(self, metric: str, *, breach_streak: int, ok_streak: int, value: float | None,
                          samples: int, breaching: bool, history: list[float | None], at: float) -> None:
        self.store.execute(
            "INSERT INTO metric_state(metric, breach_streak, ok_streak, value, samples, breaching, history, "
            "evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(metric) DO UPDATE SET "
            "breach_streak = excluded.breach_streak, ok_streak = excluded.ok_streak, value = excluded.value, "
            "samples = excluded.samples, breaching = excluded.breaching, history = excluded.history, "
            "evaluated_at = excluded.evaluated_at",
            (metric, breach_streak, ok_streak, value, samples, int(breaching), json.dumps(history), at),
        )

    def reset_breach(self, metric: str) -> None:
        self.store.execute("UPDATE metric_state SET breach_streak = 0 WHERE metric = ?", (metric,))

    def set_ramp(self, launch_id: int, pct: float, at: float) -> None:
        self.store.execute(
            "INSERT INTO ramp_state(launch_id, pct, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(launch_id) DO UPDATE SET pct = excluded.pct, updated_at = excluded.updated_at",
            (launch_id, pct, at),
        )

    def ramp(self, launch_id: int) -> float | None:
        rows = self.store.query("SELECT pct FROM ramp_state WHERE launch_id = ?", (launch_id,))
        return float(rows[0]["pct"]) if rows else None

    # -- alerts ---------------------------------------------------------------------------
    def get(self, alert_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return rows[0] if rows else None

    def open_by_key(self, dedup_key: str) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT * FROM alerts WHERE dedup_key = ? AND status != 'resolved'", (dedup_key,)
        )
        return rows[0] if rows else None

    def open_by_key_suffix(self, suffix: str) -> dict[str, Any] | None:
        """The open alert whose dedup key ends with ``suffix`` (any launch), newest first."""
        rows = self.store.query(
            "SELECT * FROM alerts WHERE status != 'resolved' AND substr(dedup_key, -?) = ? ORDER BY id DESC LIMIT 1",
            (len(suffix), suffix),
        )
        return rows[0] if rows else None

    def open_alerts(self, launch_id: int | None = None) -> list[dict[str, Any]]:
        if launch_id is None:
            return self.store.query("SELECT * FROM alerts WHERE status != 'resolved' ORDER BY id")
        return self.store.query(
            "SELECT * FROM alerts WHERE status != 'resolved' AND launch_id = ? ORDER BY id", (launch_id,)
        )

    def recent_resolved(self, since: float, limit: int = 10) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM alerts WHERE status = 'resolved' AND resolved_at >= ? ORDER BY resolved_at DESC "
            "LIMIT ?", (since, limit),
        )

    def all_alerts(self) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM alerts ORDER BY id")

    def fire_or_update(self, *, dedup_key: str, launch_id: int | None, metric: str, title: str, source: str,
                       severity: str, value: float | None, threshold: float | None, unit: str, window: str,
                       detail: str, labels: dict[str, Any], channel_id: str, at: float,
                       first_due: float | None, trend_len: int = 12) -> tuple[dict[str, Any], bool]:
        """Open the alert of ``dedup_key`` or update the open one. Returns (row, created)."""
        with self.store.transaction() as conn:
            row = self.open_by_key(dedup_key)
            if row is None:
                trend = [value] if value is not None else []
                cur = conn.execute(
                    "INSERT INTO alerts(launch_id, dedup_key, metric, title, source, severity, status, value, "
                    "threshold, unit, window, detail, trend, labels, channel_id, dirty, opened_at, updated_at, "
                    "escalation_step, escalation_due) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, "
                    "1, ?, ?, 0, ?)",
                    (launch_id, dedup_key, metric, title, source, severity, value, threshold, unit, window,
                     detail, json.dumps(trend), json.dumps(labels, sort_keys=True), channel_id, at, at, first_due),
                )
                created = self.get(int(cur.lastrowid or 0))
                assert created is not None
                return created, True
            # an evaluation without data is kept as null: the trend then says the data stopped
            trend = (json.loads(row["trend"]) + [value])[-trend_len:]
            # severity only rises while the alert is open (a critical breach stays critical)
            new_severity = "critical" if "critical" in (severity, row["severity"]) else severity
            conn.execute(
                "UPDATE alerts SET title = ?, severity = ?, value = ?, threshold = ?, window = ?, detail = ?, "
                "trend = ?, labels = ?, updated_at = ?, dirty = 1 WHERE id = ?",
                (title, new_severity, value, threshold, window, detail, json.dumps(trend),
                 json.dumps(labels, sort_keys=True), at, row["id"]),
            )
            updated = self.get(int(row["id"]))
            assert updated is not None
            return updated, False

    def acknowledge(self, alert_id: int, user_id: str, at: float) -> tuple[bool, dict[str, Any] | None]:
        """Stop the climb. (changed, row)."""
        with self.store.transaction() as conn:
            changed = conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, "
                "escalation_due = NULL, updated_at = ?, dirty = 1 WHERE id = ? AND status = 'open'",
                (user_id, at, at, alert_id),
            ).rowcount == 1
            return changed, self.get(alert_id)

    def resolve(self, alert_id: int, *, by: str | None, reason: str, at: float) -> tuple[bool, dict[str, Any] | None]:
        with self.store.transaction() as conn:
            changed = conn.execute(
                "UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ?, "
                "escalation_due = NULL, updated_at = ?, dirty = 1 WHERE id = ? AND status != 'resolved'",
                (by, at, reason, at, alert_id),
            ).rowcount == 1
            return changed, self.get(alert_id)

    def mark_rollback_requested(self, alert_id: int, at: float) -> bool:
        """Claim the auto-rollback of an alert (once)."""
        return self.store.execute(
            "UPDATE alerts SET rollback_requested_at = ? WHERE id = ? AND rollback_requested_at IS NULL",
            (at, alert_id),
        ).rowcount == 1

    def set_pagerduty(self, alert_id: int, state: str, *, rerender: bool = True) -> None:
        self.store.execute(
            "UPDATE alerts SET pagerduty = ?, dirty = CASE WHEN ? THEN 1 ELSE dirty END WHERE id = ?",
            (state, int(rerender), alert_id),
        )

    # -- the Slack outbox ------------------------------------------------------------------
    def dirty_alerts(self) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM alerts WHERE dirty = 1 ORDER BY id")

    def message_posted(self, alert_id: int, ts: str, updated_at: float) -> None:
        """Record the message ts; clear ``dirty`` unless the alert changed meanwhile."""
        self.store.execute(
            "UPDATE alerts SET message_ts = ?, dirty = CASE WHEN updated_at > ? THEN 1 ELSE 0 END WHERE id = ?",
            (ts, updated_at, alert_id),
        )

    def message_synced(self, alert_id: int, updated_at: float) -> None:
        self.store.execute(
            "UPDATE alerts SET dirty = 0 WHERE id = ? AND updated_at <= ?", (alert_id, updated_at)
        )

    def touch(self, alert_id: int, at: float) -> None:
        self.store.execute(
            "UPDATE alerts SET updated_at = MAX(updated_at, ?), dirty = 1 WHERE id = ?", (at, alert_id)
        )

    def post_attempted(self, alert_id: int, at: float) -> None:
        self.store.execute("UPDATE alerts SET post_attempted_at = ? WHERE id = ?", (at, alert_id))

    def notice_attempted(self, alert_id: int, at: float) -> None:
        self.store.execute("UPDATE alerts SET notice_attempted_at = ? WHERE id = ?", (at, alert_id))

    def escalation_attempted(self, alert_id: int, step: int, at: float) -> None:
        self.store.execute(
            "UPDATE alert_escalations SET attempted_at = ? WHERE alert_id = ? AND step = ?", (at, alert_id, step)
        )

    def resolution_notice_pending(self) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM alerts WHERE status = 'resolved' AND message_ts IS NOT NULL "
            "AND thread_notice_ts IS NULL ORDER BY id"
        )

    def resolution_noticed(self, alert_id: int, ts: str) -> None:
        self.store.execute("UPDATE alerts SET thread_notice_ts = ? WHERE id = ?", (ts, alert_id))

    # -- escalation: a durable scheduler ------------------------------------------------------
    def claim_due_escalations(self, now: float, plan: StepPlan) -> list[dict[str, Any]]:
        """Claim every due step (one per alert per call) and move each timer on, atomically."""
        claimed = []
        with self.store.transaction() as conn:
            due = conn.execute(
                "SELECT id, escalation_step, escalation_due FROM alerts WHERE status = 'open' "
                "AND escalation_due IS NOT NULL AND escalation_due <= ? ORDER BY escalation_due",
                (now,),
            ).fetchall()
            for row in due:
                step, due_at = int(row["escalation_step"]), float(row["escalation_due"])
                tier, rnd, next_due = plan(step, due_at)
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO alert_escalations(alert_id, step, tier, round, due_at, claimed_at, "
                    "reason) VALUES (?, ?, ?, ?, ?, ?, 'timer')",
                    (row["id"], step, tier, rnd, due_at, now),
                ).rowcount == 1
                conn.execute(
                    "UPDATE alerts SET escalation_step = ?, escalation_due = ?, updated_at = MAX(updated_at, ?), "
                    "dirty = 1 WHERE id = ?",
                    (step + 1, next_due, now, row["id"]),
                )
                if inserted:
                    claimed.append({"alert_id": row["id"], "step": step, "tier": tier, "round": rnd})
        return claimed

    def claim_manual_escalation(self, alert_id: int, actor: str, now: float,
                                plan: StepPlan) -> dict[str, Any] | None:
        """Escalate now: claim the next step at once. None when the alert is resolved."""
        with self.store.transaction() as conn:
            row = self.get(alert_id)
            if row is None or row["status"] == "resolved":
                return None
            step = int(row["escalation_step"])
            tier, rnd, next_due = plan(step, now)
            conn.execute(
                "INSERT INTO alert_escalations(alert_id, step, tier, round, due_at, claimed_at, reason, actor) "
                "VALUES (?, ?, ?, ?, ?, ?, 'manual', ?)",
                (alert_id, step, tier, rnd, now, now, actor),
            )
            conn.execute(
                "UPDATE alerts SET escalation_step = ?, escalation_due = CASE WHEN status = 'open' THEN ? "
                "ELSE NULL END, updated_at = MAX(updated_at, ?), dirty = 1 WHERE id = ?",
                (step + 1, next_due, now, alert_id),
            )
            return {"alert_id": alert_id, "step": step, "tier": tier, "round": rnd}

    def escalations(self, alert_id: int) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM alert_escalations WHERE alert_id = ? ORDER BY step", (alert_id,)
        )

    def unnotified_escalations(self) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT e.* FROM alert_escalations e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.notified_at IS NULL AND a.message_ts IS NOT NULL ORDER BY e.alert_id, e.step"
        )

    def escalation_notified(self, alert_id: int, step: int, at: float, ts: str | None) -> None:
        self.store.execute(
            "UPDATE alert_escalations SET notified_at = ?, message_ts = ? WHERE alert_id = ? AND step = ?",
            (at, ts, alert_id, step),
        )
