"""Runs the deliverability checks with the project's DNS client and configuration.

Used by the CLI (``cio-bot check deliverability``) and by ``/cio check deliverability``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import ConfigError, Settings
from bot.providers.dns import DEFAULT_TIMEOUT, DnsClient, DnsStats
from checks.base import CheckResult
from checks.deliverability import ReturnPathExpectation, check_domain


def expectation_from_settings(settings: Settings) -> ReturnPathExpectation | None:
    """The ``[deliverability]`` table of CIO_CONFIG as a :class:`ReturnPathExpectation`."""
    table = settings.section("deliverability")
    if not table:
        return None
    try:
        return ReturnPathExpectation.from_mapping(table)
    except ValueError as exc:
        raise ConfigError(f"CIO_CONFIG: {exc}") from None


@dataclass
class DeliverabilityRun:
    domain: str
    results: list[CheckResult]
    stats: DnsStats


async def run_deliverability(
    domain: str,
    *,
    dkim_selectors: Sequence[str] = (),
    nameservers: Sequence[tuple[str, int]] = (),
    expected: ReturnPathExpectation | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> DeliverabilityRun:
    """One run: a fresh DNS client (its cache lives for this run only)."""
    client = DnsClient(nameservers, timeout=timeout)
    results = await check_domain(
        domain, resolver=client, dkim_selectors=dkim_selectors, expected=expected
    )
    return DeliverabilityRun(domain, results, client.stats)


async def run_from_settings(
    settings: Settings, *, timeout: float = DEFAULT_TIMEOUT
) -> DeliverabilityRun:
    """The check as configured by CIO_SENDING_DOMAIN, CIO_DKIM_SELECTORS, CIO_DNS_NAMESERVERS."""
    if not settings.sending_domain:
        raise ConfigError(
            "CIO_SENDING_DOMAIN is not set; set it to the domain you send email from."
        )
    return await run_deliverability(
        settings.sending_domain,
        dkim_selectors=settings.dkim_selectors,
        nameservers=settings.dns_nameservers,
        expected=expectation_from_settings(settings),
        timeout=timeout,
    )
