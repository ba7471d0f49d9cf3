"""DKIM key records (RFC 6376, RFC 8301, RFC 8463), served over real DNS on loopback."""

from __future__ import annotations

import dns_fixtures
import pytest
from dkim_keys import ed25519_p, rsa_p
from dns_fixtures import Findings, RunChecks

from checks.base import Status
from checks.deliverability import ReturnPathExpectation
from checks.deliverability.dkim import parse_dkim_key

# the loopback DNS server fixtures, used by name
dns_server = dns_fixtures.dns_server
run_checks = dns_fixtures.run_checks

BASE = {
    "example.com": {"TXT": ["v=spf1 -all"]},
    "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]},
}


async def dkim(
    run_checks: RunChecks, record: str | tuple[str, ...], selector: str = "s1", **kw: object
) -> Findings:
    z = dict(BASE)
    z[f"{selector}._domainkey.example.com"] = {"TXT": [record]}
    return await run_checks(z, selectors=[selector], **kw)


async def test_rsa_2048_passes(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; k=rsa; p={rsa_p(2048)}")
    r = f.assert_finding("deliverability.dkim.s1", Status.PASS, "RFC 8301 §3.2")
    assert "2048-bit RSA" in r.summary and r.data["key_bits"] == 2048


async def test_rsa_1024_warns(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; p={rsa_p(1024)}")
    r = f.assert_finding("deliverability.dkim.s1", Status.WARN, "RFC 8301 §3.2")
    assert "1024-bit" in r.summary


async def test_rsa_512_fails(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; p={rsa_p(512)}")
    r = f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 8301 §3.2")
    assert "512-bit" in r.summary
    assert f["deliverability.bulk_sender"].status is Status.FAIL


async def test_key_split_over_strings_is_joined(run_checks: RunChecks) -> None:
    p = rsa_p(2048)
    f = await dkim(run_checks, ("v=DKIM1; k=rsa; p=" + p[:200], p[200:]))
    f.assert_finding("deliverability.dkim.s1", Status.PASS, "RFC 6376")


async def test_ed25519_is_accepted(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; k=ed25519; p={ed25519_p()}")
    r = f.assert_finding("deliverability.dkim.s1", Status.PASS, "RFC 6376")
    assert "Ed25519" in r.summary


async def test_empty_p_means_revoked(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, "v=DKIM1; k=rsa; p=")
    r = f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.1")
    assert "revoked" in r.summary


async def test_sha1_only_fails_and_sha1_plus_sha256_warns(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; h=sha1; p={rsa_p(2048)}")
    f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 8301 §3.1")
    g = await dkim(run_checks, f"v=DKIM1; h=sha1:sha256; p={rsa_p(2048)}")
    g.assert_finding("deliverability.dkim.s1", Status.WARN, "RFC 8301 §3.1")


async def test_testing_flag_warns(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; t=y; p={rsa_p(2048)}")
    r = f.assert_finding("deliverability.dkim.s1", Status.WARN, "RFC 6376 §3.6.1")
    assert "t=y" in r.summary


async def test_duplicate_tags_fail(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, f"v=DKIM1; k=rsa; k=rsa; p={rsa_p(2048)}")
    r = f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.2")
    assert 'tag "k" appears more than once' in r.summary


async def test_garbage_key_and_unknown_key_type_fail(run_checks: RunChecks) -> None:
    f = await dkim(run_checks, "v=DKIM1; p=bm90IGEga2V5")
    f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.1")
    g = await dkim(run_checks, f"v=DKIM1; k=dsa; p={rsa_p(2048)}")
    g.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.1")


async def test_cname_delegation_is_followed(run_checks: RunChecks) -> None:
    z = dict(BASE)
    z["krs._domainkey.cio123.example.com"] = {"CNAME": ["krs.dkim.esp.example.net."]}
    z["krs.dkim.esp.example.net"] = {"TXT": [f"v=DKIM1; k=rsa; p={rsa_p(2048)}"]}
    expected = ReturnPathExpectation(dkim_domain="cio123.example.com")
    f = await run_checks(z, selectors=["krs"], expected=expected)
    r = f.assert_finding("deliverability.dkim.krs", Status.PASS, "RFC 6376")
    assert "via CNAME krs.dkim.esp.example.net" in r.summary
    assert r.data["cname_chain"] == ["krs.dkim.esp.example.net"]


async def test_full_selector_name_is_used_as_given(run_checks: RunChecks) -> None:
    z = dict(BASE)
    z["krs._domainkey.cio9.example.com"] = {"TXT": [f"p={rsa_p(2048)}"]}
    f = await run_checks(z, selectors=["krs._domainkey.cio9.example.com"])
    f.assert_finding("deliverability.dkim.krs", Status.PASS, "RFC 6376")


async def test_dangling_cname_and_missing_selector_fail(run_checks: RunChecks) -> None:
    z = dict(BASE)
    z["s2._domainkey.example.com"] = {"CNAME": ["s2.gone.example.net."]}
    f = await run_checks(z, selectors=["s1", "s2"])
    r1 = f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.2.2")
    assert "NXDOMAIN" in r1.summary
    r2 = f.assert_finding("deliverability.dkim.s2", Status.FAIL, "RFC 6376 §3.6.2.2")
    assert "s2.gone.example.net" in r2.summary


async def test_nodata_at_selector_fails(run_checks: RunChecks) -> None:
    z = dict(BASE)
    z["s1._domainkey.example.com"] = {"A": ["192.0.2.1"]}
    f = await run_checks(z, selectors=["s1"])
    r = f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.2.2")
    assert "NODATA" in r.summary


@pytest.mark.parametrize("fault", ["servfail", "silent"])
async def test_dns_fault_at_selector_is_an_error(run_checks: RunChecks, fault: str) -> None:
    z = dict(BASE)
    f = await run_checks(z, selectors=["s1"], **{fault: ["s1._domainkey.example.com"]})
    r = f.assert_finding("deliverability.dkim.s1", Status.ERROR, "RFC 6376")
    assert "s1._domainkey.example.com" in r.summary
    assert f["deliverability.bulk_sender"].status is Status.ERROR


async def test_no_selector_configured_is_skipped(run_checks: RunChecks) -> None:
    f = await run_checks(dict(BASE))
    f.assert_finding("deliverability.dkim.selectors", Status.SKIP, "RFC 6376")
    assert f["deliverability.bulk_sender"].status is Status.WARN


def test_v_must_come_first() -> None:
    key = parse_dkim_key(f"k=rsa; v=DKIM1; p={rsa_p(2048)}")
    assert [p.status for p in key.problems] == [Status.FAIL]
    assert key.problems[0].rule == "RFC 6376 §3.6.1"


async def test_invalid_selector_fails_without_a_query(run_checks: RunChecks) -> None:
    f = await run_checks(dict(BASE), selectors=["bad selector!", "s1"])
    r = f.assert_finding("deliverability.dkim.bad_selector_", Status.FAIL, "RFC 6376 §3.1")
    assert "not a valid DKIM selector" in r.summary
    f.assert_finding("deliverability.dkim.s1", Status.FAIL, "RFC 6376 §3.6.2.2")
    assert not any("bad" in q.name for q in f.client.stats.queries)
