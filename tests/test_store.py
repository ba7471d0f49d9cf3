"""The store: versioned schema upgraded in place, WAL, atomic transactions."""

from __future__ import annotations

import sqlite3

import pytest

from bot.store import Store, probe


def test_fresh_database_has_every_domain_at_its_latest_version(tmp_path):
    store = Store(tmp_path / "a.db")
    versions = store.schema_versions()
    assert versions["audit"] >= 1 and versions["launch"] >= 1
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    store.close()


def test_an_older_database_is_upgraded_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "old.db"
    # a database written by a version that only knew the audit domain
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE schema_versions (domain TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TEXT NOT NULL);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT, user_id TEXT, channel_id TEXT, kind TEXT,
                            action TEXT, outcome TEXT, detail TEXT);
        INSERT INTO schema_versions VALUES ('audit', 1, '2026-01-01T00:00:00+00:00');
        INSERT INTO audit (at, user_id, channel_id, kind, action, outcome, detail)
               VALUES ('2026-01-01T00:00:00+00:00', 'U1', 'C1', 'command', '/cio help', 'ok', '');
        """
    )
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_versions()["launch"] >= 1
    assert store.audit.count() == 1
    launch = store.launches.ensure("C1", "U1")
    assert launch["status"] == "active"
    store.close()
    # opening again changes nothing
    again = Store(path)
    assert again.audit.count() == 1
    assert again.launches.current("C1")["id"] == launch["id"]
    again.close()


def test_transaction_is_all_or_nothing(tmp_path):
    store = Store(tmp_path / "t.db")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.audit.record(user_id="U1", channel_id="C1", kind="command", action="a", outcome="ok")
            raise RuntimeError("half-way")
    assert store.audit.count() == 0
    with store.transaction():
        with store.transaction():  # nested joins the outer one
            store.audit.record(user_id="U1", channel_id="C1", kind="command", action="b", outcome="ok")
    assert store.audit.count() == 1
    store.close()


def test_ensure_launch_is_one_per_channel(tmp_path):
    store = Store(tmp_path / "l.db")
    first = store.launches.ensure("C1", "U1")
    assert store.launches.ensure("C1", "U2")["id"] == first["id"]
    assert store.launches.ensure("C2", "U1")["id"] != first["id"]
    store.launches.set_status(first["id"], "done")
    assert store.launches.ensure("C1", "U1")["id"] != first["id"]
    store.close()


def test_probe(tmp_path):
    assert probe(tmp_path / "none.db") == (False, "database file is missing")
    Store(tmp_path / "ok.db").close()
    assert probe(tmp_path / "ok.db") == (True, "ok")
    (tmp_path / "dir.db").mkdir()
    assert probe(tmp_path / "dir.db")[0] is False


def test_timeline_v1_database_learns_who_runs_an_action(tmp_path):
    """v2 of the timeline domain: an action started before the upgrade counts as started at its post."""
    import sqlite_utils

    from bot.store.timeline import MIGRATIONS

    path = tmp_path / "v1.db"
    db = sqlite_utils.Database(path)
    db.execute("CREATE TABLE schema_versions (domain TEXT PRIMARY KEY, version INTEGER NOT NULL, "
               "applied_at TEXT NOT NULL)")
    MIGRATIONS[0](db)
    db.execute("INSERT INTO schema_versions VALUES ('timeline', 1, '2026-01-01T00:00:00+00:00')")
    db["timeline_milestones"].insert_all([
        {"launch_id": 1, "plan_no": 1, "key": "t-24h", "state": "posted", "due_ts": 100.0, "posted_ts": 160.0,
         "action_state": "started"},
        {"launch_id": 1, "plan_no": 1, "key": "t-1h", "state": "posted", "due_ts": 200.0, "posted_ts": 200.0,
         "action_state": "none"},
    ])
    db.conn.commit()
    db.conn.close()
    store = Store(path)
    assert store.schema_versions()["timeline"] == len(MIGRATIONS) >= 2
    rows = {m["key"]: m for m in store.timeline.milestones(1)}
    assert rows["t-24h"]["action_started_ts"] == 160.0 and rows["t-24h"]["action_worker"] is None
    assert rows["t-1h"]["action_started_ts"] is None
    # found as interrupted by any process once the lease has run out, never before
    assert store.timeline.interrupted_actions(now=459.0, worker="w", action_lease_s=300) == []
    [found] = store.timeline.interrupted_actions(now=460.0, worker="w", action_lease_s=300)
    assert found["key"] == "t-24h"
    store.close()
