"""The one place that knows SQL.

SQLite through sqlite-utils, WAL mode. Each domain keeps its schema and queries in a
module of this package that defines ``DOMAIN`` and ``MIGRATIONS`` (a list of callables
taking a ``sqlite_utils.Database``; the n-th is version n). Opening a store upgrades an
older database in place, one transaction per step, recorded in ``schema_versions``.

Writes that must be atomic use :meth:`Store.transaction` (``BEGIN IMMEDIATE``) with
plain ``execute``; sqlite-utils' write helpers commit on their own and are only used
inside migrations.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _schema_modules() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "DOMAIN") and hasattr(module, "MIGRATIONS"):
            modules.append(module)
    return modules


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self.conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(self.conn)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()
        self._depth = 0
        self.migrate()
        from bot.store.alerts import AlertsRepo
        from bot.store.audit import AuditRepo
        from bot.store.checks import ChecksRepo
        from bot.store.launch import LaunchRepo
        from bot.store.leases import LeaseRepo
        from bot.store.review import ReviewReader
        from bot.store.timeline import TimelineRepo
        from bot.store.traffic import TrafficRepo

        self.audit = AuditRepo(self)
        self.launches = LaunchRepo(self)
        self.leases = LeaseRepo(self)
        self.alerts = AlertsRepo(self)
        self.traffic = TrafficRepo(self)
        self.checks = ChecksRepo(self)
        self.timeline = TimelineRepo(self)
        self.review = ReviewReader(self)

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> dict[str, int]:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(domain TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied: dict[str, int] = {}
        for module in _schema_modules():
            domain: str = module.DOMAIN
            migrations: list[Migration] = module.MIGRATIONS
            for version, step in enumerate(migrations, start=1):
                with self.transaction():
                    row = self.conn.execute(
                        "SELECT version FROM schema_versions WHERE domain = ?", (domain,)
                    ).fetchone()
                    current = row[0] if row else 0
                    if current >= version:
                        continue
                    step(self.db)
                    self.conn.execute(
                        "INSERT INTO schema_versions(domain, version, applied_at) VALUES (?, ?, ?) "
                        "ON CONFLICT(domain) DO UPDATE SET version = excluded.version, "
                        "applied_at = excluded.applied_at",
                        (domain, version, utcnow()),
                    )
            applied[domain] = len(migrations)
        return applied

    def schema_versions(self) -> dict[str, int]:
        return {r["domain"]: r["version"] for r in self.conn.execute("SELECT * FROM schema_versions")}

    # -- transactions ---------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


def probe(path: str | Path, timeout: float = 2.0) -> tuple[bool, str]:
    """Open the database file afresh, read-only, and read its schema: is it answering?"""
    p = Path(path)
    if not p.is_file():
        return False, "database file is missing"
    try:
        with p.open("rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        return False, f"database file cannot be read ({exc.strerror or exc})"
    if magic and magic != b"SQLite format 3\x00":
        return False, "database file is not an SQLite database"
    try:
        conn = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True, timeout=timeout)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("SELECT count(*) FROM schema_versions").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"database does not answer ({exc})"
    return True, "ok"
