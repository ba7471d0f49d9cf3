"""The DNS client against a real DNS server on loopback (UDP and TCP)."""

from __future__ import annotations

import asyncio

import dns_fixtures
from dns_fixtures import TEST_TIMEOUT

from bot.providers.dns import DnsClient
from bot.sandbox.dns import FakeDNS
from checks.deliverability.dnstypes import Outcome, Resolver

# the loopback DNS server fixtures, used by name
dns_server = dns_fixtures.dns_server

ZONE = {
    "example.com": {
        "TXT": ["v=spf1 -all", ("part one ", "part two")],
        "MX": ["10 mx.example.com."],
    },
    "a.b.example.com": {"A": ["192.0.2.1"]},
    "alias.example.com": {"CNAME": ["example.com."]},
    "alias2.example.com": {"CNAME": ["alias.example.com."]},
    "dangling.example.com": {"CNAME": ["gone.example.com."]},
    "big.example.com": {"TXT": [f"record {i} " + "x" * 250 for i in range(8)]},
}


def client(server: FakeDNS) -> DnsClient:
    return DnsClient([server.nameserver], timeout=TEST_TIMEOUT)


async def test_found_records_and_joined_strings(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    c = client(dns_server)
    assert isinstance(c, Resolver)
    txt = await c.query("example.com", "TXT")
    assert txt.outcome is Outcome.FOUND
    assert sorted(r.text for r in txt.txt) == ["part one part two", "v=spf1 -all"]
    mx = await c.query("EXAMPLE.com.", "MX")
    assert (
        mx.outcome is Outcome.FOUND
        and mx.mx[0].exchange == "mx.example.com"
        and mx.mx[0].preference == 10
    )


async def test_nxdomain_and_nodata_are_told_apart(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    c = client(dns_server)
    assert (await c.query("missing.example.com", "TXT")).outcome is Outcome.NXDOMAIN
    assert (await c.query("example.com", "A")).outcome is Outcome.NODATA
    # an empty non-terminal exists: NODATA, not NXDOMAIN
    assert (await c.query("b.example.com", "TXT")).outcome is Outcome.NODATA
    assert Outcome.NXDOMAIN.is_void and Outcome.NODATA.is_void and not Outcome.SERVFAIL.is_void


async def test_cname_chain_is_followed(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    c = client(dns_server)
    answer = await c.query("alias2.example.com", "TXT")
    assert answer.outcome is Outcome.FOUND
    assert answer.cname_chain == ("alias.example.com", "example.com")
    dangling = await c.query("dangling.example.com", "TXT")
    assert dangling.outcome is Outcome.NXDOMAIN
    assert dangling.canonical_name == "gone.example.com"


async def test_servfail_and_timeout_are_failures_naming_the_name(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE, servfail=["broken.example.com"], silent=["slow.example.com"])
    c = client(dns_server)
    broken, slow = await asyncio.gather(
        c.query("broken.example.com", "TXT"), c.query("slow.example.com", "TXT")
    )
    assert broken.outcome is Outcome.SERVFAIL and "SERVFAIL" in broken.describe_failure()
    assert "broken.example.com" in broken.describe_failure()
    assert slow.outcome is Outcome.TIMEOUT and "slow.example.com" in slow.describe_failure()
    assert broken.outcome.is_failure and slow.outcome.is_failure


async def test_truncated_udp_answer_is_retried_over_tcp(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    answer = await client(dns_server).query("big.example.com", "TXT")
    assert answer.outcome is Outcome.FOUND and len(answer.txt) == 8
    assert [q.transport for q in dns_server.queries_for("big.example.com")] == ["udp", "tcp"]


async def test_concurrent_identical_questions_share_one_query(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    dns_server.delay = 0.05
    c = client(dns_server)
    answers = await asyncio.gather(*(c.query("example.com", "TXT") for _ in range(5)))
    again = await c.query("example.com.", "txt")
    assert all(a == answers[0] for a in answers) and again == answers[0]
    assert len(dns_server.queries_for("example.com", "TXT")) == 1
    assert c.stats.query_count == 1 and c.stats.lookups == 6 and c.stats.duplicates() == []


async def test_distinct_questions_run_concurrently(dns_server: FakeDNS) -> None:
    dns_server.load(ZONE)
    dns_server.delay = 0.1
    c = client(dns_server)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(c.query(f"n{i}.example.com", "TXT") for i in range(10)))
    elapsed = loop.time() - start
    assert c.stats.query_count == 10
    assert c.stats.total_latency > 0.9
    assert elapsed < 0.5  # ten 100 ms answers in parallel, not in sequence


async def test_unreachable_nameserver_name_is_an_error_answer_not_an_exception() -> None:
    c = DnsClient([("no-such-host.invalid", 53)], timeout=TEST_TIMEOUT)
    answer = await c.query("example.com", "TXT")
    assert answer.outcome is Outcome.ERROR and answer.name == "example.com"


async def test_zone_as_master_file_text(dns_server: FakeDNS) -> None:
    dns_server.load(
        """
example.org. 300 IN TXT "v=spf1 " "-all"
example.org. 300 IN MX 10 mx.example.org.
www.example.org. 300 IN CNAME example.org.
"""
    )
    c = client(dns_server)
    txt = await c.query("www.example.org", "TXT")
    assert txt.outcome is Outcome.FOUND and txt.txt[0].text == "v=spf1 -all"
    assert txt.cname_chain == ("example.org",)
    assert (await c.query("example.org", "AAAA")).outcome is Outcome.NODATA


async def test_cname_from_a_non_chasing_server_is_followed_by_the_client(
    dns_server: FakeDNS,
) -> None:
    dns_server.load(ZONE)
    dns_server.chase_cnames = False
    c = client(dns_server)
    answer = await c.query("alias2.example.com", "TXT")
    assert answer.outcome is Outcome.FOUND and answer.name == "alias2.example.com"
    assert answer.cname_chain == ("alias.example.com", "example.com")
    assert [q.name for q in dns_server.log] == [
        "alias2.example.com",
        "alias.example.com",
        "example.com",
    ]
