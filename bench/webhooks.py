"""Bench: signed Customer.io webhooks over loopback, as fast as the server takes them.

Runs the real bot (``cio-bot serve`` against the sandbox fakes, in its own process) and,
in the same run, a bare aiohttp handler that answers 200 (also in its own process). Client
processes (``--clients``) keep ``--connections`` keep-alive connections busy for
``--seconds`` each, signing every event (``X-CIO-Signature``) with a fresh timestamp.

Prints events/s, p50/p99 latency, events lost (every event id the bot acknowledged with
200 must be in the store, and the counters must add up to the ids stored) and the server
process's memory (RSS) at start, during and at the end of the run, for both servers.

    python bench/webhooks.py              # 30 s per server
    python bench/webhooks.py --seconds 10 --connections 64 --clients 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"  # loopback only
GOAL_RATE = 3000
GOAL_RATIO = 0.5


# -- the bare comparison server ---------------------------------------------------------------
def bare_server(port: int) -> None:
    """An aiohttp app whose webhook handler reads the body and answers 200 (nothing else)."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "counted"})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/customerio", handler)
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


# -- the client (runs in its own process) -------------------------------------------------------
@dataclass
class ClientResult:
    acked: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0


async def _client(port: int, key: bytes, seconds: float, connections: int, prefix: str) -> ClientResult:
    result = ClientResult()
    perf = time.perf_counter
    deadline = perf() + seconds
    host_header = f"Host: {HOST}:{port}\r\n"

    async def connection(n: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = 0
        try:
            while perf() < deadline:  # bounded by the deadline
                i += 1
                event_id = f"{prefix}-{n}-{i}"
                metric = "bounced" if i % 20 == 0 else "delivered" if i % 3 == 0 else "sent"
                ts = int(time.time())
                body = (f'{{"event_id":"{event_id}","object_type":"email","metric":"{metric}",'
                        f'"timestamp":{ts},"data":{{"customer_id":"c{n}-{i}","delivery_id":"d{i}",'
                        f'"email_address":"person{i}@example.com"}}}}').encode()
                sig = hmac.new(key, b"v0:%d:" % ts + body, hashlib.sha256).hexdigest()
                request = (f"POST /webhooks/customerio HTTP/1.1\r\n{host_header}"
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                           f"X-CIO-Timestamp: {ts}\r\nX-CIO-Signature: {sig}\r\n\r\n").encode() + body
                t0 = perf()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                lower = head.lower()
                at = lower.find(b"content-length:")
                length = int(lower[at + 15: lower.index(b"\r\n", at)]) if at >= 0 else 0
                if length:
                    await reader.readexactly(length)
                result.latencies_ms.append((perf() - t0) * 1000)
                if status == 200:
                    result.acked.append(event_id)
                else:
                    result.refused[status] = result.refused.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            writer.close()

    result.started = perf()
    await asyncio.gather(*(connection(n) for n in range(connections)))
    result.finished = perf()
    return result


def client_process(port: int, key: str, seconds: float, connections: int, prefix: str) -> ClientResult:
    return asyncio.run(_client(port, key.encode(), seconds, connections, prefix))


def run_clients(port: int, key: str, seconds: float, connections: int, clients: int, prefix: str,
                pid: int) -> tuple[list[ClientResult], list[float]]:
    """Run the client processes; sample the server's RSS every second meanwhile."""
    rss: list[float] = []
    ctx = get_context("spawn")
    with ProcessPoolExecutor(clients, mp_context=ctx) as pool:
        futures = [pool.submit(client_process, port, key, seconds, connections, f"{prefix}{c}")
                   for c in range(clients)]
        while not all(f.done() for f in futures):
            rss.append(rss_mb(pid))
            time.sleep(1.0)
        return [f.result() for f in futures], rss


# -- helpers -------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SystemExit("server did not start")


@dataclass
class Figures:
    name: str
    rate: float
    p50: float
    p99: float
    lost: str
    rss_start: float
    rss_end: float
    rss_series: list[float]
    refused: dict[int, int]
    errors: int
    cpu_us_per_event: float = 0.0


def figures(name: str, results: list[ClientResult], elapsed: float, rss_start: float, rss_end: float,
            rss: list[float], lost: str) -> Figures:
    latencies = sorted(x for r in results for x in r.latencies_ms)
    ok = sum(len(r.acked) for r in results)
    refused: dict[int, int] = {}
    for r in results:
        for status, n in r.refused.items():
            refused[status] = refused.get(status, 0) + n
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    return Figures(name, ok / elapsed if elapsed else 0.0, statistics.median(latencies) if latencies else 0.0,
                   p99, lost, rss_start, rss_end, rss, refused, sum(r.errors for r in results))


# -- the servers -----------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    results: list[ClientResult] = field(default_factory=list)
    warm: list[ClientResult] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rss_start: float = 0.0
    elapsed: float = 0.0
    cpu: float = 0.0

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
        if self.proc.poll() is None:
            self.proc.kill()


def start_bot(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> Server:
    config = workdir / "bench.toml"
    config.write_text(f'[alerts]\nintake_synchronous = "{args.synchronous}"\n'
                      + (f"intake_linger_ms = {args.linger_ms:g}\n" if args.linger_ms is not None else ""))
    port = free_port()
    with (workdir / "bot.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", HOST, "--port", str(port)],
            env={**os.environ, **env, "CIO_DB_PATH": str(workdir / "bench.db"), "CIO_CONFIG": str(config),
                 "CIO_LOG_LEVEL": "WARNING"},
            cwd=str(ROOT), stdout=log, stderr=log,
        )
    wait_http(port, proc)
    return Server("bot  POST /webhooks/customerio", proc, port)


def start_bare() -> Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
                            cwd=str(ROOT))
    wait_http(port, proc)
    return Server("bare aiohttp handler (200)", proc, port)


def lost_events(db: Path, servers_results: list[ClientResult]) -> str:
    """Every id acknowledged with 200 must be stored, and the counters must add up to the ids."""
    acked = {i for r in servers_results for i in r.acked}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        stored = {row[0] for row in conn.execute("SELECT event_id FROM webhook_events")}
        total = conn.execute("SELECT SUM(count) FROM metric_counts").fetchone()[0] or 0
    finally:
        conn.close()
    lost = len(acked - stored)
    return f"{lost}" + ("" if total == len(stored) else f" (counters {total} != ids {len(stored)})")


def run(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> tuple[Figures, Figures]:
    """Both servers stay up; measured rounds alternate between them so that background load on
    the machine weighs on both alike."""
    key = env["CUSTOMERIO_WEBHOOK_SIGNING_KEY"]
    bot = start_bot(args, env, workdir)
    try:
        bare = start_bare()
        try:
            for server in (bot, bare):
                server.warm, _ = run_clients(server.port, key, args.warmup, args.connections, args.clients,
                                             "warm", server.proc.pid)
                server.rss_start = rss_mb(server.proc.pid)
            share = args.seconds / args.rounds
            for n in range(args.rounds):
                for server in (bot, bare):
                    cpu_before = cpu_seconds(server.proc.pid)
                    results, rss = run_clients(server.port, key, share, args.connections, args.clients,
                                               f"r{n}-", server.proc.pid)
                    server.cpu += cpu_seconds(server.proc.pid) - cpu_before
                    server.results.extend(results)
                    server.rss.extend(rss)
                    server.elapsed += max(r.finished for r in results) - min(r.started for r in results)
            lost = lost_events(workdir / "bench.db", bot.warm + bot.results)
            out = []
            for server, lost_text in ((bot, lost), (bare, "n/a")):
                f = figures(server.name, server.results, server.elapsed, server.rss_start,
                            rss_mb(server.proc.pid), server.rss, lost_text)
                f.cpu_us_per_event = server.cpu / max(1, sum(len(r.acked) for r in server.results)) * 1e6
                out.append(f)
            return out[0], out[1]
        finally:
            bare.stop()
    finally:
        bot.stop()


async def with_sandbox(args: argparse.Namespace) -> tuple[Figures, Figures]:
    from bot.sandbox.world import Sandbox

    async with Sandbox() as sandbox:  # the bot's Slack and Customer.io (idle during the run)
        with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
            return await asyncio.to_thread(run, args, sandbox.env(), Path(tmp))


def report(bot: Figures, bare: Figures, args: argparse.Namespace) -> bool:
    print(f"\nSigned Customer.io webhooks over loopback, keep-alive, {args.clients} client process(es) x "
          f"{args.connections} connections, {args.seconds:g} s per server in {args.rounds} alternating "
          f"rounds, {os.cpu_count()} CPU(s), "
          f"intake synchronous={args.synchronous}\n")
    print(f"{'server':32} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'RSS start→end MB':>18} "
          f"{'server CPU/event':>17}")
    for f in (bot, bare):
        print(f"{f.name:32} {f.rate:>10,.0f} {f.p50:>8.2f} {f.p99:>8.2f} {f.lost:>6} "
              f"{f.rss_start:>8.1f} → {f.rss_end:<7.1f} {f.cpu_us_per_event:>12.0f} µs")
    for f in (bot, bare):
        series = " ".join(f"{x:.0f}" for x in f.rss_series)
        extra = f"; refused {f.refused}" if f.refused else ""
        extra += f"; connection errors {f.errors}" if f.errors else ""
        print(f"  RSS every second ({f.name.split()[0]}): {series} MB{extra}")
    ratio = bot.rate / bare.rate if bare.rate else 0.0
    met = bot.rate >= GOAL_RATE and ratio >= GOAL_RATIO and bot.lost == "0"
    print(f"\nbot / bare: {ratio:.0%}. Goal: >= {GOAL_RATE:,} events/s, >= {GOAL_RATIO:.0%} of bare, 0 lost: "
          f"{'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per server (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--connections", type=int, default=128,
                        help="keep-alive connections per client process (default 128)")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measured rounds per server, alternating between the two (default 3)")
    parser.add_argument("--linger-ms", type=float, default=None,
                        help="[alerts] intake_linger_ms of the bot (default: the bot's own default)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL",
                        help="SQLite synchronous mode of the intake connection (default FULL)")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    if not 0 < args.seconds <= 600 or not 1 <= args.connections <= 512 or not 1 <= args.clients <= 8 \
            or not 1 <= args.rounds <= 30:
        parser.error("--seconds 0-600, --connections 1-512, --clients 1-8, --rounds 1-30")
    bot, bare = asyncio.run(with_sandbox(args))
    report(bot, bare, args)
    print(json.dumps({"bot_events_per_s": round(bot.rate), "bare_events_per_s": round(bare.rate),
                      "lost": bot.lost, "bot_p99_ms": round(bot.p99, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
