"""The DNS checks inside the readiness engine: `/cio check deliverability` and `cio-bot check`."""

from __future__ import annotations

import asyncio
import json
import sys

from bot.sandbox.dns import SANDBOX_DKIM_SELECTOR, SANDBOX_DOMAIN


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, env={"PATH": "/usr/bin:/bin", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_cli_checks_any_domain_over_the_nameserver_given(sandbox):
    host, port = sandbox.dns.nameserver
    code, out, err = await _cli("check", "deliverability", "--domain", SANDBOX_DOMAIN,
                                "--dkim-selector", SANDBOX_DKIM_SELECTOR, "--nameserver", f"{host}:{port}",
                                "--format", "json")
    report = json.loads(out)
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["deliverability.spf.record"]["status"] == "pass"
    assert by_id["deliverability.dmarc.policy"]["status"] == "pass"
    assert by_id[f"deliverability.dkim.{SANDBOX_DKIM_SELECTOR}"]["status"] == "pass", by_id
    assert code == (0 if report["verdict"] == "go" else 1)
    assert sandbox.dns.queries_for(SANDBOX_DOMAIN, "TXT"), "the sandbox DNS server was asked"


async def test_cli_refuses_domain_flags_with_other_categories():
    code, _, err = await _cli("check", "credentials", "--domain", "example.com")
    assert code == 2
    assert "check deliverability" in err


async def test_slack_check_runs_the_dns_group_against_the_sandbox_zone(bot):
    answer = await bot.command("/cio check deliverability")
    assert answer.status == 200
    run = bot.store.checks.last_run()
    assert run is not None
    statuses = {r["id"]: r["status"] for r in bot.store.checks.results(run["id"])}
    assert statuses["deliverability.spf.record"] == "pass"
    assert statuses["deliverability.dmarc.record"] == "pass"
    assert statuses[f"deliverability.dkim.{SANDBOX_DKIM_SELECTOR}"] == "pass"
    assert statuses["deliverability.webhooks"] == "pass"
    final = bot.slack.channel_messages(bot.channel)[-1]
    assert "deliverability" in json.dumps(final.blocks)
