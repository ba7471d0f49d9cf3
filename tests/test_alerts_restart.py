"""Crash safety: the bot runs in a subprocess on a SQLite file, is SIGKILLed in the middle
of an escalation and of a webhook flood, and restarts on the same file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.requests import action_body, signed_headers
from bot.sandbox.slack import SANDBOX_SIGNING_SECRET
from tests.fixtures_alerts import (
    AM_TOKEN,
    am_alert,
    am_payload,
    cio_event,
    cio_headers,
    escalation_toml,
    wait_for,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]

RESTART_CONFIG = f"""
[alerts]
alertmanager_token = "{AM_TOKEN}"
evaluate_seconds = 3600
probe_seconds = 3600
escalation_tick_seconds = 0.05
""" + escalation_toml(0, 0.02, 0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    """``cio-bot serve`` in a subprocess, pointed at the test's sandbox fakes."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            env=self.env, cwd=str(ROOT), stdout=log, stderr=log,
        )
        log.close()
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                assert self.proc.returncode is None, self.log_path.read_text()[-2000:]
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return self
                await asyncio.sleep(0.05)
        raise AssertionError("the bot did not start: " + self.log_path.read_text()[-2000:])

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self.kill()


@pytest.fixture
async def spawn(sandbox, tmp_path):
    procs: list[BotProcess] = []
    db = tmp_path / "shared.db"

    async def _spawn(config: str = RESTART_CONFIG) -> BotProcess:
        env = {**os.environ, **sandbox.env(), "CIO_DB_PATH": str(db),
               "CIO_CONFIG": write_config(tmp_path, config), "CIO_LOG_LEVEL": "WARNING"}
        env.pop("PORT", None)
        proc = await BotProcess(env, tmp_path / "bot.log").start()
        procs.append(proc)
        return proc

    _spawn.db = db  # type: ignore[attr-defined]
    yield _spawn
    for proc in procs:
        await proc.stop()


def query(db: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(str(db), timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def test_sigkill_during_escalation_neither_forgets_nor_doubles_a_tier(spawn, sandbox):
    slack = sandbox.slack
    pages = lambda tier: [m for m in slack.messages if f"Escalation tier {tier} of 3" in m.text]  # noqa: E731
    bot = await spawn()
    async with aiohttp.ClientSession() as session:
        body = json.dumps(am_payload("firing", [am_alert("firing", "crash1")])).encode()
        async with session.post(f"{bot.url}/webhooks/alertmanager", data=body,
                                headers={"Authorization": f"Bearer {AM_TOKEN}"}) as r:
            assert r.status == 200
        await wait_for(lambda: pages(1), what="tier 1")
        await bot.kill()  # tier 2 is due 1.2 s after the alert fired; the bot is dead then
        opened_at = query(spawn.db, "SELECT opened_at FROM alerts")[0]["opened_at"]
        await asyncio.sleep(max(0.0, opened_at + 1.5 - time.time()))

        bot = await spawn()
        await wait_for(lambda: pages(2), timeout=5, what="tier 2 after the restart")
        assert time.time() < opened_at + 6, "the test needs tier 3 (due at +7.2 s) still ahead"
        [alert_msg] = [m for m in slack.messages if m.thread_ts is None and "Alert #" in json.dumps(m.blocks)]
        press = action_body(action_id="alerts.ack", value="1", user_id="U0ONCALL", channel_id="C0LAUNCH01",
                            message_ts=alert_msg.ts, response_url=slack.response_url("ack"))
        async with session.post(f"{bot.url}/slack/events", data=press.encode(),
                                headers=signed_headers(SANDBOX_SIGNING_SECRET, press)) as r:
            assert r.status == 200
        await wait_for(lambda: query(spawn.db, "SELECT status FROM alerts")[0]["status"] == "acknowledged",
                       what="the acknowledgement to be stored")
        await bot.kill()

        bot = await spawn()
        await asyncio.sleep(max(0.0, opened_at + 8.5 - time.time()))  # past tier 3's due time
    assert len(pages(1)) == 1 and len(pages(2)) == 1, "no tier doubled across restarts"
    assert pages(3) == [], "the acknowledgement survived the restart and stopped the climb"
    steps = [(r["step"], r["tier"], r["reason"]) for r in query(spawn.db, "SELECT * FROM alert_escalations")]
    assert steps == [(0, 0, "timer"), (1, 1, "timer")]
    assert all(r["notified_at"] is not None for r in query(spawn.db, "SELECT * FROM alert_escalations"))
    alert_posts = [m for m in slack.messages if m.thread_ts is None and "Alert #" in json.dumps(m.blocks)]
    assert len(alert_posts) == 1, "the alert message is never re-posted by a restarted bot"
    assert "Acknowledged by <@U0ONCALL>" in json.dumps(alert_posts[0].blocks)


async def flood(url: str, key: str, events: list[dict], acked: set[str], workers: int = 16) -> int:
    """Post ``events`` on keep-alive connections until done or the server dies; return refusals."""
    queue = list(reversed(events))
    refused = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        while queue:
            event = queue.pop()
            body = json.dumps(event).encode()
            try:
                async with session.post(f"{url}/webhooks/customerio", data=body,
                                        headers=cio_headers(key, body, time.time())) as r:
                    if r.status == 200:
                        acked.add(event["event_id"])
                    else:
                        refused += 1
            except (TimeoutError, aiohttp.ClientError):
                return

    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))
    return refused


async def test_sigkill_during_a_webhook_flood_loses_no_acknowledged_event(spawn, sandbox):
    key = sandbox.webhook_signing_key
    bot = await spawn()
    now = time.time()
    events = [cio_event("sent" if i % 10 else "bounced", ts=now) for i in range(20000)]
    acked: set[str] = set()
    flooding = asyncio.ensure_future(flood(bot.url, key, events, acked))
    await wait_for(lambda: len(acked) >= 1500, timeout=20, what="the flood to get going")
    await bot.kill()
    refused = await flooding
    assert refused == 0
    assert 1500 <= len(acked) < len(events), "the kill must land mid-flood"

    counted = {r["event_id"] for r in query(spawn.db, "SELECT event_id FROM webhook_events")}
    assert acked <= counted, f"{len(acked - counted)} acknowledged events were lost"
    total = query(spawn.db, "SELECT SUM(count) AS n FROM metric_counts")[0]["n"]
    assert total == len(counted), "counters and event ids were committed together"

    # Customer.io retries everything it has no 200 for; we resend all (acked ones too): counted once
    bot = await spawn()
    acked_again: set[str] = set()
    assert await flood(bot.url, key, events, acked_again) == 0
    assert len(acked_again) == len(events)
    assert query(spawn.db, "SELECT count(*) AS n FROM webhook_events")[0]["n"] == len(events)
    sums = {r["metric"]: r["n"] for r in query(spawn.db, "SELECT metric, SUM(count) AS n FROM metric_counts "
                                                         "GROUP BY metric")}
    assert sums == {"email_sent": 18000, "email_bounced": 2000}
