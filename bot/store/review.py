"""Read-only queries for the post-launch review (``bot.review``).

The review reads what other domains recorded. It owns no table (no ``DOMAIN``/``MIGRATIONS``
here): each reader first asks whether the domain's table exists, so a bot built without a
domain answers ``None`` ("not recorded") instead of failing. Nothing here writes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.store import Store


class ReviewReader:
    def __init__(self, store: Store) -> None:
        self.store = store

    def has_table(self, name: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    # -- launch ---------------------------------------------------------------------------------
    def launch(self, launch_id: int) -> dict[str, Any] | None:
        return self.store.launches.get(launch_id)

    def latest_launch(self, channel_id: str | None) -> dict[str, Any] | None:
        """The channel's newest launch (any status), else the newest launch of the database."""
        if channel_id:
            rows = self.store.query("SELECT * FROM launches WHERE channel_id = ? ORDER BY id DESC LIMIT 1",
                                    (channel_id,))
            if rows:
                return rows[0]
        rows = self.store.query("SELECT * FROM launches ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    # -- traffic --------------------------------------------------------------------------------
    def traffic_changes(self, launch_id: int) -> list[dict[str, Any]] | None:
        """Every ramp/rollback attempt of the launch, oldest first (refused and failed included)."""
        if not self.has_table("traffic_changes"):
            return None
        rows = self.store.query("SELECT * FROM traffic_changes WHERE launch_id = ? ORDER BY id", (launch_id,))
        for row in rows:
            for key in ("before_json", "after_json", "verification_json", "durations_json"):
                value = row.get(key)
                row[key.removesuffix("_json")] = json.loads(value) if value else None
        return rows

    # -- readiness ------------------------------------------------------------------------------
    def check_runs(self, launch_id: int, since: float | None = None) -> list[dict[str, Any]] | None:
        """Finished readiness runs of the launch (or with no launch, since ``since``), oldest first."""
        if not self.has_table("check_runs"):
            return None
        rows = self.store.query(
            "SELECT * FROM check_runs WHERE verdict != 'running' AND (launch_id = ? OR "
            "(COALESCE(launch_id, 0) = 0 AND started_at >= ?)) ORDER BY id",
            (launch_id, since if since is not None else 0.0),
        )
        for row in rows:
            row["counts"] = json.loads(row["counts"]) if row.get("counts") else {}
        return rows

    def check_results(self, run_id: int) -> list[dict[str, Any]]:
        """Each check's outcome in one run (``check_id``, ``category``, ``title``, ``status``, ``summary``)."""
        return self.store.query(
            "SELECT check_id, category, title, status, summary FROM check_results WHERE run_id = ? "
            "ORDER BY category, check_id",
            (run_id,),
        )

    def signoffs(self, launch_id: int) -> list[dict[str, Any]] | None:
        if not self.has_table("signoffs"):
            return None
        return self.store.query(
            "SELECT item_id, state, by_user, at FROM signoffs WHERE launch_id IN (?, 0) ORDER BY at, item_id",
            (launch_id,),
        )

    # -- timeline -------------------------------------------------------------------------------
    def milestones(self, launch_id: int) -> list[dict[str, Any]] | None:
        """The milestones of the launch's latest plan (heads-up reminders left out)."""
        if not self.has_table("timeline_milestones"):
            return None
        rows = self.store.query(
            "SELECT * FROM timeline_milestones WHERE launch_id = ? AND plan_no = "
            "(SELECT MAX(plan_no) FROM timeline_milestones WHERE launch_id = ?) "
            "AND kind = 'milestone' ORDER BY position",
            (launch_id, launch_id),
        )
        return rows

    def plan(self, launch_id: int) -> dict[str, Any] | None:
        """The launch's go-live plan (``timelines`` row), if one was made."""
        if not self.has_table("timelines"):
            return None
        rows = self.store.query("SELECT * FROM timelines WHERE launch_id = ?", (launch_id,))
        return rows[0] if rows else None

    def first_check_of(self, launch_id: int) -> float | None:
        """When the first readiness run tied to this launch started."""
        if not self.has_table("check_runs"):
            return None
        rows = self.store.query("SELECT MIN(started_at) AS t FROM check_runs WHERE launch_id = ?", (launch_id,))
        return rows[0]["t"] if rows else None

    # -- alerts ---------------------------------------------------------------------------------
    def alerts(self, launch_id: int, since: float, until: float) -> list[dict[str, Any]] | None:
        """The launch's alerts (and alerts without a launch opened during it), oldest first."""
        if not self.has_table("alerts"):
            return None
        rows = self.store.query(
            "SELECT * FROM alerts WHERE launch_id = ? OR (launch_id IS NULL AND opened_at BETWEEN ? AND ?) "
            "ORDER BY opened_at, id",
            (launch_id, since, until),
        )
        for row in rows:
            row["escalations"] = self.store.query(
                "SELECT step, tier, round, due_at, claimed_at, reason, actor, notified_at "
                "FROM alert_escalations WHERE alert_id = ? ORDER BY step",
                (row["id"],),
            ) if self.has_table("alert_escalations") else []
        return rows

    def metric_minutes(self, metrics: list[str], since_minute: int, until_minute: int) -> (
            list[dict[str, Any]] | None):
        """Per-minute counters (``metric``, ``minute``, ``count``) of the Customer.io webhooks."""
        if not self.has_table("metric_counts"):
            return None
        marks = ",".join("?" * len(metrics))
        return self.store.query(
            f"SELECT metric, minute, count FROM metric_counts WHERE metric IN ({marks}) "
            "AND minute >= ? AND minute <= ? ORDER BY minute",
            (*metrics, since_minute, until_minute),
        )

    def probe_samples(self, since: float, until: float) -> list[dict[str, Any]] | None:
        """The synthetic Track API probe's samples (``at``, ``ok``, ``latency_ms``, ``status``)."""
        if not self.has_table("probe_samples"):
            return None
        return self.store.query(
            "SELECT at, ok, latency_ms, status FROM probe_samples WHERE at >= ? AND at <= ? ORDER BY at",
            (since, until),
        )
