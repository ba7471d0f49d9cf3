"""Exactly one post per milestone across SIGKILL and restarts, and with two processes on one
database; an action killed half-way is handed to an operator, once. The scheduler runs in
subprocesses (``python -m bot.timeline_worker`` driven over stdin, with a fake clock) against
the same SQLite file and this test's FakeSlack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from bot.sandbox.slack import FakeSlack, Message
from bot.sandbox.world import SANDBOX_OPERATOR, SANDBOX_VIEWER
from bot.timeline import TimelineService
from tests.timeline_helpers import milestone_posts, utc

pytest_plugins = ["tests.fixtures_timeline"]

ROOT = Path(__file__).resolve().parent.parent

# T-0 2026-12-03 12:00 UTC
DUE = {
    "T-24h": "2026-12-02T12:00:00+00:00",
    "T-12h": "2026-12-03T00:00:00+00:00",
    "T-1h": "2026-12-03T11:00:00+00:00",
    "T-0": "2026-12-03T12:00:00+00:00",
    "T+1h": "2026-12-03T13:00:00+00:00",
    "T+2h": "2026-12-03T14:00:00+00:00",
    "T+24h": "2026-12-04T12:00:00+00:00",
}


class Worker:
    """One scheduler process driven line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.id = ""

    @classmethod
    async def start(cls, sandbox, db: Path, log: Path, *, hold: str | None = None,
                    hold_posted: str | None = None, hold_action: str | None = None) -> Worker:
        env = {**os.environ, **sandbox.env(), "CIO_DB_PATH": str(db), "CIO_WORKER_CONTROL": "stdin",
               "PYTHONPATH": str(ROOT)}
        env.pop("CIO_CONFIG", None)
        if hold:
            env["CIO_WORKER_HOLD_AFTER_CLAIM"] = hold
        if hold_posted:
            env["CIO_WORKER_HOLD_AFTER_POST"] = hold_posted
        if hold_action:
            env["CIO_WORKER_HOLD_IN_ACTION"] = hold_action
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.timeline_worker", env=env, cwd=str(ROOT),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err)
        worker = cls(proc)
        ready = await worker.read()
        assert ready.startswith("ready "), ready
        worker.id = ready.split(" ", 1)[1]
        return worker

    async def read(self, timeout: float = 20.0) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        return line.decode().strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())

    async def at(self, when: str) -> None:
        self.send(f"clock {when}")
        assert (await self.read()).startswith("clock ")

    async def tick(self) -> int:
        self.send("tick")
        reply = await self.read()
        assert reply.startswith("ticked "), reply
        return int(reply.split()[1])

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def quit(self) -> None:
        if self.proc.returncode is None:
            self.send("quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()


@contextlib.asynccontextmanager
async def running(sandbox, db: Path, log: Path, **hold: str) -> AsyncIterator[Worker]:
    """A worker process that is SIGKILLed on the way out if the test left it running."""
    worker = await Worker.start(sandbox, db, log, **hold)
    try:
        yield worker
    finally:
        if worker.proc.returncode is None:
            await worker.kill()


async def _crash_while_holding(sandbox, db: Path, log: Path, **hold: str) -> str:
    """A worker ticks at T-24h, stops where ``hold`` says and is SIGKILLed there; what it said."""
    async with running(sandbox, db, log, **hold) as worker:
        await worker.at(DUE["T-24h"])
        worker.send("tick")
        said = await worker.read()
        await worker.kill()
    return said


async def _tick_after_the_lease(sandbox, db: Path, log: Path) -> int:
    """A fresh worker ticks once the dead worker's claim has run out; how many milestones it did."""
    async with running(sandbox, db, log) as worker:
        await worker.at("2026-12-02T12:02:01+00:00")
        ticked = await worker.tick()
        await worker.quit()
    return ticked


async def _plan(timeline_bot, clock) -> Path:
    clock.set(utc("2026-12-01T12:00:00+00:00"))
    bot = await timeline_bot()
    assert "Planned" in (await bot.command("/cio golive 2026-12-03T12:00Z")).text
    db = bot.store.path
    await bot.stop()  # from here on only the subprocesses run the scheduler
    return db


def _rows(db: Path) -> dict[str, dict]:
    from bot.store import Store

    store = Store(db)
    try:
        return {m["label"]: m for m in store.timeline.milestones(1)}
    finally:
        store.close()


async def test_sigkill_between_claim_and_post_and_between_milestones(tmp_path, sandbox, timeline_bot, clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    slack = sandbox.slack
    async with running(sandbox, db, log, hold="t-24h") as first:
        await first.at(DUE["T-24h"])
        first.send("tick")
        assert await first.read() == "claimed t-24h"
        await first.kill()  # claimed, not posted
        row = _rows(db)["T-24h"]
        assert row["state"] == "claimed" and row["claimed_by"] == first.id and row["message_ts"] is None
        assert milestone_posts(slack) == []

    async with running(sandbox, db, log) as second:
        await second.at("2026-12-02T12:01:00+00:00")
        assert await second.tick() == 0, "the dead process's claim holds until its lease (120 s) runs out"
        await second.at("2026-12-02T12:02:01+00:00")
        assert await second.tick() == 1
        assert await second.tick() == 0
        (post,) = milestone_posts(slack, "T-24h")
        assert "posted 2 min late" in post.text
        row = _rows(db)["T-24h"]
        assert row["state"] == "posted" and row["claimed_by"] == second.id and row["message_ts"] == post.ts
        await second.kill()  # between two milestones

    async with running(sandbox, db, log) as third:
        await third.at(DUE["T-24h"])
        assert await third.tick() == 0
        await third.at(DUE["T-12h"])
        assert await third.tick() == 1
        await third.quit()
    counts = Counter(m.text.split(" ·")[0] for m in milestone_posts(slack))
    assert counts == {"T-24h": 1, "T-12h": 1}
    rows = _rows(db)
    assert rows["T-12h"]["state"] == "posted" and rows["T-1h"]["state"] == "pending"


async def test_two_processes_on_one_database_post_each_milestone_once(tmp_path, sandbox, timeline_bot, clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    async with running(sandbox, db, log) as a, running(sandbox, db, log) as b:
        total = 0
        for label in ("T-24h", "T-12h", "T-1h"):  # both wake at each instant and race for it
            await asyncio.gather(a.at(DUE[label]), b.at(DUE[label]))
            a.send("tick")
            b.send("tick")
            ticked = [int((await w.read()).split()[1]) for w in (a, b)]
            assert sorted(ticked) == [0, 1], ticked
            total += sum(ticked)
        # both were down for a day: they catch up on the rest together, in order
        await asyncio.gather(a.at("2026-12-04T13:00:00+00:00"), b.at("2026-12-04T13:00:00+00:00"))
        a.send("tick")
        b.send("tick")
        total += sum([int((await w.read()).split()[1]) for w in (a, b)])
        await asyncio.gather(a.quit(), b.quit())
    assert total == 7
    posts = milestone_posts(sandbox.slack)
    assert [m.text.split(" ·")[0] for m in posts] == list(DUE), "each once, in plan order"
    rows = _rows(db)
    assert {r["claimed_by"] for r in rows.values()} <= {a.id, b.id}
    assert all(r["state"] in ("posted", "awaiting") for r in rows.values())


async def test_sigkill_after_slack_accepted_before_the_database_recorded(tmp_path, sandbox, timeline_bot, clock):
    """The narrow window: Slack has the post, the claim row does not know. The next attempt finds
    the post by its metadata in the channel history and records it instead of posting again."""
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    assert await _crash_while_holding(sandbox, db, log, hold_posted="t-24h") == "posted t-24h"
    (post,) = milestone_posts(sandbox.slack, "T-24h")
    assert _rows(db)["T-24h"]["message_ts"] is None
    assert await _tick_after_the_lease(sandbox, db, log) == 1
    assert milestone_posts(sandbox.slack, "T-24h") == [post], "not posted a second time"
    row = _rows(db)["T-24h"]
    assert row["state"] == "posted" and row["message_ts"] == post.ts and row["attempts"] == 2
    assert any(r.path.endswith("conversations.history") for r in sandbox.slack.requests)


async def test_history_unreadable_means_at_least_once_not_never(tmp_path, sandbox, timeline_bot, clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    assert await _crash_while_holding(sandbox, db, log, hold="t-24h") == "claimed t-24h"
    sandbox.slack.fail("conversations.history", status=200, body={"ok": False, "error": "missing_scope"})
    assert await _tick_after_the_lease(sandbox, db, log) == 1
    assert len(milestone_posts(sandbox.slack, "T-24h")) == 1


# -- an action killed half-way ---------------------------------------------------------------------
#: the workers run without CIO_CONFIG: [timeline] action_lease_seconds is its default, 300
LEASE_OVER = "2026-12-02T12:05:00+00:00"


def _notices(slack: FakeSlack, thread_ts: str) -> list[Message]:
    """The thread notices that an action was interrupted by a restart."""
    return [m for m in slack.messages if m.kind == "message" and m.thread_ts == thread_ts
            and "restart" in m.text]


async def _kill_mid_action(sandbox, db: Path, log: Path) -> tuple[str, Message]:
    """A worker posts T-24h, starts its action (the staging checks) and is SIGKILLed there."""
    async with running(sandbox, db, log, hold_action="t-24h") as worker:
        await worker.at(DUE["T-24h"])
        worker.send("tick")
        said = {await worker.read(), await worker.read()}
        assert said == {"ticked 1", "acting t-24h"}, said
        await worker.kill()
    (post,) = milestone_posts(sandbox.slack, "T-24h")
    row = _rows(db)["T-24h"]
    assert row["state"] == "posted" and row["message_ts"] == post.ts
    assert row["action_state"] == "started" and row["action_worker"] == worker.id
    return worker.id, post


async def test_sigkill_while_an_action_runs_hands_it_to_an_operator_once(tmp_path, sandbox, timeline_bot, clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    slack = sandbox.slack
    _, post = await _kill_mid_action(sandbox, db, log)

    async with running(sandbox, db, log) as second:
        await second.at("2026-12-02T12:04:59+00:00")
        assert await second.tick() == 0
        assert _notices(slack, post.ts) == [], "within the action lease nobody takes the action for dead"
        assert _rows(db)["T-24h"]["action_state"] == "started"
        await second.at(LEASE_OVER)
        assert await second.tick() == 0, "no milestone is posted again"
        (notice,) = _notices(slack, post.ts)
        assert await second.tick() == 0
        await second.at("2026-12-02T13:00:00+00:00")
        assert await second.tick() == 0
        await second.quit()
    assert _notices(slack, post.ts) == [notice], "one notice"
    assert "the bot restarted while running its action; it is not known whether it finished" in notice.text
    body = json.dumps(notice.blocks)
    assert "I do not know whether it finished" in body and "not run it again by myself" in body
    assert [(b["action_id"], b["text"]["text"]) for b in _buttons(notice)] == [
        ("timeline_run_late", "Run it again"), ("timeline_skip", "Skip")]
    row = _rows(db)["T-24h"]
    assert row["state"] == "awaiting" and row["action_state"] == "waiting"
    assert row["action_notice_ts"] == notice.ts
    assert milestone_posts(slack, "T-24h") == [post], "the milestone is not posted twice"
    # the milestone's own message says so in place; the buttons are on the notice only
    status = slack.find("C0LAUNCH01", post.ts)
    assert "its action was interrupted by a restart; waiting for an operator" in status.text
    assert "*Interrupted:* the bot restarted while running this" in json.dumps(status.blocks)
    assert "Now: runs the readiness checks" in json.dumps(status.history[-1]["blocks"]), "it was the post"
    assert _buttons(status) == []

    # the bot (with its Slack endpoint) runs again: the buttons work, once, for operators only
    clock.set(utc("2026-12-02T13:00:00+00:00"))
    bot = await timeline_bot()
    actions = []

    async def on_action(p):
        actions.append(p)

    bot.services.events.subscribe("timeline.action", on_action)
    assert "run it again or skip it" in (await bot.command("/cio status")).all_text()
    refused = await bot.click(notice, "timeline_run_late", user=SANDBOX_VIEWER)
    assert "Only launch operators" in refused.text and actions == []
    ran = await bot.click(notice, "timeline_run_late")
    assert "Running T-24h" in ran.text
    await bot.services.idle(timeout=30)
    assert [(a["action"], a["thread_ts"]) for a in actions] == [("readiness_check:staging", post.ts)]
    answered = json.dumps(slack.find("C0LAUNCH01", notice.ts).blocks)
    assert "Run again on confirmation by <@U0OPERATOR>" in answered and "timeline_run_late" not in answered
    status = slack.find("C0LAUNCH01", post.ts)
    assert "interrupted by a restart; run again on confirmation by <@U0OPERATOR>" in status.text
    assert ":warning: Interrupted by a restart. Run again on confirmation by <@U0OPERATOR>" in json.dumps(
        status.blocks) and "waits for a launch operator" not in json.dumps(status.blocks)
    # a second press (a stale copy of the message, a double click) runs nothing again
    stale = str(_rows(db)["T-24h"]["id"])
    assert "already answered" in (await bot.press("timeline_run_late", stale, message_ts=notice.ts)).text
    assert "already answered" in (await bot.press("timeline_skip", stale, message_ts=notice.ts)).text
    assert len(actions) == 1
    view = (await bot.command("/cio timeline")).all_text()
    assert "run again on confirmation by <@U0OPERATOR> (the bot restarted while its action ran)" in view
    assert "the bot restarted while running T-24h (readiness_check:staging)" in view
    assert "ran the interrupted T-24h again" in view
    audit = [a for a in bot.store.audit.recent(50) if a["outcome"].startswith("action interrupted")]
    assert len(audit) == 1 and audit[0]["action"] == "timeline T-24h"
    assert _notices(slack, post.ts) == [notice] and milestone_posts(slack, "T-24h") == [post]
    row = _rows(db)["T-24h"]
    assert row["state"] == "posted" and row["action_state"] == "confirmed" and row["resolved_by"] == "U0OPERATOR"
    assert row["action_worker"] == bot.services.timeline.worker_id
    assert row["action_started_ts"] == utc("2026-12-02T13:00:00+00:00").timestamp()
    # the confirmed run finished: long after its lease, another process does not take it for interrupted
    clock.set(utc("2026-12-02T15:00:00+00:00"))
    assert await TimelineService(bot.services, bot.services.timeline.config).tick() == 0
    assert _notices(slack, post.ts) == [notice] and _rows(db)["T-24h"]["action_state"] == "confirmed"


async def test_two_processes_find_the_interrupted_action_and_one_posts_the_notice(tmp_path, sandbox, timeline_bot,
                                                                                   clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    dead, post = await _kill_mid_action(sandbox, db, log)
    async with running(sandbox, db, log) as a, running(sandbox, db, log) as b:
        for instant in (LEASE_OVER, "2026-12-02T12:05:01+00:00", "2026-12-02T12:30:00+00:00"):
            await asyncio.gather(a.at(instant), b.at(instant))
            a.send("tick")
            b.send("tick")
            assert [await w.read() for w in (a, b)] == ["ticked 0", "ticked 0"]
        await asyncio.gather(a.quit(), b.quit())
    assert len(_notices(sandbox.slack, post.ts)) == 1
    assert milestone_posts(sandbox.slack) == [post]
    row = _rows(db)["T-24h"]
    assert row["state"] == "awaiting" and row["action_state"] == "waiting" and row["action_worker"] == dead
    from bot.store import Store

    store = Store(db)
    try:
        found = [json.loads(a["detail"]) for a in store.audit.recent(50)
                 if a["outcome"].startswith("action interrupted")]
        history = [h for h in store.timeline.history(1) if h["kind"] == "interrupted"]
    finally:
        store.close()
    assert len(found) == 1 and len(history) == 1
    assert found[0]["worker"] == dead and found[0]["found_by"] in (a.id, b.id)


async def test_a_notice_slack_refused_is_posted_by_a_later_tick_once(tmp_path, sandbox, timeline_bot, clock):
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    _, post = await _kill_mid_action(sandbox, db, log)
    sandbox.slack.fail("chat.postMessage", status=200, body={"ok": False, "error": "fatal_error"})
    async with running(sandbox, db, log) as second:
        await second.at(LEASE_OVER)
        assert await second.tick() == 0
        assert _notices(sandbox.slack, post.ts) == []
        row = _rows(db)["T-24h"]
        assert row["state"] == "awaiting" and row["action_notice_ts"] is None, "taken, announced later"
        await second.kill()  # and the process that took it dies too
    async with running(sandbox, db, log) as third:
        await third.at("2026-12-02T12:06:59+00:00")
        assert await third.tick() == 0
        assert _notices(sandbox.slack, post.ts) == [], "the notice's lease (the claim lease, 120 s) holds"
        await third.at("2026-12-02T12:07:00+00:00")
        assert await third.tick() == 0
        assert await third.tick() == 0
        await third.quit()
    (notice,) = _notices(sandbox.slack, post.ts)
    assert _rows(db)["T-24h"]["action_notice_ts"] == notice.ts


def _buttons(message: Message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b.get("elements", [])]


async def test_sigkill_during_a_run_started_by_the_run_button_asks_the_operator_again_once(tmp_path, sandbox,
                                                                                          timeline_bot, clock):
    """Run it again is recorded like an automatic run (worker, start): a process killed while it
    runs is found when the action lease has passed, and one new notice asks again."""
    db = await _plan(timeline_bot, clock)
    log = tmp_path / "workers.log"
    slack = sandbox.slack
    _, post = await _kill_mid_action(sandbox, db, log)
    mid = _rows(db)["T-24h"]["id"]

    async with running(sandbox, db, log, hold_action="t-24h") as second:
        await second.at(LEASE_OVER)
        assert await second.tick() == 0
        (first,) = _notices(slack, post.ts)
        await second.at("2026-12-02T12:10:00+00:00")
        second.send(f"press timeline_run_late {mid} {SANDBOX_OPERATOR} {first.ts} {slack.response_url('rerun')}")
        said = {await second.read(), await second.read()}
        assert said == {"pressed 200", "acting t-24h"}, said
        # the button's answer goes out after its ack, through response_url: let it arrive
        for _ in range(500):
            if any(r.response_key == "rerun" for r in slack.responses):
                break
            await asyncio.sleep(0.01)
        await second.kill()  # while the run the operator started is going
    (answer,) = [r for r in slack.responses if r.response_key == "rerun"]
    assert "Running T-24h" in answer.text
    row = _rows(db)["T-24h"]
    assert row["state"] == "posted" and row["action_state"] == "started" and row["resolved_by"] == SANDBOX_OPERATOR
    assert row["action_worker"] == second.id
    assert row["action_started_ts"] == utc("2026-12-02T12:10:00+00:00").timestamp()

    async with running(sandbox, db, log) as third:
        await third.at("2026-12-02T12:14:59+00:00")
        assert await third.tick() == 0
        assert _notices(slack, post.ts) == [first], "the operator's run has its own action lease"
        await third.at("2026-12-02T12:15:00+00:00")
        assert await third.tick() == 0
        assert await third.tick() == 0
        await third.at("2026-12-02T13:00:00+00:00")
        assert await third.tick() == 0
        await third.quit()
    notices = _notices(slack, post.ts)
    assert len(notices) == 2 and notices[0] is first, "one new notice"
    again = notices[1]
    assert [(b["action_id"], b["value"]) for b in _buttons(again)] == [
        ("timeline_run_late", str(mid)), ("timeline_skip", str(mid))]
    assert _buttons(slack.find("C0LAUNCH01", first.ts)) == [], "the first notice was answered"
    assert "*Interrupted:*" in json.dumps(slack.find("C0LAUNCH01", post.ts).blocks)
    row = _rows(db)["T-24h"]
    assert row["state"] == "awaiting" and row["action_state"] == "waiting" and row["resolved_by"] is None
    assert row["action_worker"] == second.id and row["action_notice_ts"] == again.ts
    assert milestone_posts(slack, "T-24h") == [post]
    from bot.store import Store

    store = Store(db)
    try:
        found = [json.loads(a["detail"]) for a in store.audit.recent(50)
                 if a["outcome"].startswith("action interrupted")]
        history = [h["detail"] for h in store.timeline.history(1) if h["kind"] == "interrupted"]
    finally:
        store.close()
    assert found[0]["worker"] == second.id and found[0]["confirmed_by"] == SANDBOX_OPERATOR
    assert len(found) == 2 and len(history) == 2
    assert "(run again on confirmation by <@U0OPERATOR>)" in history[1]
