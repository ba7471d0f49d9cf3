"""Parity with checkdmarc (test-only dependency) on the SPF and DMARC cases it covers.

Both tools read the same zone from the loopback DNS server; the valid/invalid verdicts
must agree, except for the intentional differences listed (and explained) below. For
those the test asserts that the verdicts still differ, so the list cannot go stale.

Our verdict: a record is "valid" when none of our findings for it fails or errors.
checkdmarc's verdict: ``check_spf(...)["valid"]`` / ``check_dmarc(...)["valid"]``.
checkdmarc keeps a process-wide DNS cache, cleared before every case, and is synchronous,
so it runs in a thread while the DNS server answers on the test's event loop.
"""

from __future__ import annotations

import asyncio

import checkdmarc.dmarc
import checkdmarc.spf
import checkdmarc.utils
import dns.nameserver
import dns_fixtures
import pytest

from bot.providers.dns import DnsClient
from bot.sandbox.dns import FakeDNS
from checks.base import Status
from checks.deliverability.dmarc import evaluate_dmarc
from checks.deliverability.spf import evaluate_spf

# the loopback DNS server fixture, used by name
dns_server = dns_fixtures.dns_server

HOSTS = {
    "example.com": {"MX": ["10 mx.example.com."], "A": ["192.0.2.1"]},
    "mx.example.com": {"A": ["192.0.2.13"]},
    "host.example.com": {"A": ["192.0.2.10"]},
    "nospf.example.com": {"TXT": ["some-verification=123"]},
    "l2.example.com": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    "loop-a.example.com": {"TXT": ["v=spf1 include:loop-b.example.com -all"]},
    "loop-b.example.com": {"TXT": ["v=spf1 include:loop-a.example.com -all"]},
    "bigmx.example.com": {"MX": [f"{i} mx{i}.example.com." for i in range(11)]},
}
TEN = "v=spf1 a mx " + "a:host.example.com " * 8 + "-all"
ELEVEN = "v=spf1 a mx " + "a:host.example.com " * 9 + "-all"

SPF_CASES: dict[str, object] = {
    "valid": "v=spf1 ip4:192.0.2.0/24 -all",
    "softfail": "v=spf1 ip4:192.0.2.0/24 include:l2.example.com ~all",
    "neutral_all": "v=spf1 ip4:192.0.2.1 ?all",
    "no_all": "v=spf1 ip4:192.0.2.1",
    "plus_all": "v=spf1 +all",
    "two_records": ["v=spf1 -all", "v=spf1 ~all"],
    "bad_ip4": "v=spf1 ip4:300.1.1.1 -all",
    "unknown_mechanism": "v=spf1 foo:bar -all",
    "strings_joined_without_space": ("v=spf1 ip4:192.0.2.2", "-all"),
    "strings_joined_with_space": ("v=spf1 ip4:192.0.2.2 ", "-all"),
    "three_void_lookups": "v=spf1 a:v1.example.com a:v2.example.com mx:v3.example.com -all",
    "include_without_spf": "v=spf1 include:nospf.example.com -all",
    "ptr": "v=spf1 ptr -all",
    "macro_c_outside_exp": "v=spf1 exists:%{c}.example.com -all",
    "redirect_with_all": "v=spf1 ip4:192.0.2.1 redirect=l2.example.com -all",
    "redirect": "v=spf1 redirect=l2.example.com",
    "ten_lookups": TEN,
    "eleven_lookups": ELEVEN,
    "include_loop": "v=spf1 include:loop-a.example.com -all",
    "eleven_mx_names": "v=spf1 mx:bigmx.example.com -all",
}

#: case -> why our verdict differs from checkdmarc's
SPF_DIFFERENCES = {
    "plus_all": (
        "checkdmarc accepts +all as syntactically valid; we fail it because it authorises "
        "every host on the internet to send as the domain, which no launch should ship."
    ),
}

DMARC_CASES: dict[str, object] = {
    "reject": "v=DMARC1; p=reject",
    "quarantine": "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com",
    "none": "v=DMARC1; p=none",
    "no_p": "v=DMARC1; rua=mailto:dmarc@example.com",
    "v_not_first": "p=reject; v=DMARC1",
    "v_lower_case": "v=dmarc1; p=reject",
    "invalid_p": "v=DMARC1; p=block",
    "invalid_adkim": "v=DMARC1; p=reject; adkim=x",
    "duplicate_tag": "v=DMARC1; p=reject; p=none",
    "unknown_tag": "v=DMARC1; p=reject; policy=reject",
    "pct": "v=DMARC1; p=quarantine; pct=25",
    "two_records": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "missing": None,
    "external_rua_unauthorised": "v=DMARC1; p=reject; rua=mailto:agg@reports.example.net",
}

DMARC_DIFFERENCES = {
    "external_rua_unauthorised": (
        "checkdmarc only warns when an external report destination has not published "
        "<domain>._report._dmarc.<destination>; we report an advisory (non-blocking) failure "
        "because receivers then never send the aggregate reports the operator relies on."
    ),
}


def nameservers(server: FakeDNS) -> list[dns.nameserver.Nameserver]:
    return [dns.nameserver.Do53Nameserver("127.0.0.1", port=server.port)]


def ours_valid(results: list) -> bool:
    return not any(r.status in (Status.FAIL, Status.ERROR) for r in results)


@pytest.mark.parametrize("case", list(SPF_CASES))
async def test_spf_verdict_matches_checkdmarc(dns_server: FakeDNS, case: str) -> None:
    record = SPF_CASES[case]
    zone = dict(HOSTS)
    zone["example.com"] = {
        **HOSTS["example.com"],
        "TXT": record if isinstance(record, list) else [record],
    }
    dns_server.load(zone)
    checkdmarc.utils.DNS_CACHE.clear()
    ours = ours_valid(
        (await evaluate_spf("example.com", DnsClient([dns_server.nameserver], timeout=1.0))).results
    )
    theirs = await asyncio.to_thread(
        checkdmarc.spf.check_spf, "example.com", nameservers=nameservers(dns_server), timeout=1.0
    )
    if case in SPF_DIFFERENCES:
        assert ours != theirs["valid"], (
            f"listed difference no longer holds: {SPF_DIFFERENCES[case]}"
        )
    else:
        assert ours == theirs["valid"], f"{case}: ours={ours} checkdmarc={theirs}"


@pytest.mark.parametrize("case", list(DMARC_CASES))
async def test_dmarc_verdict_matches_checkdmarc(dns_server: FakeDNS, case: str) -> None:
    record = DMARC_CASES[case]
    zone = dict(HOSTS)
    zone["example.com"] = {**HOSTS["example.com"], "TXT": ["v=spf1 -all"]}
    if record is not None:
        zone["_dmarc.example.com"] = {"TXT": record if isinstance(record, list) else [record]}
    dns_server.load(zone)
    checkdmarc.utils.DNS_CACHE.clear()
    ours = ours_valid(
        (
            await evaluate_dmarc("example.com", DnsClient([dns_server.nameserver], timeout=1.0))
        ).results
    )
    theirs = await asyncio.to_thread(
        checkdmarc.dmarc.check_dmarc,
        "example.com",
        nameservers=nameservers(dns_server),
        timeout=1.0,
    )
    if case in DMARC_DIFFERENCES:
        assert ours != theirs["valid"], (
            f"listed difference no longer holds: {DMARC_DIFFERENCES[case]}"
        )
    else:
        assert ours == theirs["valid"], f"{case}: ours={ours} checkdmarc={theirs}"


def test_every_listed_difference_is_a_case() -> None:
    assert set(SPF_DIFFERENCES) <= set(SPF_CASES)
    assert set(DMARC_DIFFERENCES) <= set(DMARC_CASES)
