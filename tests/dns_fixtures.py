"""Fixtures for the deliverability tests: a DNS server on loopback and a check runner.

Test modules import the fixtures by name (``from dns_fixtures import dns_server, run_checks``);
pytest then finds them in the module namespace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest

from bot.providers.dns import DnsClient
from bot.sandbox.dns import FakeDNS, Zone
from checks.base import CheckResult, Status
from checks.deliverability import ReturnPathExpectation, check_domain

TEST_TIMEOUT = 0.5


@dataclass
class Findings:
    results: list[CheckResult]
    client: DnsClient

    def __getitem__(self, rid: str) -> CheckResult:
        matches = [r for r in self.results if r.id == rid]
        assert len(matches) == 1, f"expected one {rid}, got {[r.id for r in self.results]}"
        return matches[0]

    def ids(self) -> list[str]:
        return [r.id for r in self.results]

    def assert_finding(self, rid: str, status: Status, rule_part: str) -> CheckResult:
        result = self[rid]
        assert result.status is status, f"{rid}: {result.status} ({result.summary})"
        assert rule_part in result.rule, f"{rid}: rule {result.rule!r} lacks {rule_part!r}"
        assert result.category == "deliverability"
        if status not in (Status.PASS, Status.SKIP):
            assert result.fix, f"{rid} has no fix"
        return result


RunChecks = Callable[..., Awaitable[Findings]]


@pytest.fixture
async def dns_server() -> AsyncIterator[FakeDNS]:
    async with FakeDNS() as server:
        yield server
    assert server.errors == 0, "the test DNS server raised while answering"


@pytest.fixture
def run_checks(dns_server: FakeDNS) -> RunChecks:
    """``await run_checks(zone, "example.com", selectors=..., expected=..., servfail=..., silent=...)``."""

    async def run(
        zone: Zone,
        domain: str = "example.com",
        *,
        selectors: Sequence[str] = (),
        expected: ReturnPathExpectation | None = None,
        servfail: Iterable[str] = (),
        silent: Iterable[str] = (),
    ) -> Findings:
        dns_server.load(zone, servfail=servfail, silent=silent)
        client = DnsClient([dns_server.nameserver], timeout=TEST_TIMEOUT)
        results = await check_domain(
            domain, resolver=client, dkim_selectors=selectors, expected=expected
        )
        assert not client.stats.duplicates(), "a (name, type) was queried twice in one run"
        return Findings(results, client)

    return run
