"""SIGKILL in the middle of a traffic change: the bot runs in a subprocess against the
sandbox fakes of this test, is killed while LaunchDarkly holds the PATCH answer back, and
a new bot on the same SQLite file neither loses the history nor stays locked, and reports
the flag as LaunchDarkly has it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.requests import action_body, signed_headers, slash_body
from bot.sandbox.slack import SANDBOX_SIGNING_SECRET
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.traffic_helpers import OPERATOR_2, ld_of, patches, toml

pytest_plugins = ["tests.fixtures_traffic"]

ROOT = Path(__file__).resolve().parent.parent


async def _until(predicate, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def test_sigkill_mid_change_then_restart(tmp_path, sandbox, traffic_bot):
    config = tmp_path / "cio.toml"
    config.write_text(toml({"min_soak_minutes": 0}))
    env = {**os.environ, **sandbox.env(), "CIO_DB_PATH": str(tmp_path / "bot.db"), "CIO_CONFIG": str(config),
           "CIO_OPERATORS": f"{SANDBOX_OPERATOR},{OPERATOR_2}", "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0",
        env=env, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)  # type: ignore[union-attr]
        url = line.decode().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), line
        slack = sandbox.slack
        async with aiohttp.ClientSession() as http:
            body = slash_body("ramp 10", user_id=SANDBOX_OPERATOR, channel_id="C0LAUNCH01",
                              response_url=slack.response_url("kill-ask"))
            async with http.post(f"{url}/slack/events", data=body,
                                 headers=signed_headers(SANDBOX_SIGNING_SECRET, body)) as r:
                assert r.status == 200
            asked = await _until(lambda: [m for m in slack.responses if m.response_key == "kill-ask"])
            token = next(e["value"] for b in asked[-1].blocks for e in b.get("elements", [])
                         if isinstance(e, dict) and e.get("action_id") == "traffic_confirm")

            sandbox.launchdarkly.answer_delay = 1.5  # applied, answer held back: the bot is mid-change
            click = action_body(action_id="traffic_confirm", value=token, user_id=SANDBOX_OPERATOR,
                                channel_id="C0LAUNCH01", message_ts=None, response_url=slack.response_url("kill-click"))
            async with http.post(f"{url}/slack/events", data=click,
                                 headers=signed_headers(SANDBOX_SIGNING_SECRET, click)) as r:
                assert r.status == 200
            await _until(lambda: [r for r in sandbox.launchdarkly.calls("/api/v2/flags/", "PATCH")
                                  if r.query.get("dryRun") != "true"])
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    sandbox.launchdarkly.answer_delay = 0

    bot = await traffic_bot()  # same database file, new process state
    (row,) = bot.store.traffic.history(1)
    assert row["status"] == "interrupted" and row["to_pct"] == 10
    # the operator who clicked is told, in the channel, what LaunchDarkly has: reported, not "verified"
    notice = await _until(lambda: [m for m in sandbox.slack.channel_messages("C0LAUNCH01")
                                   if "stopped in the middle of a traffic change" in m.text])
    assert len(notice) == 1
    text = notice[0].text
    assert f"ramp to 10% confirmed by <@{SANDBOX_OPERATOR}> was neither verified nor announced" in text
    assert "now reports `use-customerio` on, 10% to the new path" in text
    # found as asked: verified now with the SDK over the flag data read after the restart
    assert "that is what was asked, and verified now: SDK served the new path to" in text
    assert "target 10% ±" in text and "from the flag data read after the restart" in text
    found = bot.store.traffic.change(row["id"])
    assert found["after"]["served"] == 10_000 and found["verification"]["ok"] is True
    assert found["status"] == "interrupted", "the change itself was cut off; what was found is recorded beside it"
    assert not bot.store.query("SELECT * FROM traffic_locks"), "the dead process's lock is released"
    status = (await bot.command("/cio status")).all_text()
    assert "on, 10% to the new path" in status, "the flag as LaunchDarkly has it, not as the bot remembers"
    assert "ended *interrupted*" in status
    again = await bot.press("traffic_confirm", token)
    assert "already confirmed" in again.text
    assert len(patches(bot)) == 1 and ld_of(bot).served_weight() == 10_000
    assert row["before"]["served"] == 0
