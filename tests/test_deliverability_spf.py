"""SPF (RFC 7208) findings, from zones served over real DNS on loopback."""

from __future__ import annotations

import dns_fixtures
from dns_fixtures import Findings, RunChecks

from checks.base import Status

# the loopback DNS server fixtures, used by name
dns_server = dns_fixtures.dns_server
run_checks = dns_fixtures.run_checks

HOSTS = {
    "host.example.com": {"A": ["192.0.2.10"]},
    "host2.example.com": {"A": ["192.0.2.11"]},
    "x.example.com": {"A": ["127.0.0.2"]},
    "mail.example.com": {"MX": ["10 mx.example.com."], "A": ["192.0.2.12"]},
    "mx.example.com": {"A": ["192.0.2.13"]},
}


def zone(spf: object, **extra: dict) -> dict:
    z: dict = {
        "example.com": {
            "TXT": [spf] if not isinstance(spf, list) else spf,
            "MX": ["10 mx.example.com."],
            "A": ["192.0.2.1"],
        }
    }
    z.update(HOSTS)
    z.update(extra)
    return z


async def spf(run_checks: RunChecks, record: object, **extra: dict) -> Findings:
    return await run_checks(zone(record, **{k.replace("__", "."): v for k, v in extra.items()}))


# -- the record ---------------------------------------------------------------------------
async def test_one_record_passes(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 ip4:192.0.2.0/24 -all")
    f.assert_finding("deliverability.spf.record", Status.PASS, "RFC 7208 §4.5")
    assert f["deliverability.spf.record"].found == "v=spf1 ip4:192.0.2.0/24 -all"
    f.assert_finding("deliverability.spf.all", Status.PASS, "RFC 7208 §5.1")
    f.assert_finding("deliverability.spf.syntax", Status.PASS, "RFC 7208 §4.6.1")


async def test_two_records_is_permerror(run_checks: RunChecks) -> None:
    f = await spf(run_checks, ["v=spf1 ip4:192.0.2.1 -all", "v=spf1 include:_spf.google.com ~all"])
    r = f.assert_finding("deliverability.spf.record", Status.FAIL, "RFC 7208 §4.5")
    assert "2 SPF records" in r.summary and "_spf.google.com" in r.found


async def test_no_record_fails_but_other_txt_is_shown(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "google-site-verification=abc")
    r = f.assert_finding("deliverability.spf.record", Status.FAIL, "RFC 7208 §4.5")
    assert "google-site-verification" in r.found


async def test_spf10_is_not_an_spf_record(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf10 -all")
    f.assert_finding("deliverability.spf.record", Status.FAIL, "RFC 7208 §4.5")


async def test_strings_are_joined_without_spaces(run_checks: RunChecks) -> None:
    ok = await spf(run_checks, ("v=spf1 ip4:192.0.2.1 ", "ip4:192.0.2.2 -all"))
    ok.assert_finding("deliverability.spf.syntax", Status.PASS, "RFC 7208 §4.6.1")
    assert "joined from 2 strings" in ok["deliverability.spf.record"].summary
    # "ip4:192.0.2.2" + "-all" joins to "ip4:192.0.2.2-all": no space is inserted
    bad = await spf(run_checks, ("v=spf1 ip4:192.0.2.2", "-all"))
    r = bad.assert_finding("deliverability.spf.syntax", Status.FAIL, "RFC 7208 §4.6.1")
    assert "192.0.2.2-all" in r.summary


async def test_nxdomain_domain(run_checks: RunChecks) -> None:
    f = await run_checks(HOSTS, "nowhere.example.com")
    r = f.assert_finding("deliverability.spf.record", Status.FAIL, "RFC 7208 §4.3")
    assert "NXDOMAIN" in r.summary


# -- term syntax --------------------------------------------------------------------------
async def test_bad_ip4_unknown_mechanism_and_macro_letter(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks, "v=spf1 ip4:300.1.1.1 foo:bar exists:%{c}.example.com ip6:2001:db8::/129 -all"
    )
    r = f.assert_finding("deliverability.spf.syntax", Status.FAIL, "RFC 7208 §4.6.1, §12")
    for part in ("300.1.1.1", "unknown mechanism", "only in exp", "0-128"):
        assert part in r.summary


async def test_valid_macros_cidrs_and_unknown_modifier(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks,
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a/24 mx:mail.example.com/24//64 "
        "exists:%{ir}.%{l1r+-}._spf.%{d} foo=bar -all",
    )
    f.assert_finding("deliverability.spf.syntax", Status.PASS, "RFC 7208 §4.6.1")
    assert "foo=bar" in f["deliverability.spf.modifiers"].detail


async def test_include_without_domain_is_a_syntax_error(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 include: -all")
    f.assert_finding("deliverability.spf.syntax", Status.FAIL, "RFC 7208 §4.6.1")


# -- DNS lookup limits --------------------------------------------------------------------
def nested(extra_in_l3: str = "") -> dict:
    # top: include, mx, a, redirect (4); l1: include, a (6); l2: exists (7); r1: include, mx (9); l3: a (10)
    return {
        "l1.example.com": {"TXT": ["v=spf1 include:l2.example.com a:host.example.com -all"]},
        "l2.example.com": {"TXT": ["v=spf1 exists:x.example.com ip4:192.0.2.0/24 -all"]},
        "r1.example.com": {"TXT": ["v=spf1 include:l3.example.com mx:mail.example.com -all"]},
        "l3.example.com": {"TXT": [f"v=spf1 a:host.example.com {extra_in_l3}~all"]},
    }


async def test_ten_lookups_through_includes_and_redirect_pass(run_checks: RunChecks) -> None:
    f = await run_checks(
        zone("v=spf1 include:l1.example.com mx a redirect=r1.example.com", **nested())
    )
    r = f.assert_finding("deliverability.spf.lookup_limit", Status.PASS, "RFC 7208 §4.6.4")
    assert r.data["lookups"] == 10
    f.assert_finding("deliverability.spf.lookup_headroom", Status.WARN, "RFC 7208 §4.6.4")
    f.assert_finding("deliverability.spf.include_targets", Status.PASS, "RFC 7208 §5.2")
    # the "all" that ends evaluation comes from the redirect target
    assert "r1.example.com" in f["deliverability.spf.all"].summary


async def test_eleven_lookups_fail(run_checks: RunChecks) -> None:
    f = await run_checks(
        zone(
            "v=spf1 include:l1.example.com mx a redirect=r1.example.com",
            **nested("a:host2.example.com "),
        )
    )
    r = f.assert_finding("deliverability.spf.lookup_limit", Status.FAIL, "RFC 7208 §4.6.4")
    assert r.data["lookups"] == 11 and "11" in r.summary


async def test_near_limit_warns(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks,
        "v=spf1 a mx a:host.example.com a:host2.example.com mx:mail.example.com "
        "exists:x.example.com a:mx.example.com mx:example.com -all",
    )
    f.assert_finding("deliverability.spf.lookup_limit", Status.PASS, "RFC 7208 §4.6.4")
    r = f.assert_finding("deliverability.spf.lookup_headroom", Status.WARN, "RFC 7208 §4.6.4")
    assert "8 of 10" in r.summary


async def test_three_void_lookups_fail_two_warn(run_checks: RunChecks) -> None:
    three = await spf(run_checks, "v=spf1 a:v1.example.com a:v2.example.com mx:v3.example.com -all")
    r = three.assert_finding("deliverability.spf.void_lookups", Status.FAIL, "RFC 7208 §4.6.4")
    assert "v1.example.com" in r.summary
    two = await spf(
        run_checks,
        "v=spf1 a:v1.example.com mx:example.com a:host.example.com exists:v2.example.com -all",
    )
    two.assert_finding("deliverability.spf.void_lookups", Status.PASS, "RFC 7208 §4.6.4")
    assert "2 of 2 void" in two["deliverability.spf.lookup_headroom"].summary


async def test_more_than_ten_mx_names_fail(run_checks: RunChecks) -> None:
    many = {"bigmx.example.com": {"MX": [f"{i} mx{i}.example.com." for i in range(11)]}}
    f = await spf(
        run_checks,
        "v=spf1 mx:bigmx.example.com -all",
        bigmx__example__com=many["bigmx.example.com"],
    )
    r = f.assert_finding("deliverability.spf.mx_limit", Status.FAIL, "RFC 7208 §4.6.4")
    assert "bigmx.example.com (11)" in r.summary
    ten = {"MX": [f"{i} mx{i}.example.com." for i in range(10)]}
    ok = await spf(run_checks, "v=spf1 mx:bigmx.example.com -all", bigmx__example__com=ten)
    ok.assert_finding("deliverability.spf.mx_limit", Status.PASS, "RFC 7208 §4.6.4")


# -- include / redirect targets, modifiers, loops -------------------------------------------
async def test_include_target_without_spf_fails(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks,
        "v=spf1 include:nospf.example.com -all",
        nospf__example__com={"TXT": ["some-verification=123"]},
    )
    r = f.assert_finding("deliverability.spf.include_targets", Status.FAIL, "RFC 7208 §5.2")
    assert "nospf.example.com publishes no SPF record" in r.summary


async def test_redirect_target_that_does_not_exist_fails(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 redirect=gone.example.com")
    r = f.assert_finding("deliverability.spf.include_targets", Status.FAIL, "§6.1")
    assert "nxdomain" in r.summary


async def test_duplicate_redirect_fails(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks,
        "v=spf1 redirect=host.example.com redirect=host2.example.com",
        host__example__com={"TXT": ["v=spf1 -all"], "A": ["192.0.2.10"]},
    )
    f.assert_finding("deliverability.spf.modifiers", Status.FAIL, "RFC 7208 §6")


async def test_redirect_with_all_is_ignored_and_warns(run_checks: RunChecks) -> None:
    f = await spf(
        run_checks,
        "v=spf1 ip4:192.0.2.1 redirect=l2.example.com -all",
        l2__example__com={"TXT": ["v=spf1 -all"]},
    )
    f.assert_finding("deliverability.spf.modifiers", Status.WARN, "RFC 7208 §6.1")
    # an ignored redirect is not looked up and not counted
    assert f["deliverability.spf.lookup_limit"].data["lookups"] == 0


async def test_include_loop_fails(run_checks: RunChecks) -> None:
    f = await run_checks(
        zone(
            "v=spf1 include:loop-a.example.com -all",
            **{
                "loop-a.example.com": {"TXT": ["v=spf1 include:loop-b.example.com -all"]},
                "loop-b.example.com": {"TXT": ["v=spf1 include:loop-a.example.com -all"]},
            },
        )
    )
    r = f.assert_finding("deliverability.spf.loop", Status.FAIL, "RFC 7208 §4.6.4")
    assert "loop-a.example.com -> loop-b.example.com -> loop-a.example.com" in r.summary


# -- all, ptr ------------------------------------------------------------------------------
async def test_plus_all_fails(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 +all")
    f.assert_finding("deliverability.spf.all", Status.FAIL, "RFC 7208 §5.1")
    bare = await spf(run_checks, "v=spf1 ip4:192.0.2.1 all")
    bare.assert_finding("deliverability.spf.all", Status.FAIL, "RFC 7208 §5.1")


async def test_neutral_all_and_missing_all_warn(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 ip4:192.0.2.1 ?all")
    f.assert_finding("deliverability.spf.all", Status.WARN, "RFC 7208 §5.1")
    g = await spf(run_checks, "v=spf1 ip4:192.0.2.1")
    g.assert_finding("deliverability.spf.all", Status.WARN, "RFC 7208 §4.7")


async def test_softfail_all_passes(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 ip4:192.0.2.1 ~all")
    r = f.assert_finding("deliverability.spf.all", Status.PASS, "RFC 7208 §5.1")
    assert "softfail" in r.summary


async def test_ptr_warns(run_checks: RunChecks) -> None:
    f = await spf(run_checks, "v=spf1 ptr -all")
    f.assert_finding("deliverability.spf.ptr", Status.WARN, "RFC 7208 §5.5")
    assert f["deliverability.spf.lookup_limit"].data["lookups"] == 1


# -- DNS faults ----------------------------------------------------------------------------
async def test_servfail_on_the_domain_is_an_error_naming_it(run_checks: RunChecks) -> None:
    f = await run_checks(zone("v=spf1 -all"), servfail=["example.com"])
    r = f.assert_finding("deliverability.spf.record", Status.ERROR, "RFC 7208")
    assert "TXT example.com" in r.summary and "SERVFAIL" in r.summary
    assert r.blocks_launch


async def test_timeout_in_an_include_is_an_error_not_a_pass(run_checks: RunChecks) -> None:
    f = await run_checks(zone("v=spf1 include:slow.example.com -all"), silent=["slow.example.com"])
    r = f.assert_finding("deliverability.spf.lookup_limit", Status.ERROR, "RFC 7208 §4.6.4")
    assert "slow.example.com" in r.summary
    f.assert_finding("deliverability.spf.include_targets", Status.ERROR, "RFC 7208 §5.2")
    assert "timed out" in r.detail
    # what hides in the unread include can be neither passed nor failed
    f.assert_finding("deliverability.spf.mx_limit", Status.ERROR, "RFC 7208 §4.6.4")
    f.assert_finding("deliverability.spf.loop", Status.ERROR, "RFC 7208 §4.6.4")
    assert "could be read" in f["deliverability.spf.syntax"].summary
