"""Rollback speed: from the confirmation click to the verified incident notice.

Runs the real bot (signed requests over loopback) against the sandbox with
``--latency`` seconds added to every LaunchDarkly call, ramps to 50%, asks for a rollback,
clicks "Roll back now" and stops the clock when the incident notice lands in the launch
channel. Prints each run, the LaunchDarkly calls made (and why each is needed), and the
time the bot spends beyond the calls' own latency. Goal: under 1 s plus that latency.

    python bench/rollback.py [--runs 5] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sandbox.harness import BotHarness  # noqa: E402
from bot.sandbox.slack import Message  # noqa: E402
from bot.sandbox.world import Sandbox  # noqa: E402

WHY = {
    "GET": "read the flag as it is now (before-state for the record, kill plan)",
    "PATCH": "turnFlagOff (semantic patch)",
    "GET#2": "read back: compare with what was asked, feed the SDK evaluation",
}


def confirm_button(message: Message) -> bool:
    return any(e.get("action_id") == "traffic_confirm" for b in message.blocks for e in b.get("elements", [])
               if isinstance(e, dict))


async def one_run(bot: BotHarness, latency: float) -> dict[str, object]:
    ld = bot.sandbox.launchdarkly
    ld.latency = 0.0
    ld.set_rollout(50)  # the state being rolled back from
    asked = await bot.command("/cio rollback bench: bounce spike")
    shown = next(m for m in reversed(asked.responses) if confirm_button(m))
    landed = asyncio.get_running_loop().create_future()

    def watch(m: Message) -> None:
        if m.kind == "message" and "Incident" in m.text and not landed.done():
            landed.set_result(time.perf_counter())

    bot.slack.watchers.append(watch)
    before = len(ld.requests)
    ld.latency = latency
    started = time.perf_counter()
    click = asyncio.create_task(bot.click(shown, "traffic_confirm"))
    finished = await asyncio.wait_for(landed, 30)
    await click
    bot.slack.watchers.remove(watch)
    ld.latency = 0.0
    calls = [r.method for r in ld.requests[before:]]
    row = bot.store.traffic.history(1, 1)[0]
    assert row["status"] == "verified" and ld.env()["on"] is False, row
    ld.set_on(True)
    return {"total_ms": (finished - started) * 1000, "calls": calls, "durations": row["durations"]}


async def main(runs: int, latency: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "cio.toml"
        config.write_text("[traffic]\nmin_soak_minutes = 0\n")
        async with Sandbox() as sandbox:
            bot = await BotHarness.start(Path(tmp) / "bench.db", env={"CIO_CONFIG": str(config)}, sandbox=sandbox)
            try:
                await bot.command("/cio status")  # warm up: Slack auth.test, first LaunchDarkly connection
                results = [await one_run(bot, latency) for _ in range(runs)]
            finally:
                await bot.stop()
    print(f"rollback: confirmation click -> verified incident notice, {latency * 1000:.0f} ms added per "
          f"LaunchDarkly call, {runs} runs")
    for i, r in enumerate(results, 1):
        d = r["durations"]
        parts = ", ".join(f"{k.removesuffix('_ms')} {v:.0f}" for k, v in d.items() if k != "total_ms")
        print(f"  run {i}: {r['total_ms']:6.0f} ms   calls {' '.join(r['calls'])}   ({parts} ms)")
    totals = [float(r["total_ms"]) for r in results]
    n_calls = len(results[0]["calls"])
    own = n_calls * latency * 1000
    print(f"LaunchDarkly calls per rollback: {n_calls}")
    for i, method in enumerate(results[0]["calls"]):
        key = "GET#2" if method == "GET" and i else method
        print(f"  {i + 1}. {method:5} {WHY.get(key, '')}")
    print(f"median {statistics.median(totals):.0f} ms, max {max(totals):.0f} ms; the calls' own latency "
          f"{own:.0f} ms; the bot's own time (median) {statistics.median(totals) - own:.0f} ms "
          f"(goal < 1000 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.latency))
