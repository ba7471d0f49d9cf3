"""DMARC (RFC 9989 / RFC 7489) findings, from zones served over real DNS on loopback."""

from __future__ import annotations

import dns_fixtures
import pytest
from dns_fixtures import Findings, RunChecks

from checks.base import Severity, Status
from checks.deliverability import ReturnPathExpectation
from checks.deliverability.dmarc import organizational_domain, parse_dmarc, tree_walk, walk_targets

# the loopback DNS server fixtures, used by name
dns_server = dns_fixtures.dns_server
run_checks = dns_fixtures.run_checks

BASE = {
    "example.com": {"TXT": ["v=spf1 -all"], "MX": ["10 mx.example.com."]},
    "mail.example.com": {"A": ["192.0.2.5"]},
}


def zone(*dmarc: str, at: str = "_dmarc.example.com", **extra: dict) -> dict:
    z: dict = dict(BASE)
    if dmarc:
        z[at] = {"TXT": list(dmarc)}
    z.update(extra)
    return z


async def dmarc(
    run_checks: RunChecks, *records: str, domain: str = "example.com", **kw: object
) -> Findings:
    return await run_checks(zone(*records), domain, **kw)


# -- discovery -----------------------------------------------------------------------------
async def test_record_at_the_domain(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject")
    r = f.assert_finding("deliverability.dmarc.record", Status.PASS, "RFC 9989 §4.10.1")
    assert r.found == "v=DMARC1; p=reject" and r.data["location"] == "_dmarc.example.com"


async def test_subdomain_falls_back_to_organizational_domain_and_uses_sp(
    run_checks: RunChecks,
) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; sp=quarantine", domain="mail.example.com")
    r = f.assert_finding("deliverability.dmarc.record", Status.PASS, "RFC 9989 §4.10.1")
    assert "organizational domain at _dmarc.example.com" in r.summary
    p = f.assert_finding("deliverability.dmarc.policy", Status.PASS, "RFC 9989")
    assert "sp=quarantine inherited" in p.summary


async def test_no_record_anywhere_fails(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, domain="mail.example.com")
    r = f.assert_finding("deliverability.dmarc.record", Status.FAIL, "RFC 9989 §4.10.1")
    assert "_dmarc.mail.example.com, _dmarc.example.com, _dmarc.com" in r.summary
    assert f["deliverability.bulk_sender"].status is Status.FAIL


async def test_multiple_records_mean_no_policy(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject", "v=DMARC1; p=none")
    f.assert_finding("deliverability.dmarc.record", Status.FAIL, "RFC 9989 §4.10")


@pytest.mark.parametrize(
    "record", ["p=reject; v=DMARC1", "v=dmarc1; p=reject", "v=DMARC1 p=reject"]
)
async def test_version_must_be_first_and_exact(run_checks: RunChecks, record: str) -> None:
    f = await dmarc(run_checks, record)
    f.assert_finding("deliverability.dmarc.record", Status.FAIL, "RFC 9989 §4.7")


# -- tags ----------------------------------------------------------------------------------
async def test_policy_none_warns_but_meets_bulk_minimum(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=none; rua=mailto:dmarc@example.com")
    r = f.assert_finding("deliverability.dmarc.policy", Status.WARN, "RFC 9989 §4.7")
    assert "bulk-sender minimum" in r.summary and r.severity is Severity.ADVISORY


@pytest.mark.parametrize("policy", ["quarantine", "reject", "REJECT"])
async def test_quarantine_and_reject_pass(run_checks: RunChecks, policy: str) -> None:
    f = await dmarc(run_checks, f"v=DMARC1; p={policy}")
    f.assert_finding("deliverability.dmarc.policy", Status.PASS, "RFC 9989 §4.7")


async def test_missing_p_is_treated_as_none(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; rua=mailto:dmarc@example.com")
    r = f.assert_finding("deliverability.dmarc.policy", Status.WARN, "RFC 9989 §4.7")
    assert "no p tag" in r.summary


async def test_invalid_policy_fails_syntax_and_policy(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=block; rua=mailto:d@example.com")
    r = f.assert_finding("deliverability.dmarc.syntax", Status.FAIL, "RFC 9989 §4.7")
    assert "p=block" in r.summary
    p = f.assert_finding("deliverability.dmarc.policy", Status.FAIL, "RFC 9989 §4.10.1")
    assert "fall back to p=none" in p.summary


async def test_invalid_other_values_are_ignored_with_a_warning(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; adkim=x; fo=2; pct=150; rua=reports")
    r = f.assert_finding("deliverability.dmarc.syntax", Status.WARN, "RFC 9989 §4.7")
    for part in ("adkim=x", "fo=2", "pct=150", "'reports' is not a URI"):
        assert part in r.summary
    # adkim=x is read as the default, relaxed
    f.assert_finding("deliverability.dmarc.alignment", Status.PASS, "RFC 9989 §4.4")


async def test_duplicate_tag_fails(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; p=none")
    r = f.assert_finding("deliverability.dmarc.syntax", Status.FAIL, "RFC 6376 §3.2")
    assert 'tag "p" appears more than once' in r.summary
    bulk = f.assert_finding("deliverability.bulk_sender", Status.FAIL, "Gmail/Yahoo")
    assert "DMARC" in bulk.summary


async def test_unknown_tag_is_ignored_with_a_warning(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; policy=reject")
    r = f.assert_finding("deliverability.dmarc.syntax", Status.WARN, "RFC 9989 §4.7")
    assert 'unknown tag "policy"' in r.summary


async def test_pct_is_historic_and_warns(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=quarantine; pct=25")
    r = f.assert_finding("deliverability.dmarc.historic_tags", Status.WARN, "RFC 9989 §4.7")
    assert "pct=25" in r.summary
    clean = await dmarc(run_checks, "v=DMARC1; p=quarantine")
    clean.assert_finding("deliverability.dmarc.historic_tags", Status.PASS, "RFC 9989")


async def test_testing_mode_warns(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; t=y")
    f.assert_finding("deliverability.dmarc.policy", Status.WARN, "RFC 9989 §4.7")


# -- external report destinations -----------------------------------------------------------
async def test_external_rua_without_authorisation_fails(run_checks: RunChecks) -> None:
    f = await dmarc(
        run_checks,
        "v=DMARC1; p=reject; rua=mailto:agg@reports.example.net; ruf=mailto:f@example.com",
    )
    r = f.assert_finding("deliverability.dmarc.report_destinations", Status.FAIL, "RFC 7489 §7.1")
    assert "example.com._report._dmarc.reports.example.net" in r.summary
    assert r.severity is Severity.ADVISORY and not r.blocks_launch


async def test_external_rua_with_authorisation_passes(run_checks: RunChecks) -> None:
    z = zone("v=DMARC1; p=reject; rua=mailto:agg@reports.example.net")
    z["example.com._report._dmarc.reports.example.net"] = {"TXT": ["v=DMARC1"]}
    f = await run_checks(z)
    f.assert_finding("deliverability.dmarc.report_destinations", Status.PASS, "RFC 7489 §7.1")


async def test_report_address_in_own_domain_needs_no_authorisation(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; rua=mailto:dmarc@mail.example.com")
    f.assert_finding("deliverability.dmarc.report_destinations", Status.PASS, "RFC 7489 §7.1")
    assert not any("._report._dmarc." in q.name for q in f.client.stats.queries)


# -- alignment with Customer.io's identifiers ------------------------------------------------
RP = ReturnPathExpectation(return_path_domain="cio123.example.com")


async def test_relaxed_alignment_passes_with_customerio_subdomain(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject", expected=RP)
    r = f.assert_finding("deliverability.dmarc.alignment", Status.PASS, "RFC 9989 §4.4")
    assert "cio123.example.com" in r.detail


async def test_strict_alignment_on_both_fails(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; adkim=s; aspf=s", expected=RP)
    r = f.assert_finding("deliverability.dmarc.alignment", Status.FAIL, "RFC 9989 §4.4")
    assert "adkim=s" in r.summary and "aspf=s" in r.summary
    assert f["deliverability.bulk_sender"].status is Status.FAIL


async def test_strict_dkim_alignment_only_warns(run_checks: RunChecks) -> None:
    f = await dmarc(run_checks, "v=DMARC1; p=reject; adkim=s")
    f.assert_finding("deliverability.dmarc.alignment", Status.WARN, "RFC 9989 §4.4")


async def test_identifiers_in_another_organization_do_not_align(run_checks: RunChecks) -> None:
    other = ReturnPathExpectation(return_path_domain="cio123.example.net")
    f = await dmarc(run_checks, "v=DMARC1; p=reject", expected=other)
    f.assert_finding("deliverability.dmarc.alignment", Status.FAIL, "RFC 9989 §4.4")


# -- DNS faults ----------------------------------------------------------------------------
async def test_servfail_at_dmarc_name_is_an_error_not_a_fallback(run_checks: RunChecks) -> None:
    z = zone("v=DMARC1; p=reject")
    f = await run_checks(z, "mail.example.com", servfail=["_dmarc.mail.example.com"])
    r = f.assert_finding("deliverability.dmarc.record", Status.ERROR, "RFC 9989")
    assert "_dmarc.mail.example.com" in r.summary


async def test_timeout_at_dmarc_name_is_an_error(run_checks: RunChecks) -> None:
    f = await run_checks(zone("v=DMARC1; p=reject"), silent=["_dmarc.example.com"])
    r = f.assert_finding("deliverability.dmarc.record", Status.ERROR, "RFC 9989")
    assert "timed out" in r.summary and "_dmarc.example.com" in r.summary


# -- the tree walk itself ------------------------------------------------------------------
def test_walk_targets_are_bounded() -> None:
    assert walk_targets("a.mail.example.com") == [
        "a.mail.example.com",
        "mail.example.com",
        "example.com",
        "com",
    ]
    long = "a.b.c.d.e.f.g.h.i.example.com"
    targets = walk_targets(long)
    assert len(targets) <= 8 and targets[0] == long and targets[-1] == "com"
    assert targets[1] == "e.f.g.h.i.example.com"


def test_parse_keeps_first_value_and_notes_errors() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=quarantine; rua=mailto:a@example.com,mailto:b@example.net!10m"
    )
    assert record.policy() == "quarantine" and not record.errors
    assert any("obsolete" in w for w in record.warnings)


async def test_psd_record_sets_the_organizational_domain(dns_server) -> None:
    from bot.providers.dns import DnsClient

    dns_server.load({"_dmarc.example": {"TXT": ["v=DMARC1; p=reject; psd=y"]}})
    client = DnsClient([dns_server.nameserver], timeout=0.5)
    steps = await tree_walk("a.shop.example", client)
    assert organizational_domain("a.shop.example", steps).domain == "shop.example"
    dns_server.load(
        {
            "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=none"]},
            "_dmarc.a.shop.example": {"TXT": ["v=DMARC1; p=reject"]},
        }
    )
    client = DnsClient([dns_server.nameserver], timeout=0.5)
    steps = await tree_walk("a.shop.example", client)
    assert organizational_domain("a.shop.example", steps).domain == "shop.example"
