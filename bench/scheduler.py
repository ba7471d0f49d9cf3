"""Scheduler throughput: 1,000 launches whose milestones all come due within the same minute.

Plans ``--launches`` launches (each its own channel on the sandbox FakeSlack, on loopback)
through the timeline service, with a one-milestone plan (T-0: health gate + ramp button,
the heaviest post). Their T-0s are spread evenly over ``--spread`` seconds (60 = one minute;
0 = all at the same instant, a pure burst). The real scheduler loop(s) then post them, using
the system clock; each milestone's delay is ``posted - due`` as recorded in SQLite.

Prints p50/p99/max delay from due to posted, and posts per second over the busy period.
``--processes 2`` runs a second scheduler on the same database (the claims keep it to one
post per milestone; the bench checks that too).

    python bench/scheduler.py [--launches 1000] [--spread 60] [--concurrency 16] [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import configure_domains  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.sandbox.world import SANDBOX_OPERATOR, Sandbox  # noqa: E402
from bot.services import Services  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """[timeline]
post_concurrency = {concurrency}
tick_seconds = 1
{disabled}
"""


class ShiftedClock(SystemClock):
    """The system clock, moved back while planning (the plan refuses T-0s closer than its lead)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        config = Path(tmp) / "cio.toml"
        disabled = "\n".join(f'[[timeline.milestones]]\nkey = "{k}"\nenabled = false'
                             for k in ("t-24h", "t-12h", "t-1h", "t+1h", "t+2h", "t+24h"))
        config.write_text(CONFIG.format(concurrency=args.concurrency, disabled=disabled))
        async with Sandbox() as sandbox:
            channels = [f"C{i:09d}" for i in range(args.launches)]
            for c in channels:
                sandbox.slack.channels[c] = {"id": c, "name": c.lower(), "is_member": True}
            env = {**sandbox.env(), "CIO_DB_PATH": str(db), "CIO_CONFIG": str(config)}
            env.pop("CIO_LAUNCH_CHANNEL")  # one launch per channel
            settings = Settings.from_env(env)
            clock = ShiftedClock()
            services = configure_domains(Services.build(settings, clock=clock))
            timeline = services.timeline
            assert timeline is not None

            # plan: pretend it is 10 minutes earlier, so T-0s a few seconds from the real now pass the
            # plan's lead-time check
            start = datetime.now(UTC) + timedelta(seconds=5 + args.launches * 0.004)
            clock.shift = timedelta(minutes=-10)
            t_plan = time.perf_counter()
            for i, channel in enumerate(channels):
                due = start + timedelta(seconds=args.spread * i / max(1, args.launches))
                await timeline.plan(channel_id=channel, user_id=SANDBOX_OPERATOR,
                                    text=due.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
            plan_s = time.perf_counter() - t_plan
            clock.shift = timedelta(0)
            sandbox.slack.messages.clear()
            remaining = (start - datetime.now(UTC)).total_seconds()
            print(f"planned {args.launches} launches in {plan_s:.1f} s; first T-0 in {remaining:.1f} s, "
                  f"spread over {args.spread:g} s; {args.processes} scheduler process(es), "
                  f"{args.concurrency} concurrent posts each", flush=True)

            others = []
            for _ in range(args.processes - 1):
                proc_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "CIO_LOG_LEVEL": "WARNING"}
                proc_env.pop("CIO_LAUNCH_CHANNEL", None)
                others.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.timeline_worker", env=proc_env, cwd=str(ROOT),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
            loop = asyncio.create_task(timeline.run())
            deadline = time.monotonic() + remaining + args.spread + 120
            while time.monotonic() < deadline:
                done = services.store.query(
                    "SELECT count(*) AS n FROM timeline_milestones WHERE message_ts IS NOT NULL")[0]["n"]
                if done >= args.launches:
                    break
                await asyncio.sleep(0.2)
            loop.cancel()
            for proc in others:
                proc.terminate()
                await proc.wait()
            rows = services.store.query(
                "SELECT due_ts, posted_ts, claimed_by FROM timeline_milestones WHERE message_ts IS NOT NULL")
            await services.aclose()
            delays = [r["posted_ts"] - r["due_ts"] for r in rows]
            posts = [m for m in sandbox.slack.messages if m.kind == "message"]
            per_channel = Counter(m.channel for m in posts)
            busy = max(r["posted_ts"] for r in rows) - min(r["due_ts"] for r in rows)
            print(f"posted {len(rows)}/{args.launches} milestones; Slack received {len(posts)} posts, "
                  f"{sum(1 for n in per_channel.values() if n > 1)} channels with more than one")
            print(f"due -> posted: p50 {percentile(delays, 50) * 1000:.0f} ms, p99 {percentile(delays, 99) * 1000:.0f} ms, "
                  f"max {max(delays) * 1000:.0f} ms, mean {statistics.mean(delays) * 1000:.0f} ms")
            print(f"throughput: {len(rows) / busy:.0f} posts/s over the {busy:.1f} s from first due to last posted"
                  + (f" (only {len(rows) / args.spread:.0f}/s were due on average)" if args.spread else ""))
            by = Counter(r["claimed_by"].split(":")[1] for r in rows)
            print("posts per scheduler process (pid): " + ", ".join(f"{k}: {v}" for k, v in by.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which T-0s are spread")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
