"""Benchmark: every deliverability check for one domain, 50 ms added to each DNS answer.

    python bench/dns_checks.py

Serves a realistic zone (SPF with nested includes and a redirect, DMARC with an external
report destination, two DKIM selectors one of them delegated by CNAME, the Customer.io
return path) from the loopback test DNS server, runs ``check_domain`` once and prints the
wall time, the queries issued, the distinct names, and the sum of per-query latencies
against the wall time (how much ran concurrently). Fails if any (name, type) was queried
twice in the run.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bot.providers.dns import DnsClient  # noqa: E402
from bot.sandbox.dns import FakeDNS  # noqa: E402
from checks.base import Status  # noqa: E402
from checks.deliverability import ReturnPathExpectation, check_domain  # noqa: E402

DELAY = 0.050
DOMAIN = "example.com"


def dkim_p() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def zone() -> dict:
    p = dkim_p()
    return {
        "example.com": {
            "TXT": [
                "v=spf1 include:_spf.example.com include:_spf.crm.example.net mx a:out.example.com ~all"
            ],
            "MX": ["10 mx1.example.com.", "20 mx2.example.com."],
        },
        "out.example.com": {"A": ["192.0.2.25"]},
        "_spf.example.com": {
            "TXT": ["v=spf1 ip4:192.0.2.0/24 include:_netblocks.example.com -all"]
        },
        "_netblocks.example.com": {"TXT": ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"]},
        "_spf.crm.example.net": {"TXT": ["v=spf1 redirect=_spf2.crm.example.net"]},
        "_spf2.crm.example.net": {"TXT": ["v=spf1 ip4:203.0.113.0/24 -all"]},
        "_dmarc.example.com": {
            "TXT": [
                "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com,mailto:agg@reports.example.org"
            ]
        },
        "example.com._report._dmarc.reports.example.org": {"TXT": ["v=DMARC1"]},
        "krs._domainkey.cio123.example.com": {"TXT": [f"v=DKIM1; k=rsa; p={p}"]},
        "s2._domainkey.cio123.example.com": {"CNAME": ["s2.dkim.esp.example.net."]},
        "s2.dkim.esp.example.net": {"TXT": [f"v=DKIM1; k=rsa; p={p}"]},
        "cio123.example.com": {
            "TXT": ["v=spf1 include:spf.esp.example.net ~all"],
            "MX": ["10 mxa.esp.example.net.", "20 mxb.esp.example.net."],
        },
        "spf.esp.example.net": {"TXT": ["v=spf1 ip4:198.51.100.128/25 -all"]},
    }


async def main() -> int:
    expected = ReturnPathExpectation(
        return_path_domain="cio123.example.com",
        spf_includes=("spf.esp.example.net",),
        mx_hosts=("mxa.esp.example.net", "mxb.esp.example.net"),
        dkim_domain="cio123.example.com",
    )
    async with FakeDNS(delay=DELAY) as server:
        server.load(zone())
        client = DnsClient([server.nameserver], timeout=2.0)
        start = time.perf_counter()
        results = await check_domain(
            DOMAIN, resolver=client, dkim_selectors=["krs", "s2"], expected=expected
        )
        wall = time.perf_counter() - start

    stats = client.stats
    latency = stats.total_latency
    by_status = Counter(r.status.value for r in results)
    print(f"deliverability checks for {DOMAIN}, {DELAY * 1000:.0f} ms added per DNS answer")
    print(
        f"  findings:            {len(results)} ({', '.join(f'{k} {v}' for k, v in sorted(by_status.items()))})"
    )
    print(f"  wall time:           {wall * 1000:.0f} ms")
    print(
        f"  queries issued:      {stats.query_count} (lookups asked by the checks: {stats.lookups})"
    )
    print(f"  distinct names:      {stats.distinct_names}")
    print(f"  sum of latencies:    {latency * 1000:.0f} ms")
    print(f"  concurrency:         {latency / wall:.1f}x (sum of latencies / wall time)")
    print(f"  sequential rounds:   ~{wall / DELAY:.1f} x {DELAY * 1000:.0f} ms")

    duplicates = stats.duplicates()
    served = Counter((q.name, q.rdtype, q.transport) for q in server.log)
    served_twice = [key for key, n in served.items() if n > 1]
    assert not duplicates, f"queried twice in one run: {duplicates}"
    assert not served_twice, f"the server saw the same question twice: {served_twice}"
    assert all(r.status is not Status.ERROR for r in results), [
        r.summary for r in results if r.status is Status.ERROR
    ]
    print("  OK: no (name, type) queried twice")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
