"""Return path (Customer.io sending subdomain), bulk-sender summary, and the CLI."""

from __future__ import annotations

import asyncio
import io
import json

import dns_fixtures
import pytest
from dkim_keys import rsa_p
from dns_fixtures import RunChecks

from bot.config import ConfigError, Settings
from bot.deliverability import expectation_from_settings
from bot.deliverability_cli import main
from bot.sandbox.dns import FakeDNS
from checks.base import Status
from checks.deliverability import ReturnPathExpectation, is_go

# the loopback DNS server fixtures, used by name
dns_server = dns_fixtures.dns_server
run_checks = dns_fixtures.run_checks

EXPECTED = ReturnPathExpectation(
    return_path_domain="cio123.example.com",
    spf_includes=("spf.esp.example.net",),
    mx_hosts=("mx1.esp.example.net", "mx2.esp.example.net"),
    dkim_domain="cio123.example.com",
)


def good_zone() -> dict:
    return {
        "example.com": {
            "TXT": ["v=spf1 include:_spf.example.com ~all"],
            "MX": ["10 mx.example.com."],
        },
        "_spf.example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"]},
        "cio123.example.com": {
            "TXT": ["v=spf1 include:spf.esp.example.net ~all"],
            "MX": ["10 mx1.esp.example.net.", "20 mx2.esp.example.net."],
        },
        "spf.esp.example.net": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
        "krs._domainkey.cio123.example.com": {"TXT": [f"v=DKIM1; k=rsa; p={rsa_p(2048)}"]},
    }


async def test_everything_configured_passes_and_bulk_sender_met(run_checks: RunChecks) -> None:
    f = await run_checks(good_zone(), selectors=["krs"], expected=EXPECTED)
    f.assert_finding("deliverability.return_path.spf", Status.PASS, "RFC 7208")
    r = f.assert_finding("deliverability.return_path.mx", Status.PASS, "RFC 5321 §5.1")
    assert "mx1.esp.example.net" in r.found
    bulk = f.assert_finding("deliverability.bulk_sender", Status.PASS, "Gmail/Yahoo")
    assert bulk.summary.startswith("Met:") and bulk.data["not_met"] == []
    assert is_go(f.results)
    assert all(r.category == "deliverability" for r in f.results)


async def test_missing_spf_include_on_return_path_fails(run_checks: RunChecks) -> None:
    z = good_zone()
    z["cio123.example.com"]["TXT"] = ["v=spf1 include:_spf.example.com ~all"]
    f = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    r = f.assert_finding("deliverability.return_path.spf", Status.FAIL, "RFC 7208 §5.2")
    assert "spf.esp.example.net" in r.summary and "include:spf.esp.example.net" in r.fix


async def test_return_path_without_spf_record_fails(run_checks: RunChecks) -> None:
    z = good_zone()
    del z["cio123.example.com"]["TXT"]
    f = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    f.assert_finding("deliverability.return_path.spf", Status.FAIL, "RFC 7208 §4.5")
    bulk = f.assert_finding("deliverability.bulk_sender", Status.FAIL, "Gmail/Yahoo")
    assert "SPF (cio123.example.com)" in bulk.summary


async def test_missing_mx_host_fails_and_extra_warns(run_checks: RunChecks) -> None:
    z = good_zone()
    z["cio123.example.com"]["MX"] = ["10 mx1.esp.example.net."]
    f = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    r = f.assert_finding("deliverability.return_path.mx", Status.FAIL, "RFC 5321 §5.1")
    assert "mx2.esp.example.net" in r.summary
    z["cio123.example.com"]["MX"] = [
        "10 mx1.esp.example.net.",
        "20 mx2.esp.example.net.",
        "30 old.example.org.",
    ]
    g = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    g.assert_finding("deliverability.return_path.mx", Status.WARN, "RFC 5321 §5.1")


async def test_return_path_nxdomain_fails_both(run_checks: RunChecks) -> None:
    z = good_zone()
    del z["cio123.example.com"]
    # with a DKIM key below it the name would still exist (empty non-terminal: NODATA)
    del z["krs._domainkey.cio123.example.com"]
    f = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    r = f.assert_finding("deliverability.return_path.mx", Status.FAIL, "RFC 5321 §5.1")
    assert "NXDOMAIN" in r.summary
    f.assert_finding("deliverability.return_path.spf", Status.FAIL, "RFC 7208 §4.3")


async def test_null_mx_fails(run_checks: RunChecks) -> None:
    z = good_zone()
    z["cio123.example.com"]["MX"] = ["0 ."]
    f = await run_checks(z, selectors=["krs"], expected=EXPECTED)
    f.assert_finding("deliverability.return_path.mx", Status.FAIL, "RFC 7505")


async def test_servfail_on_return_path_mx_is_an_error(run_checks: RunChecks) -> None:
    f = await run_checks(
        good_zone(), selectors=["krs"], expected=EXPECTED, servfail=["cio123.example.com"]
    )
    r = f.assert_finding("deliverability.return_path.mx", Status.ERROR, "RFC 5321")
    assert "MX cio123.example.com" in r.summary
    f.assert_finding("deliverability.return_path.spf", Status.ERROR, "RFC 7208")
    assert not is_go(f.results)


async def test_not_configured_is_skipped(run_checks: RunChecks) -> None:
    f = await run_checks(good_zone(), selectors=["krs"])
    r = f.assert_finding("deliverability.return_path", Status.SKIP, "RFC 7208")
    assert "return_path_domain" in r.fix


def test_expectation_from_toml_table() -> None:
    settings = Settings(
        file={
            "deliverability": {
                "return_path_domain": "CIO123.Example.com.",
                "return_path_spf_include": "spf.esp.example.net",
                "return_path_mx": ["mx1.esp.example.net", "mx2.esp.example.net."],
            }
        }
    )
    exp = expectation_from_settings(settings)
    assert exp == ReturnPathExpectation(
        "cio123.example.com",
        ("spf.esp.example.net",),
        ("mx1.esp.example.net", "mx2.esp.example.net"),
        None,
    )
    assert expectation_from_settings(Settings()) is None
    with pytest.raises(ConfigError, match="unknown key"):
        expectation_from_settings(Settings(file={"deliverability": {"return_path": "x"}}))
    with pytest.raises(ConfigError, match="return_path_mx"):
        expectation_from_settings(Settings(file={"deliverability": {"return_path_mx": 5}}))


# -- CLI -----------------------------------------------------------------------------------
def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, env={}, out=out)
    return code, out.getvalue()


async def test_cli_json_go(dns_server: FakeDNS) -> None:
    dns_server.load(good_zone())
    argv = [
        "check",
        "deliverability",
        "--domain",
        "example.com",
        "--dkim-selector",
        "krs",
        "--nameserver",
        f"127.0.0.1:{dns_server.port}",
        "--return-path-domain",
        "cio123.example.com",
        "--return-path-spf-include",
        "spf.esp.example.net",
        "--return-path-mx",
        "mx1.esp.example.net",
        "--return-path-mx",
        "mx2.esp.example.net",
        "--format",
        "json",
        "--timeout",
        "0.5",
    ]
    # DKIM lives on the return-path domain here: give the full selector name
    argv[5] = "krs._domainkey.cio123.example.com"
    code, out = await asyncio.to_thread(cli, argv)
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "go"
    assert {r["id"] for r in doc["results"]} >= {
        "deliverability.spf.lookup_limit",
        "deliverability.bulk_sender",
    }
    assert doc["dns"]["queries"] > 5


async def test_cli_text_no_go(dns_server: FakeDNS) -> None:
    dns_server.load({"example.com": {"TXT": ["v=spf1 +all"]}})
    code, out = await asyncio.to_thread(
        cli,
        [
            "check",
            "deliverability",
            "--domain",
            "example.com",
            "--nameserver",
            f"127.0.0.1:{dns_server.port}",
            "--timeout",
            "0.5",
        ],
    )
    assert code == 1
    assert "[FAIL ] deliverability.spf.all" in out and "rule:  RFC 7208 §5.1" in out
    assert "Verdict: NO-GO" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "deliverability"],
        ["check", "deliverability", "--domain", "not a domain"],
        ["check", "deliverability", "--domain", "example.com", "--nameserver", "127.0.0.1:99999"],
        ["check", "deliverability", "--domain", "example.com", "--format", "xml"],
    ],
)
def test_cli_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli(argv)
    assert code == 2
    assert capsys.readouterr().err


async def test_cli_runs_inside_an_existing_event_loop(dns_server: FakeDNS) -> None:
    from bot.deliverability_cli import run_cli

    dns_server.load(good_zone())
    out = io.StringIO()
    code = await run_cli(
        [
            "--domain",
            "example.com",
            "--nameserver",
            f"127.0.0.1:{dns_server.port}",
            "--format",
            "json",
        ],
        env={"CIO_DKIM_SELECTORS": "krs._domainkey.cio123.example.com"},
        out=out,
    )
    doc = json.loads(out.getvalue())
    assert code == 0 and doc["verdict"] == "go"
    assert any(
        r["id"] == "deliverability.dkim.krs" and r["status"] == "pass" for r in doc["results"]
    )


async def test_run_from_settings_uses_the_configured_domain_selectors_and_table(
    dns_server: FakeDNS,
) -> None:
    from bot.deliverability import run_from_settings

    dns_server.load(good_zone())
    settings = Settings(
        sending_domain="example.com",
        dkim_selectors=("krs",),
        dns_nameservers=(dns_server.nameserver,),
        file={
            "deliverability": {
                "return_path_domain": "cio123.example.com",
                "return_path_spf_include": "spf.esp.example.net",
                "return_path_mx": ["mx1.esp.example.net", "mx2.esp.example.net"],
            }
        },
    )
    run = await run_from_settings(settings, timeout=0.5)
    assert is_go(run.results) and run.stats.query_count > 0
    statuses = {r.id: r.status for r in run.results}
    assert statuses["deliverability.dkim.krs"] is Status.PASS  # looked up under the return path
    assert statuses["deliverability.return_path.mx"] is Status.PASS
    with pytest.raises(ConfigError, match="CIO_SENDING_DOMAIN"):
        await run_from_settings(Settings())
