"""The go-live timeline: one timeline per launch, its milestones, and what happened to them.

- ``timelines``: T-0 (UTC instant and epoch seconds), the zone it was planned in, the state
  (``active`` | ``paused`` | ``cancelled``) and the current plan number. Cancelling and
  planning again starts a new plan number; earlier milestones stay as history.
- ``timeline_milestones``: one row per milestone of a plan, with its due instant and its
  delivery state. A milestone fires exactly once through a claim:

  ``pending`` --claim (BEGIN IMMEDIATE)--> ``claimed`` (claimed_by, lease_until)
  --posted, message ts recorded in one UPDATE--> ``posted`` | ``awaiting`` (a late action
  waiting for an operator) ; ``pending`` --> ``skipped`` | ``cancelled``.

  A claim whose owner died (or whose post failed) becomes claimable again when its lease
  runs out; a failed post sets the lease to the retry instant. Only the earliest open
  milestone of a launch is claimable, so a launch's milestones post in order even when
  several are caught up at once or several processes share the database.
  A milestone's action (``action_state``): ``none`` | ``started`` (a process runs it now:
  ``action_worker``, since ``action_started_ts``) --> ``done``; a late one is ``waiting`` for an
  operator --> ``declined`` (Skip) | ``started`` again, now with ``resolved_by`` (Run: recorded
  like an automatic run) --> ``confirmed`` when it finishes. An action still ``started`` long after
  it began (its process died) is *interrupted*: one process (compare-and-set) moves it to
  ``awaiting`` / ``waiting`` and posts a notice with Run / Skip in the milestone's thread; the
  notice's post is leased like a claim (``action_notice_until``) and recorded in
  ``action_notice_ts``. An interrupted action of a plan that no longer runs (cancelled, or
  replaced by a newer plan) is not offered to anyone: it ends ``orphaned``.
- ``timeline_history``: planned, re-planned, paused, resumed, cancelled, interrupted (also an
  orphaned one), confirmed, skipped.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlite_utils

if TYPE_CHECKING:
    from bot.store import Store

DOMAIN = "timeline"

def _v1(db: sqlite_utils.Database) -> None:
    db["timelines"].create(
        {
            "launch_id": int,
            "channel_id": str,
            "plan_no": int,
            "state": str,  # active | paused | cancelled
            "t0": str,  # ISO UTC
            "t0_ts": float,
            "timezone": str,
            "created_by": str,
            "created_at": str,
            "updated_at": str,
            "paused_at": str,
            "paused_reason": str,
            "plan_message_ts": str,
        },
        pk="launch_id",
        not_null={"channel_id", "plan_no", "state", "t0", "t0_ts", "timezone"},
    )
    db["timeline_milestones"].create(
        {
            "id": int,
            "launch_id": int,
            "plan_no": int,
            "position": int,
            "key": str,
            "kind": str,  # milestone | heads_up
            "label": str,  # T-24h, T-0, T+1h, T-10m
            "name": str,
            "offset_s": int,
            "owners": str,  # JSON list of Slack user/group IDs
            "action": str,  # published as timeline.action, or ''
            "ramp_to": int,  # ramp milestones: the percentage the button offers
            "due_at": str,
            "due_ts": float,
            "state": str,  # pending | claimed | posted | awaiting | skipped | cancelled
            "claimed_by": str,
            "claimed_at": float,
            "lease_until": float,
            "attempts": int,
            "last_error": str,
            "message_ts": str,
            "posted_ts": float,
            "late_s": float,
            "action_state": str,  # none | started | done | waiting | confirmed | declined
            "resolved_by": str,  # who confirmed or skipped
            "resolved_at": str,
            "note": str,
        },
        pk="id",
        not_null={"launch_id", "plan_no", "key", "state", "due_ts"},
        defaults={"attempts": 0, "action_state": "none", "state": "pending"},
    )
    db["timeline_milestones"].create_index(["launch_id", "plan_no", "key"], unique=True)
    db["timeline_milestones"].create_index(["state", "due_ts"])
    db["timeline_milestones"].create_index(["launch_id", "plan_no", "state", "due_ts"])
    db["timeline_history"].create(
        {"id": int, "launch_id": int, "plan_no": int, "at": str, "actor": str, "kind": str, "detail": str},
        pk="id",
    )
    db["timeline_history"].create_index(["launch_id", "id"])


def _v2(db: sqlite_utils.Database) -> None:
    """Who runs a milestone's action and since when, so an action whose process died is found."""
    table = db["timeline_milestones"]
    table.add_column("action_worker", str)  # the process (worker id) that runs the action
    table.add_column("action_started_ts", float)  # when it started
    table.add_column("action_interrupted_ts", float)  # when it was found abandoned (the bot restarted)
    table.add_column("action_notice_ts", str)  # the thread notice that offers Run / Skip
    table.add_column("action_notice_until", float)  # lease on posting that notice
    # actions started before this version: their start is their post
    db.execute("UPDATE timeline_milestones SET action_started_ts = posted_ts WHERE action_state = 'started'")
    table.create_index(["action_state"])


MIGRATIONS = [_v1, _v2]

# A milestone may be claimed when it is due (or its lease ran out) and no earlier milestone
# of the same plan is still open: a launch's milestones go out in order.
_CLAIMABLE = """
    t.state = 'active'
    AND ((m.state = 'pending' AND m.due_ts <= :now) OR (m.state = 'claimed' AND m.lease_until <= :now))
    AND NOT EXISTS (
        SELECT 1 FROM timeline_milestones e
        WHERE e.launch_id = m.launch_id AND e.plan_no = m.plan_no AND e.state IN ('pending', 'claimed')
          AND (e.due_ts < m.due_ts OR (e.due_ts = m.due_ts AND e.position < m.position))
    )
"""


# The milestone's plan still runs: its timeline is on that plan and not cancelled (paused counts).
_PLAN_LIVE = """EXISTS (
    SELECT 1 FROM timelines t WHERE t.launch_id = timeline_milestones.launch_id
    AND t.plan_no = timeline_milestones.plan_no AND t.state != 'cancelled')"""

# An action another process started more than the action lease ago, still unfinished.
_ABANDONED = ("state = 'posted' AND action_state = 'started' AND action_worker IS NOT :worker "
              "AND COALESCE(action_started_ts, posted_ts, 0) <= :started_before")

# An interrupted action whose notice is not recorded and whose notice lease ran out.
_NOTICE_DUE = ("state = 'awaiting' AND action_state = 'waiting' AND action_interrupted_ts IS NOT NULL "
               "AND action_notice_ts IS NULL AND COALESCE(action_notice_until, 0) <= :now")


def _row(row: dict[str, Any]) -> dict[str, Any]:
    row["owners"] = json.loads(row.get("owners") or "[]")
    return row


class TimelineRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- timelines ----------------------------------------------------------------------------
    def get(self, launch_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM timelines WHERE launch_id = ?", (launch_id,))
        return rows[0] if rows else None

    def for_channel(self, channel_id: str) -> dict[str, Any] | None:
        """The timeline of the channel's current launch (any state)."""
        rows = self.store.query(
            "SELECT t.* FROM timelines t JOIN launches l ON l.id = t.launch_id "
            "WHERE l.channel_id = ? AND l.status IN ('planned', 'active', 'paused') "
            "ORDER BY l.id DESC LIMIT 1",
            (channel_id,),
        )
        return rows[0] if rows else None

    def start_plan(
        self, *, launch_id: int, channel_id: str, t0: str, t0_ts: float, timezone: str, user_id: str,
        now: str, milestones: list[dict[str, Any]],
    ) -> int | None:
        """A new plan for the launch (first, or after a cancel): returns its plan number, or None
        when a live plan exists (made by someone else a moment ago)."""
        with self.store.transaction():
            existing = self.get(launch_id)
            if existing and existing["state"] != "cancelled":
                return None
            plan_no = (existing["plan_no"] + 1) if existing else 1
            if existing:
                self.store.execute(
                    "UPDATE timelines SET plan_no = ?, state = 'active', t0 = ?, t0_ts = ?, timezone = ?, "
                    "created_by = ?, created_at = ?, updated_at = ?, paused_at = NULL, paused_reason = NULL, "
                    "plan_message_ts = NULL WHERE launch_id = ?",
                    (plan_no, t0, t0_ts, timezone, user_id, now, now, launch_id),
                )
            else:
                self.store.execute(
                    "INSERT INTO timelines(launch_id, channel_id, plan_no, state, t0, t0_ts, timezone, "
                    "created_by, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
                    (launch_id, channel_id, plan_no, t0, t0_ts, timezone, user_id, now, now),
                )
            for m in milestones:
                self.store.execute(
                    "INSERT INTO timeline_milestones(launch_id, plan_no, position, key, kind, label, name, "
                    "offset_s, owners, action, ramp_to, due_at, due_ts, state, attempts, action_state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 'none')",
                    (launch_id, plan_no, m["position"], m["key"], m["kind"], m["label"], m["name"],
                     m["offset_s"], json.dumps(m["owners"]), m["action"] or "", m["ramp_to"],
                     m["due_at"], m["due_ts"]),
                )
            self.store.execute("UPDATE launches SET t0 = ?, timezone = ?, updated_at = ? WHERE id = ?",
                               (t0, timezone, now, launch_id))
            return plan_no

    def move(self, launch_id: int, *, t0: str, t0_ts: float, timezone: str, now: str,
             due: dict[int, tuple[str, float]]) -> None:
        """Re-plan: T-0 and the given pending milestones move (id -> new due)."""
        with self.store.transaction():
            self.store.execute(
                "UPDATE timelines SET t0 = ?, t0_ts = ?, timezone = ?, updated_at = ? WHERE launch_id = ?",
                (t0, t0_ts, timezone, now, launch_id),
            )
            for mid, (due_at, due_ts) in due.items():
                self.store.execute(
                    "UPDATE timeline_milestones SET due_at = ?, due_ts = ? WHERE id = ? AND state = 'pending'",
                    (due_at, due_ts, mid),
                )
            self.store.execute("UPDATE launches SET t0 = ?, timezone = ?, updated_at = ? WHERE id = ?",
                               (t0, timezone, now, launch_id))

    def set_plan_message(self, launch_id: int, ts: str) -> None:
        self.store.execute("UPDATE timelines SET plan_message_ts = ? WHERE launch_id = ?", (ts, launch_id))

    def set_state(self, launch_id: int, state: str, *, expect: tuple[str, ...], now: str,
                  reason: str | None = None) -> bool:
        """Move the timeline to ``state`` if it is in one of ``expect``; False if it was not."""
        paused_at = now if state == "paused" else None
        cur = self.store.execute(
            f"UPDATE timelines SET state = ?, updated_at = ?, paused_at = ?, paused_reason = ? "
            f"WHERE launch_id = ? AND state IN ({','.join('?' * len(expect))})",
            (state, now, paused_at, reason, launch_id, *expect),
        )
        return cur.rowcount == 1

    def cancel_pending(self, launch_id: int, plan_no: int, note: str) -> int:
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = 'cancelled', note = ? "
            "WHERE launch_id = ? AND plan_no = ? AND state = 'pending'",
            (note, launch_id, plan_no),
        )
        return cur.rowcount

    # -- milestones ---------------------------------------------------------------------------
    def milestone(self, milestone_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM timeline_milestones WHERE id = ?", (milestone_id,))
        return _row(rows[0]) if rows else None

    def milestones(self, launch_id: int, plan_no: int | None = None) -> list[dict[str, Any]]:
        if plan_no is None:
            rows = self.store.query(
                "SELECT * FROM timeline_milestones WHERE launch_id = ? ORDER BY plan_no, due_ts, position",
                (launch_id,),
            )
        else:
            rows = self.store.query(
                "SELECT * FROM timeline_milestones WHERE launch_id = ? AND plan_no = ? ORDER BY due_ts, position",
                (launch_id, plan_no),
            )
        return [_row(r) for r in rows]

    def claim_due(self, *, now: float, worker: str, lease_s: float, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` due milestones for ``worker`` in one ``BEGIN IMMEDIATE``."""
        with self.store.transaction():
            rows = self.store.query(
                "SELECT m.id FROM timeline_milestones m JOIN timelines t "
                "ON t.launch_id = m.launch_id AND t.plan_no = m.plan_no "
                f"WHERE {_CLAIMABLE} ORDER BY m.due_ts, m.position LIMIT :limit",
                {"now": now, "limit": limit},
            )
            ids = [r["id"] for r in rows]
            for mid in ids:
                self.store.execute(
                    "UPDATE timeline_milestones SET state = 'claimed', claimed_by = ?, claimed_at = ?, "
                    "lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                    (worker, now, now + lease_s, mid),
                )
            if not ids:
                return []
            found = self.store.query(
                f"SELECT * FROM timeline_milestones WHERE id IN ({','.join('?' * len(ids))}) "
                "ORDER BY due_ts, position",
                ids,
            )
            return [_row(r) for r in found]

    def next_wakeup(self) -> float | None:
        """When the earliest milestone becomes claimable (due, or its lease runs out)."""
        rows = self.store.query(
            "SELECT min(CASE WHEN m.state = 'pending' THEN m.due_ts ELSE m.lease_until END) AS at "
            "FROM timeline_milestones m JOIN timelines t ON t.launch_id = m.launch_id AND t.plan_no = m.plan_no "
            "WHERE t.state = 'active' AND m.state IN ('pending', 'claimed') AND NOT EXISTS ("
            " SELECT 1 FROM timeline_milestones e WHERE e.launch_id = m.launch_id AND e.plan_no = m.plan_no"
            " AND e.state IN ('pending', 'claimed')"
            " AND (e.due_ts < m.due_ts OR (e.due_ts = m.due_ts AND e.position < m.position)))"
        )
        value = rows[0]["at"] if rows else None
        return float(value) if value is not None else None

    def still_claimed(self, milestone_id: int, worker: str) -> bool:
        rows = self.store.query(
            "SELECT 1 FROM timeline_milestones WHERE id = ? AND state = 'claimed' AND claimed_by = ?",
            (milestone_id, worker),
        )
        return bool(rows)

    def mark_posted(self, milestone_id: int, worker: str, *, message_ts: str, posted_ts: float, late_s: float,
                    state: str, action_state: str, note: str = "") -> bool:
        """Record the post (one small autocommit UPDATE). False if the claim was no longer ours.
        A ``started`` action is recorded as run by ``worker`` from ``posted_ts`` in the same UPDATE."""
        started = action_state == "started"
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = ?, message_ts = ?, posted_ts = ?, late_s = ?, "
            "action_state = ?, action_worker = ?, action_started_ts = ?, note = ?, last_error = NULL "
            "WHERE id = ? AND claimed_by = ? AND state = 'claimed'",
            (state, message_ts, posted_ts, late_s, action_state, worker if started else None,
             posted_ts if started else None, note, milestone_id, worker),
        )
        return cur.rowcount == 1

    def finish_unposted(self, milestone_id: int, worker: str, *, state: str, note: str) -> bool:
        """A claimed milestone that is not posted after all (a heads-up whose T-0 passed)."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = ?, note = ? WHERE id = ? AND claimed_by = ? AND state = 'claimed'",
            (state, note, milestone_id, worker),
        )
        return cur.rowcount == 1

    def retry_later(self, milestone_id: int, worker: str, *, retry_at: float, error: str) -> None:
        """A post that failed: keep the claim, claimable again (by anyone) at ``retry_at``."""
        self.store.execute(
            "UPDATE timeline_milestones SET lease_until = ?, last_error = ? "
            "WHERE id = ? AND claimed_by = ? AND state = 'claimed'",
            (retry_at, error[:500], milestone_id, worker),
        )

    def release(self, milestone_id: int, worker: str) -> None:
        """Give back a claim whose post was never sent (a graceful stop): claimable again now."""
        self.store.execute(
            "UPDATE timeline_milestones SET state = 'pending', claimed_by = NULL, claimed_at = NULL, "
            "lease_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'claimed' AND message_ts IS NULL",
            (milestone_id, worker),
        )

    def finish_action(self, milestone_id: int, action_state: str, *, worker: str, started_ts: float) -> bool:
        """The action ``worker`` started at ``started_ts`` finished: ``done`` (automatic) or ``confirmed``
        (run on an operator's confirmation). False if it is no longer that run (another process took it
        for interrupted, and maybe an operator ran it again since)."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET action_state = ? WHERE id = ? AND action_state = 'started' "
            "AND action_worker = ? AND action_started_ts = ?",
            (action_state, milestone_id, worker, started_ts),
        )
        return cur.rowcount == 1

    # -- interrupted actions -------------------------------------------------------------------
    def interrupted_actions(self, *, now: float, worker: str, action_lease_s: float) -> list[dict[str, Any]]:
        """Actions another process started more than ``action_lease_s`` ago and never finished, and
        interrupted actions whose notice is not posted yet and whose notice lease ran out (of any
        plan: the caller tells a live plan's from a gone one's through the two takes below)."""
        rows = self.store.query(
            f"SELECT * FROM timeline_milestones WHERE ({_ABANDONED}) OR ({_NOTICE_DUE}) ORDER BY due_ts, position",
            {"worker": worker, "started_before": now - action_lease_s, "now": now},
        )
        return [_row(r) for r in rows]

    def take_interrupted(self, milestone_id: int, worker: str, *, now: float, action_lease_s: float,
                         notice_lease_s: float) -> bool:
        """Compare-and-set: an abandoned action of a live plan waits for an operator; only one process
        wins, and it holds the notice's post for ``notice_lease_s``. An action interrupted before (and
        run again on confirmation) gets a new notice, and waits for a new answer."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = 'awaiting', action_state = 'waiting', "
            "action_interrupted_ts = :now, action_notice_until = :until, action_notice_ts = NULL, "
            f"resolved_by = NULL, resolved_at = NULL WHERE id = :id AND {_ABANDONED} AND {_PLAN_LIVE}",
            {"now": now, "until": now + notice_lease_s, "id": milestone_id, "worker": worker,
             "started_before": now - action_lease_s},
        )
        return cur.rowcount == 1

    def take_orphaned(self, milestone_id: int, worker: str, *, now: float, action_lease_s: float) -> bool:
        """Compare-and-set: an abandoned action (or one whose notice is still unposted) of a plan that
        no longer runs ends ``orphaned``, offered to nobody; only one process wins."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = 'posted', action_state = 'orphaned', "
            "action_interrupted_ts = COALESCE(action_interrupted_ts, :now), action_notice_until = NULL "
            f"WHERE id = :id AND (({_ABANDONED}) OR ({_NOTICE_DUE})) AND NOT {_PLAN_LIVE}",
            {"now": now, "id": milestone_id, "worker": worker, "started_before": now - action_lease_s},
        )
        return cur.rowcount == 1

    def retake_notice(self, milestone_id: int, *, now: float, notice_lease_s: float) -> bool:
        """An interrupted action's notice that was never recorded (its poster died, or Slack failed):
        whoever takes the lease next posts it, while the plan runs."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET action_notice_until = :until "
            f"WHERE id = :id AND {_NOTICE_DUE} AND {_PLAN_LIVE}",
            {"until": now + notice_lease_s, "id": milestone_id, "now": now},
        )
        return cur.rowcount == 1

    def record_notice(self, milestone_id: int, ts: str) -> bool:
        cur = self.store.execute(
            "UPDATE timeline_milestones SET action_notice_ts = ? WHERE id = ? AND action_notice_ts IS NULL",
            (ts, milestone_id),
        )
        return cur.rowcount == 1

    def resolve_waiting(self, milestone_id: int, *, state: str, action_state: str, user_id: str,
                        now: str, worker: str | None = None, started_ts: float | None = None) -> bool:
        """An operator's answer to a waiting action: only the first answer wins. Run (``started``
        with ``worker`` and ``started_ts``) records who runs it since when, as for an automatic run."""
        cur = self.store.execute(
            "UPDATE timeline_milestones SET state = ?, action_state = ?, resolved_by = ?, resolved_at = ?, "
            "action_worker = COALESCE(?, action_worker), action_started_ts = COALESCE(?, action_started_ts) "
            "WHERE id = ? AND state = 'awaiting'",
            (state, action_state, user_id, now, worker, started_ts, milestone_id),
        )
        return cur.rowcount == 1

    # -- history ------------------------------------------------------------------------------
    def log(self, launch_id: int, plan_no: int, *, at: str, actor: str, kind: str, detail: str) -> None:
        self.store.execute(
            "INSERT INTO timeline_history(launch_id, plan_no, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (launch_id, plan_no, at, actor, kind, detail[:1000]),
        )

    def history(self, launch_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM timeline_history WHERE launch_id = ? ORDER BY id DESC LIMIT ?", (launch_id, limit)
        )
        return list(reversed(rows))
