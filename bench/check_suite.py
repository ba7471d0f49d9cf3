"""Bench: the full readiness suite with every provider call 200 ms slower.

Starts the sandbox (Slack, Customer.io, the documentation host), adds ``--latency``
seconds to every request each fake answers, runs ``/cio check``'s path
(``ReadinessService.run_in_channel``: first message, progressive updates, final report)
and prints:

- the suite's wall time and the sum of the checks' own times, and their ratio;
- the slowest single check, and wall / slowest (goal: <= 1.5);
- the time until the first Slack message was posted (goal: < 1 s).

Usage: python bench/check_suite.py [--latency 0.2] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings  # noqa: E402
from bot.providers.slack import SlackGateway  # noqa: E402
from bot.readiness import ReadinessService  # noqa: E402
from bot.sandbox.world import Sandbox  # noqa: E402
from bot.store import Store  # noqa: E402

CATALOG = """\
identify:
  - id: user-123
    attributes: {email: ada@example.com, created_at: 1764547200, plan: pro}
events:
  - name: order_completed
    timestamp: 1764547200
    data: {order_id: A-1, total: 42.5}
"""


def write_config(directory: Path, web_url: str) -> Path:
    (directory / "events.yaml").write_text(CATALOG)
    config = directory / "cio.toml"
    config.write_text(
        '[checks]\nevent_catalog = "events.yaml"\n\n'
        f'[documentation]\nrunbook_url = "{web_url}/runbook"\nevent_catalog_url = "{web_url}/events"\n'
        f'escalation_url = "{web_url}/escalation"\n\n'
        '[rollback]\nbackup_messaging = "old ESP"\nnotification_plan = "#launch + support leads"\n\n'
        '[[alerts.escalation]]\nname = "on-call"\ndelay_minutes = 10\nmentions = ["U0ONCALL"]\n'
    )
    return config


async def one_run(sandbox: Sandbox, directory: Path, n: int) -> dict[str, float | str]:
    public = "https://cio-bot.example.test"
    for ws in sandbox.customerio.workspaces:
        for hook in ws.reporting_webhooks:
            hook["endpoint"] = public + "/webhooks/customerio"
    env = sandbox.overlay({"CIO_CONFIG": str(write_config(directory, sandbox.web.url)),
                           "CIO_PUBLIC_URL": public, "CIO_SENDING_DOMAIN": "example.com",
                           "CIO_DB_PATH": str(directory / f"bench{n}.db")})
    settings = Settings.from_env(env)
    store = Store(settings.db_path)
    assert settings.slack_bot_token is not None
    slack = SlackGateway(settings.slack_bot_token.reveal(), settings.slack_api_url)
    try:
        service = ReadinessService(settings, store, slack=slack)
        report = await service.run_in_channel(settings.launch_channel or "C0LAUNCH01", actor="bench",
                                              source="bench")
    finally:
        session = getattr(slack.client, "session", None)
        if session is not None:
            await session.close()
        store.close()
    own = sum(r.duration_ms for r in report.results)
    slowest = max(report.results, key=lambda r: r.duration_ms)
    return {"wall": report.wall_ms, "own": own, "slowest": slowest.duration_ms, "slowest_id": slowest.id,
            "first": report.first_message_ms or 0.0, "checks": len(report.results),
            "verdict": report.verdict,
            "updates": len(sandbox.slack.calls("/api/chat.update"))}


async def main(latency: float, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
        async with Sandbox() as sandbox:
            for server in sandbox.servers:
                server.latency = latency
            print(f"readiness suite, every provider call +{latency * 1000:.0f} ms, {runs} run(s)")
            for n in range(runs):
                sandbox.slack.requests.clear()
                figures = await one_run(sandbox, Path(tmp), n)
                wall, own, slowest = figures["wall"], figures["own"], figures["slowest"]
                assert isinstance(wall, float) and isinstance(own, float) and isinstance(slowest, float)
                print(f"run {n + 1}: {figures['checks']} checks, verdict {figures['verdict']}, "
                      f"{figures['updates']} message updates")
                print(f"  wall time                 {wall:8.0f} ms")
                print(f"  sum of checks' own times  {own:8.0f} ms")
                print(f"  ratio sum / wall          {own / wall:8.1f} x")
                print(f"  slowest check             {slowest:8.0f} ms  ({figures['slowest_id']})")
                print(f"  wall / slowest            {wall / slowest:8.2f}    (goal <= 1.5)")
                print(f"  first Slack message after {figures['first']:8.0f} ms  (goal < 1000)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.runs))
