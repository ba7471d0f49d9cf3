"""Bench: how fast `/cio` answers, against a bare Slack handler measured in the same run.

Runs the real bot (``cio-bot serve`` on the sandbox fakes, in its own process) and a bare
aiohttp handler that does the least any Slack app must (verify the request signature with
slack_sdk's SignatureVerifier, answer 200 with a text), also in its own process. Then sends
signed ``/cio`` commands over loopback, one after another and then ``--concurrency`` at a
time, and prints for each command:

- the ack: the HTTP answer Slack waits for (Slack gives up after 3 s);
- the reply: for commands answered after the ack, the time until their response_url post
  reached (the sandbox) Slack;

as p50/p99 in milliseconds, with the ack's p50 as a ratio of the bare handler's.

    python bench/commands.py                      # 200 requests per command
    python bench/commands.py --requests 50 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhooks import HOST, free_port, wait_http  # noqa: E402

from bot.sandbox.requests import signed_headers, slash_body  # noqa: E402
from bot.sandbox.slack import SANDBOX_CHANNEL, SANDBOX_SIGNING_SECRET  # noqa: E402
from bot.sandbox.world import SANDBOX_OPERATOR  # noqa: E402

#: (what is typed after /cio, what it exercises)
COMMANDS = [
    ("help", "answered inside the ack"),
    ("frobnicate", "unknown command: usage inside the ack"),
    ("ramp abc", "refused input: one sentence"),
    ("status", "store + LaunchDarkly read, replied after the ack"),
    ("timeline", "store read, answered inside the ack"),
    ("alerts", "store read, answered inside the ack"),
    ("ramp 10", "health gate + LaunchDarkly dry run, confirmation button"),
]


def bare_server(port: int) -> None:
    from aiohttp import web
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SANDBOX_SIGNING_SECRET)

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        return web.json_response({"response_type": "ephemeral", "text": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", handler)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def send(http: aiohttp.ClientSession, url: str, slack, text: str, key: str) -> tuple[float, float | None]:
    """One signed /cio command: (ack ms, reply ms or None when the ack was the answer)."""
    response_url = slack.response_url(key) if slack is not None else "http://127.0.0.1:9/none"
    body = slash_body(text, user_id=SANDBOX_OPERATOR, channel_id=SANDBOX_CHANNEL, response_url=response_url)
    headers = signed_headers(SANDBOX_SIGNING_SECRET, body)
    started = time.perf_counter()
    async with http.post(f"{url}/slack/events", data=body, headers=headers) as r:
        payload = await r.read()
        if r.status != 200:
            raise SystemExit(f"/cio {text} answered {r.status}")
    ack = (time.perf_counter() - started) * 1000
    if slack is None or payload.strip():  # answered inside the ack
        return ack, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # bounded
        if any(m.response_key == key for m in slack.responses):
            return ack, (time.perf_counter() - started) * 1000
        await asyncio.sleep(0.0005)
    raise SystemExit(f"/cio {text}: no reply within 10 s")


async def measure(url: str, slack, text: str, requests: int, concurrency: int) -> tuple[list[float], list[float]]:
    acks: list[float] = []
    replies: list[float] = []
    counter = iter(range(requests))
    async with aiohttp.ClientSession() as http:
        async def worker(w: int) -> None:
            for n in counter:
                ack, reply = await send(http, url, slack, text, f"b{w}-{n}-{time.monotonic_ns()}")
                acks.append(ack)
                if reply is not None:
                    replies.append(reply)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return acks, replies


def start(cmd: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=str(ROOT), stdout=out, stderr=out)
    wait_http(port, proc)
    return proc


async def main_async(args: argparse.Namespace) -> None:
    from bot.sandbox.world import Sandbox

    async with Sandbox() as sandbox:
        sandbox.launchdarkly.set_on(True)
        with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
            work = Path(tmp)
            bot_port, bare_port = free_port(), free_port()
            bot = start([sys.executable, "-m", "bot.cli", "serve", "--host", HOST, "--port", str(bot_port)],
                        {**sandbox.env(), "CIO_DB_PATH": str(work / "bench.db"), "CIO_LOG_LEVEL": "WARNING"},
                        work / "bot.log", bot_port)
            bare = start([sys.executable, str(ROOT / "bench" / "commands.py"), "--bare-server", str(bare_port)], {},
                         work / "bare.log", bare_port)
            try:
                bot_url, bare_url = f"http://{HOST}:{bot_port}", f"http://{HOST}:{bare_port}"
                await measure(bot_url, sandbox.slack, "help", 20, 1)  # warm-up
                await measure(bare_url, None, "help", 20, 1)
                print(f"/cio over loopback, signed; {args.requests} requests per row; {os.cpu_count()} CPU(s)")
                for concurrency in (1, args.concurrency):
                    bare_acks, _ = await measure(bare_url, None, "help", args.requests, concurrency)
                    base = statistics.median(bare_acks)
                    print(f"\n{concurrency} in flight. Bare handler (verify signature, answer 200): ack p50 "
                          f"{base:.2f} ms, p99 {pct(bare_acks, 0.99):.2f} ms")
                    print(f"  {'/cio …':<14}{'ack p50':>9}{'p99':>8}{'max':>8}{'x bare':>8}{'reply p50':>11}"
                          f"{'p99':>8}   what it exercises")
                    worst = 0.0
                    for text, what in COMMANDS:
                        acks, replies = await measure(bot_url, sandbox.slack, text, args.requests, concurrency)
                        worst = max(worst, max(acks))
                        reply = (f"{statistics.median(replies):>11.1f}{pct(replies, 0.99):>8.1f}" if replies
                                 else f"{'(in ack)':>11}{'':>8}")
                        print(f"  {text:<14}{statistics.median(acks):>9.2f}{pct(acks, 0.99):>8.2f}"
                              f"{max(acks):>8.1f}{statistics.median(acks) / base:>8.1f}{reply}   {what}")
                    print(f"  slowest ack {worst:.1f} ms of Slack's 3,000 ms")
            finally:
                for proc in (bot, bare):
                    proc.terminate()
                    proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
