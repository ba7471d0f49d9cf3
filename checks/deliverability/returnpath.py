"""Return path: the Customer.io sending subdomain (``cio<digits>.<domain>``).

Customer.io sets the envelope sender (RFC5321.MailFrom, the "return path") to an
account-specific subdomain of the sending domain, which must publish the SPF record and
the MX (to receive bounces) that Customer.io asks for. The exact values are shown in the
Customer.io UI (Sending domains) and are not public, so they are configuration, never
guessed. They come from the ``[deliverability]`` table of the ``CIO_CONFIG`` TOML file:

.. code-block:: toml

    [deliverability]
    # the subdomain Customer.io shows for your sending domain (required for these checks)
    return_path_domain = "cio12345.example.com"
    # the SPF include Customer.io asks you to publish there (string or list)
    return_path_spf_include = "mailgun.org"
    # the MX host(s) Customer.io asks you to publish there (string or list)
    return_path_mx = ["mxa.mailgun.org", "mxb.mailgun.org"]
    # optional: the DKIM signing domain (d=) under which the selectors are looked up;
    # default: return_path_domain when set (Customer.io keeps its DKIM key at
    # <selector>._domainkey.cio<digits>.<domain>), else the sending domain
    dkim_domain = "cio12345.example.com"

Without ``return_path_domain`` the return-path checks are skipped (status ``skip``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, Status
from checks.deliverability.dnstypes import Outcome, Resolver, normalize_name
from checks.deliverability.findings import Verdicts, finding
from checks.deliverability.spf import SpfEvaluation, evaluate_spf

TOML_KEYS = ("return_path_domain", "return_path_spf_include", "return_path_mx", "dkim_domain")


@dataclass(frozen=True)
class ReturnPathExpectation:
    """What Customer.io asked to be published for the return path (all optional)."""

    return_path_domain: str | None = None
    spf_includes: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()
    dkim_domain: str | None = None

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> ReturnPathExpectation:
        """Build from the ``[deliverability]`` TOML table; ValueError names a bad key."""
        unknown = sorted(set(table) - set(TOML_KEYS))
        if unknown:
            raise ValueError(
                f"[deliverability] has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(TOML_KEYS)}."
            )

        def one(key: str) -> str | None:
            value = table.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"[deliverability] {key} must be a domain name string, got {value!r}."
                )
            return normalize_name(value)

        def many(key: str) -> tuple[str, ...]:
            value = table.get(key)
            if value is None:
                return ()
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(
                isinstance(v, str) and v.strip() for v in items
            ):
                raise ValueError(
                    f"[deliverability] {key} must be a domain name or a list of them, got {value!r}."
                )
            return tuple(normalize_name(v) for v in items)

        return cls(
            one("return_path_domain"),
            many("return_path_spf_include"),
            many("return_path_mx"),
            one("dkim_domain"),
        )


@dataclass
class ReturnPathEvaluation:
    spf: SpfEvaluation | None = None
    results: list[CheckResult] | None = None

    @property
    def spf_ok(self) -> bool | None:
        if self.spf is None or self.results is None:
            return None
        spf_result = next(
            (r for r in self.results if r.id == "deliverability.return_path.spf"), None
        )
        if spf_result is None or spf_result.status is Status.ERROR:
            return None
        return spf_result.status in (Status.PASS, Status.WARN)


async def evaluate_return_path(
    domain: str, expected: ReturnPathExpectation | None, resolver: Resolver
) -> ReturnPathEvaluation:
    ev = ReturnPathEvaluation(results=[])
    assert ev.results is not None
    if expected is None or expected.return_path_domain is None:
        ev.results.append(
            finding(
                "deliverability.return_path",
                "Return path (Customer.io sending subdomain)",
                Status.SKIP,
                "The return-path domain is not configured, so its SPF and MX were not checked.",
                rule="RFC 7208 §2.4, RFC 5321 §4.4",
                fix="Add [deliverability] return_path_domain, return_path_spf_include and return_path_mx to the CIO_CONFIG file, copied from Customer.io (Sending domains).",
            )
        )
        return ev
    rp = expected.return_path_domain
    if rp != normalize_name(domain) and not rp.endswith("." + normalize_name(domain)):
        note = f" ({rp} is not under {domain}: DMARC alignment then needs the same organizational domain)"
    else:
        note = ""
    spf_ev, mx_answer = await asyncio.gather(evaluate_spf(rp, resolver), resolver.query(rp, "MX"))
    ev.spf = spf_ev
    ev.results.append(_spf_finding(rp, expected, spf_ev, note))
    ev.results.append(_mx_finding(rp, expected, mx_answer))
    return ev


def _spf_finding(
    rp: str, expected: ReturnPathExpectation, spf: SpfEvaluation, note: str
) -> CheckResult:
    v = Verdicts("deliverability.return_path.spf", f"SPF of the return path {rp}", "RFC 7208 §5.2")
    bad = [r for r in spf.results if r.status in (Status.FAIL, Status.ERROR)]
    errors = [r for r in bad if r.status is Status.ERROR]
    fails = [r for r in bad if r.status is Status.FAIL]
    found = (
        spf.root.record
        if spf.root
        else "; ".join(r.presentation() for r in (spf.answer.txt if spf.answer else ()))
    )
    if fails:
        first = fails[0]
        return v.fail(
            f"{rp}: {first.summary}",
            rule=first.rule,
            found=found,
            detail="; ".join(r.summary for r in fails[1:]),
            fix=f"Publish the SPF record Customer.io gives for {rp}. {first.fix}",
        )
    if errors:
        return v.error(f"{rp}: {errors[0].summary}", rule=errors[0].rule, fix=errors[0].fix)
    includes = spf.include_targets
    missing = [i for i in expected.spf_includes if i not in includes]
    if missing:
        return v.fail(
            f"The SPF record of {rp} does not include {', '.join(missing)} as Customer.io asks.",
            found=found,
            fix=f'Publish at {rp}: "v=spf1 '
            + " ".join(f"include:{i}" for i in expected.spf_includes)
            + ' ~all".',
        )
    warns = [
        r
        for r in spf.results
        if r.status is Status.WARN and r.id != "deliverability.spf.lookup_headroom"
    ]
    what = (
        f"includes {', '.join(expected.spf_includes)}"
        if expected.spf_includes
        else "is valid (no expected include configured)"
    )
    if warns:
        return v.warn(
            f"The SPF record of {rp} {what}, but: {warns[0].summary}{note}",
            rule=warns[0].rule,
            found=found,
            fix=warns[0].fix,
        )
    return v.passed(f"The SPF record of {rp} {what}.{note}", rule="RFC 7208 §5.2, §4.5", found=found)


def _mx_finding(rp: str, expected: ReturnPathExpectation, answer: Any) -> CheckResult:
    v = Verdicts("deliverability.return_path.mx", f"MX of the return path {rp}", "RFC 5321 §5.1")
    if answer.outcome.is_failure:
        return v.dns_error(answer)
    hosts = [mx.exchange for mx in answer.mx]
    found = ", ".join(f"{mx.preference} {mx.exchange}" for mx in answer.mx)
    want = ", ".join(expected.mx_hosts) or "the MX host Customer.io shows"
    if answer.outcome is not Outcome.FOUND or not hosts:
        why = (
            "does not exist (NXDOMAIN)"
            if answer.outcome is Outcome.NXDOMAIN
            else "has no MX record (NODATA)"
        )
        return v.fail(
            f"{rp} {why}: bounces to the return path cannot be delivered.",
            fix=f"Publish MX at {rp}: {want}.",
        )
    if hosts == ["."]:
        return v.fail(
            f"{rp} publishes a null MX: it refuses all mail, including bounces.",
            rule="RFC 7505 §3",
            found=found,
            fix=f"Replace the null MX at {rp} with {want}.",
        )
    missing = [h for h in expected.mx_hosts if h not in hosts]
    if missing:
        return v.fail(
            f"MX of {rp} lacks {', '.join(missing)} (found {', '.join(hosts)}).",
            found=found,
            fix=f"Publish MX at {rp}: {want}.",
        )
    extra = [h for h in hosts if expected.mx_hosts and h not in expected.mx_hosts]
    if extra:
        return v.warn(
            f"MX of {rp} has host(s) Customer.io did not ask for: {', '.join(extra)}; some bounces may go there.",
            found=found,
            fix=f"Remove {', '.join(extra)} from the MX of {rp}.",
        )
    what = (
        "matches what Customer.io asks"
        if expected.mx_hosts
        else "is published (no expected host configured)"
    )
    return v.passed(f"MX of {rp} {what}: {', '.join(hosts)}.", found=found)
