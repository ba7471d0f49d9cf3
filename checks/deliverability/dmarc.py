"""DMARC (RFC 9989, reading RFC 7489 records too) for the sending domain.

- Policy discovery by the DNS Tree Walk: ``_dmarc.<domain>``, then up the tree to the
  organizational domain and the public suffix (at most 8 queries); every candidate is
  queried at once, since the organizational-domain walk needs them all anyway.
- ``v=DMARC1`` first and exact (case-sensitive); tag syntax and values; duplicate tags
  invalidate the record (DKIM tag-list rules, RFC 6376 §3.2, which DMARC adopts);
  multiple records at one name mean no policy applies.
- Policy strength: ``none`` warns (it meets the Gmail/Yahoo bulk-sender minimum but
  protects nothing), ``quarantine``/``reject`` pass; ``t=y`` warns; historic tags
  (``pct``, ``rf``, ``ri``) warn.
- External ``rua``/``ruf`` destinations need
  ``<policy-domain>._report._dmarc.<destination-domain> TXT "v=DMARC1"``.
- Alignment: Customer.io signs DKIM and sets the envelope sender (return path) on its own
  sending subdomain (``cio<digits>.<domain>``), so DMARC can pass only with relaxed
  alignment (same organizational domain), unless the identifiers equal the From domain.

Section numbers of RFC 9989: §4.4 identifier alignment, §4.7 general record format (tags),
§4.8 formal definition, §4.10 DNS Tree Walk, §4.10.1 policy discovery, §4.10.2
organizational domain. Invalid values of tags other than p/sp/np are ignored by receivers
in favour of the defaults (§4.7), so they warn; an invalid policy or a duplicate tag fails.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from checks.base import CheckResult, Severity
from checks.deliverability.dnstypes import DnsAnswer, Resolver, normalize_name
from checks.deliverability.findings import Verdicts

MAX_WALK_QUERIES = 8
POLICIES = ("none", "quarantine", "reject")
KNOWN_TAGS = frozenset(
    {"v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "psd", "t", "pct", "rf", "ri"}
)
HISTORIC_TAGS = ("pct", "rf", "ri")

_VALID_START = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)")
_LOOKS_LIKE = re.compile(r"v\s*=\s*dmarc1", re.IGNORECASE)
_TAG_NAME = re.compile(r"^[A-Za-z]+$")


def is_dmarc_record(text: str) -> bool:
    """RFC 9989 §4.7: "v" first, value exactly "DMARC1"."""
    return bool(_VALID_START.match(text.strip()))


def walk_targets(domain: str) -> list[str]:
    """The names a DNS Tree Walk queries (under ``_dmarc.``), most specific first."""
    labels = normalize_name(domain).split(".")
    targets = [".".join(labels)]
    current = labels
    while len(current) > 1:
        keep = min(len(current) - 1, MAX_WALK_QUERIES - 1)
        current = current[-keep:]
        targets.append(".".join(current))
    return targets


# -- parsing ------------------------------------------------------------------------------
@dataclass
class DmarcRecord:
    text: str
    tags: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  #: make the record (or a tag) invalid
    warnings: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def policy(self, tag: str = "p") -> str | None:
        value = self.tags.get(tag)
        return value.lower() if value is not None and value.lower() in POLICIES else None


def parse_dmarc(text: str) -> DmarcRecord:
    record = DmarcRecord(text)
    parts = [p.strip() for p in text.split(";")]
    if parts and not parts[-1]:
        parts.pop()
    seen: set[str] = set()
    for index, part in enumerate(parts):
        if not part:
            record.errors.append("empty tag between two semicolons")
            continue
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not _TAG_NAME.match(name) or not value:
            record.errors.append(f"{part!r} is not tag=value")
            continue
        key = name.lower()
        if index == 0:
            if name != "v" or value != "DMARC1":
                record.errors.append(f'the record must start with "v=DMARC1" exactly, not {part!r}')
        elif key == "v":
            record.errors.append('"v" must be the first tag')
        if key in seen:
            record.errors.append(f'tag "{key}" appears more than once')
        seen.add(key)
        if key not in KNOWN_TAGS:
            record.unknown.append(name)
            continue
        if name != key:
            record.warnings.append(f'tag name "{name}" should be lower case')
        record.tags.setdefault(key, value)
        _check_value(record, key, value)
    if "p" not in record.tags:
        record.warnings.append('no "p" tag: receivers treat the record as p=none')
    return record


def _check_value(record: DmarcRecord, key: str, value: str) -> None:
    low = value.lower()
    ignored = "; receivers ignore it and use the default"
    if key in ("p", "sp", "np"):
        if low not in POLICIES:
            record.errors.append(f"{key}={value} is not one of none, quarantine, reject")
    elif key in ("adkim", "aspf"):
        if low not in ("r", "s"):
            record.warnings.append(f"{key}={value} must be r (relaxed) or s (strict)" + ignored)
    elif key == "fo":
        if not all(opt.strip() in ("0", "1", "d", "s") for opt in low.split(":")):
            record.warnings.append(
                f"fo={value} must be a colon-separated list of 0, 1, d, s" + ignored
            )
    elif key == "psd":
        if low not in ("y", "n", "u"):
            record.warnings.append(f"psd={value} must be y, n or u" + ignored)
    elif key == "t":
        if low not in ("y", "n"):
            record.warnings.append(f"t={value} must be y or n" + ignored)
    elif key == "pct":
        if not value.isdigit() or int(value) > 100:
            record.warnings.append(f"pct={value} must be a whole number from 0 to 100" + ignored)
    elif key == "ri":
        if not value.isdigit() or int(value) > 0xFFFFFFFF:
            record.warnings.append(f"ri={value} must be a number of seconds" + ignored)
    elif key == "rf":
        if not all(fmt.strip().lower() == "afrf" for fmt in value.split(":")):
            record.warnings.append(f"rf={value}: the only report format is afrf" + ignored)
    elif key in ("rua", "ruf"):
        for uri in report_uris(value):
            scheme, colon, rest = uri.partition(":")
            if not colon or not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*$", scheme) or not rest:
                record.warnings.append(
                    f"{key}: {uri!r} is not a URI (use mailto:reports@example.com); receivers skip it"
                )
            elif scheme.lower() == "mailto" and "@" not in rest:
                record.warnings.append(f"{key}: {uri!r} has no address; receivers skip it")
            elif "!" in rest:
                record.warnings.append(f"{key}: the size limit in {uri!r} is obsolete and ignored")


def report_uris(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


def mailto_domain(uri: str) -> str | None:
    scheme, _, rest = uri.partition(":")
    if scheme.lower() != "mailto" or "@" not in rest:
        return None
    address = rest.split("!", 1)[0].split("?", 1)[0]
    return normalize_name(address.rsplit("@", 1)[1])


# -- discovery ----------------------------------------------------------------------------
@dataclass
class WalkStep:
    domain: str  #: the domain (without the _dmarc. prefix)
    answer: DnsAnswer
    records: list[str]  #: TXT records that start with v=DMARC1
    near_misses: list[str]  #: TXT records that look like DMARC but are not valid

    @property
    def single(self) -> DmarcRecord | None:
        return parse_dmarc(self.records[0]) if len(self.records) == 1 else None


async def tree_walk(domain: str, resolver: Resolver) -> list[WalkStep]:
    targets = walk_targets(domain)
    answers = await asyncio.gather(*(resolver.query(f"_dmarc.{t}", "TXT") for t in targets))
    steps = []
    for target, answer in zip(targets, answers, strict=True):
        texts = [r.text for r in answer.txt]
        valid = [t for t in texts if is_dmarc_record(t)]
        near = [t for t in texts if not is_dmarc_record(t) and _LOOKS_LIKE.search(t)]
        steps.append(WalkStep(target, answer, valid, near))
    return steps


@dataclass
class OrgDomain:
    domain: str | None  #: None when DNS failures prevented the walk
    failures: list[DnsAnswer] = field(default_factory=list)


def organizational_domain(domain: str, steps: list[WalkStep]) -> OrgDomain:
    """RFC 9989 §4.10.2 from a completed walk of ``domain``."""
    failures = [s.answer for s in steps if s.answer.outcome.is_failure]
    if failures:
        return OrgDomain(None, failures)
    with_record = [(s, s.single) for s in steps if s.single is not None]
    for step, record in with_record:  # longest to shortest
        psd = record.tags.get("psd", "u").lower()
        if psd == "n":
            return OrgDomain(step.domain)
        if psd == "y" and step.domain != steps[0].domain:
            below = normalize_name(domain).split(".")
            return OrgDomain(".".join(below[-(len(step.domain.split(".")) + 1) :]))
    if with_record:
        return OrgDomain(with_record[-1][0].domain)
    return OrgDomain(normalize_name(domain))


@dataclass
class DmarcEvaluation:
    domain: str
    steps: list[WalkStep] = field(default_factory=list)
    location: str | None = None  #: domain whose _dmarc record applies
    record: DmarcRecord | None = None
    effective_policy: str | None = None
    org_domain: OrgDomain | None = None
    results: list[CheckResult] = field(default_factory=list)

    @property
    def applies(self) -> bool:
        """A DMARC policy applies to the domain (p= at least none)."""
        return self.record is not None and self.effective_policy is not None


@dataclass(frozen=True)
class AlignmentIdentifiers:
    """Domains Customer.io puts in the messages; None when not configured."""

    return_path_domain: str | None = None
    dkim_domain: str | None = None


async def evaluate_dmarc(
    domain: str, resolver: Resolver, identifiers: AlignmentIdentifiers = AlignmentIdentifiers()
) -> DmarcEvaluation:
    domain = normalize_name(domain)
    ev = DmarcEvaluation(domain)
    ev.steps = await tree_walk(domain, resolver)
    _discover(ev)
    if ev.record is None:
        return ev
    ev.org_domain = organizational_domain(domain, ev.steps)
    _syntax(ev)
    _policy(ev)
    _historic(ev)
    await asyncio.gather(_report_auth(ev, resolver), _alignment(ev, resolver, identifiers))
    return ev


def _discover(ev: DmarcEvaluation) -> None:
    v = Verdicts("deliverability.dmarc.record", f"DMARC record for {ev.domain}", "RFC 9989 §4.10")
    own = ev.steps[0]
    for step in ev.steps:
        if step.answer.outcome.is_failure:
            ev.results.append(v.dns_error(step.answer))
            return
        if len(step.records) > 1:
            ev.results.append(v.fail(
                f"{len(step.records)} DMARC records at _dmarc.{step.domain}: receivers discard them all, so no DMARC policy applies.",
                found=" | ".join(step.records),
                fix=f"Keep exactly one TXT record starting with v=DMARC1 at _dmarc.{step.domain}.",
            ))
            return
        if step is own and step.near_misses and not step.records:
            ev.results.append(v.fail(
                f'The TXT record at _dmarc.{step.domain} is not a DMARC record: it must start with "v=DMARC1" exactly (case-sensitive, first tag), so receivers ignore it.',
                rule="RFC 9989 §4.7, §4.8",
                found=" | ".join(step.near_misses),
                fix=f'Rewrite it to start with "v=DMARC1; p=..." at _dmarc.{step.domain}.',
            ))
            return
        if step.records:
            ev.location = step.domain
            ev.record = parse_dmarc(step.records[0])
            break
    if ev.record is None or ev.location is None:
        names = ", ".join(f"_dmarc.{s.domain}" for s in ev.steps)
        ev.results.append(v.fail(
            f"No DMARC record applies to {ev.domain} (looked at {names}).",
            rule="RFC 9989 §4.10.1",
            fix=f'Publish TXT at _dmarc.{ev.domain}: "v=DMARC1; p=none; rua=mailto:dmarc@{ev.domain}" and move to p=quarantine once reports are clean (Gmail/Yahoo require at least p=none for bulk senders).',
        ))
        return
    if ev.location == ev.domain:
        summary = f"DMARC record at _dmarc.{ev.domain}."
    else:
        summary = f"No record at _dmarc.{ev.domain}; the record of the organizational domain at _dmarc.{ev.location} applies (its sp= policy, if any)."
    ev.results.append(v.passed(
        summary, rule="RFC 9989 §4.10.1", found=ev.record.text, data={"location": f"_dmarc.{ev.location}"}
    ))


def _syntax(ev: DmarcEvaluation) -> None:
    assert ev.record is not None
    v = Verdicts("deliverability.dmarc.syntax", "DMARC record syntax", "RFC 9989 §4.7")
    rec = ev.record
    if rec.errors:
        ev.results.append(v.fail(
            "DMARC record errors: " + "; ".join(rec.errors) + ".",
            rule="RFC 9989 §4.7, §4.8, RFC 6376 §3.2",
            found=rec.text,
            fix="Correct the tags listed; an invalid p/sp/np or duplicate tag makes receivers ignore the policy.",
        ))
        return
    notes = rec.warnings + [f'unknown tag "{t}" is ignored' for t in rec.unknown]
    notes = [n for n in notes if not n.startswith('no "p" tag')]
    if notes:
        ev.results.append(v.warn(
            "DMARC record: " + "; ".join(notes) + ".",
            found=rec.text,
            fix="Remove or correct the tags listed (check for typos in tag names).",
        ))
    else:
        ev.results.append(v.passed("Every DMARC tag is well-formed.", found=rec.text))


def _policy(ev: DmarcEvaluation) -> None:
    assert ev.record is not None
    v = Verdicts("deliverability.dmarc.policy", "DMARC policy strength", "RFC 9989 §4.7")
    rec = ev.record
    inherited = ev.location != ev.domain
    if inherited and rec.tags.get("sp") is not None:
        tag = "sp"
    else:
        tag = "p"
    policy = rec.policy(tag)
    if tag == "p" and "p" not in rec.tags:
        policy = "none"
    if policy is None:
        # RFC 9989 §4.10.1: an invalid p with a valid rua is treated as p=none; else no DMARC.
        valid_rua = any(mailto_domain(u) for u in report_uris(rec.tags.get("rua", "")))
        ev.effective_policy = "none" if valid_rua else None
        ev.results.append(v.fail(
            f"{tag}={rec.tags.get(tag)} is not a valid policy; receivers "
            + ("fall back to p=none." if valid_rua else "apply no DMARC at all."),
            rule="RFC 9989 §4.10.1",
            found=rec.text,
            fix=f"Set {tag}= to none, quarantine or reject.",
        ))
        return
    ev.effective_policy = policy
    testing = rec.tags.get("t", "n").lower() == "y"
    where = f"{tag}={policy}" + (f" inherited from _dmarc.{ev.location}" if inherited else "")
    if policy == "none":
        ev.results.append(v.warn(
            f"Policy {where}{'' if 'p' in rec.tags or tag != 'p' else ' (no p tag)'}: meets the Gmail/Yahoo bulk-sender minimum but tells receivers to do nothing with spoofed mail.",
            found=rec.text,
            severity=Severity.ADVISORY,
            fix="Once aggregate reports show Customer.io and your other senders aligned, move to p=quarantine, then p=reject.",
        ))
    elif testing:
        ev.results.append(v.warn(
            f"Policy {where} but t=y asks receivers not to apply it (testing mode).",
            found=rec.text,
            severity=Severity.ADVISORY,
            fix="Remove t=y when the reports look clean so the policy is enforced.",
        ))
    else:
        ev.results.append(v.passed(f"Policy {where}.", found=rec.text))


def _historic(ev: DmarcEvaluation) -> None:
    assert ev.record is not None
    v = Verdicts("deliverability.dmarc.historic_tags", "DMARC historic tags", "RFC 9989 §4.7")
    present = [t for t in HISTORIC_TAGS if t in ev.record.tags]
    if not present:
        ev.results.append(v.passed("No historic tags (pct, rf, ri)."))
        return
    pct = ev.record.tags.get("pct")
    extra = ""
    if pct is not None and pct.isdigit() and int(pct) < 100:
        extra = f" pct={pct}: RFC 7489 receivers apply the policy to only {pct}% of failing mail, RFC 9989 receivers ignore it."
    ev.results.append(v.warn(
        f"Historic tag(s) {', '.join(present)}: removed by RFC 9989 and ignored by receivers that follow it.{extra}",
        rule="RFC 9989 §4.7 (pct, rf, ri removed), RFC 7489 §6.3",
        found=ev.record.text,
        severity=Severity.ADVISORY,
        fix="Remove "
        + ", ".join(f"{t}=" for t in present)
        + " and use t=y instead of pct for a gradual rollout.",
    ))


async def _report_auth(ev: DmarcEvaluation, resolver: Resolver) -> None:
    assert ev.record is not None and ev.location is not None
    v = Verdicts("deliverability.dmarc.report_destinations", "DMARC external report destinations",
                 "RFC 7489 §7.1", Severity.ADVISORY)
    org = (ev.org_domain.domain if ev.org_domain else None) or ev.location
    destinations: dict[str, list[str]] = {}
    for tag in ("rua", "ruf"):
        for uri in report_uris(ev.record.tags.get(tag, "")):
            dest = mailto_domain(uri)
            if dest and not (dest == org or dest.endswith("." + org)):
                destinations.setdefault(dest, []).append(f"{tag}={uri}")
    if not destinations:
        has = any(t in ev.record.tags for t in ("rua", "ruf"))
        ev.results.append(v.passed(
            "Report destinations are within the domain." if has else "No rua/ruf report destinations."
        ))
        return
    names = {dest: f"{ev.location}._report._dmarc.{dest}" for dest in destinations}
    answers = dict(
        zip(
            names,
            await asyncio.gather(*(resolver.query(n, "TXT") for n in names.values())),
            strict=True,
        )
    )
    missing, failed = [], []
    for dest, answer in answers.items():
        if answer.outcome.is_failure:
            failed.append(answer)
        elif not any(r.text.strip().startswith("v=DMARC1") for r in answer.txt):
            missing.append(f"{names[dest]} ({', '.join(destinations[dest])})")
    if missing:
        ev.results.append(v.fail(
            'External report destination(s) have not authorised reports for this domain: no "v=DMARC1" TXT at '
            + "; ".join(missing)
            + ". Receivers will not send those reports.",
            found=ev.record.text,
            fix='Ask the report provider to publish TXT "v=DMARC1" at the names listed (most DMARC vendors do this on request), or use an address in your own domain.',
        ))
    elif failed:
        ev.results.append(v.error(
            "Could not check report authorisation: "
            + "; ".join(a.describe_failure() for a in failed)
            + ".",
            fix="Retry; check the DNS of the report destination domain.",
        ))
    else:
        ev.results.append(v.passed(
            "External report destinations authorise this domain: " + ", ".join(names.values()) + "."
        ))


async def _alignment(ev: DmarcEvaluation, resolver: Resolver, ids: AlignmentIdentifiers) -> None:
    assert ev.record is not None
    v = Verdicts("deliverability.dmarc.alignment", "DMARC alignment for Customer.io mail", "RFC 9989 §4.4")
    rec = ev.record
    # an invalid value is ignored in favour of the default, relaxed (RFC 9989 §4.7)
    adkim = "s" if rec.tags.get("adkim", "r").lower() == "s" else "r"
    aspf = "s" if rec.tags.get("aspf", "r").lower() == "s" else "r"
    # Customer.io's identifiers: configured, or its documented default (a subdomain).
    placeholder = f"cio<digits>.{ev.domain}"
    spf_id = normalize_name(ids.return_path_domain) if ids.return_path_domain else None
    dkim_id = normalize_name(ids.dkim_domain) if ids.dkim_domain else spf_id
    problems: list[str] = []
    unknown: list[DnsAnswer] = []

    async def aligned(identifier: str | None, mode: str) -> bool | None:
        if identifier is None:  # Customer.io's default: a subdomain of the From domain
            return mode == "r"
        if identifier == ev.domain:
            return True
        if mode == "s":
            return False
        org_from = ev.org_domain
        org_id = organizational_domain(identifier, await tree_walk(identifier, resolver))
        if org_from is None or org_from.domain is None or org_id.domain is None:
            unknown.extend((org_from.failures if org_from else []) + org_id.failures)
            return None
        return org_from.domain == org_id.domain

    dkim_ok, spf_ok = await asyncio.gather(aligned(dkim_id, adkim), aligned(spf_id, aspf))
    if dkim_ok is False:
        problems.append(
            f"DKIM d={dkim_id or placeholder} does not align with From {ev.domain} (adkim={adkim})"
        )
    if spf_ok is False:
        problems.append(
            f"return path {spf_id or placeholder} does not align with From {ev.domain} (aspf={aspf})"
        )
    found = rec.text
    if dkim_ok is False and spf_ok is False:
        ev.results.append(v.fail(
            "DMARC cannot pass for Customer.io mail: " + "; ".join(problems) + ".",
            found=found,
            fix="Use relaxed alignment (remove adkim=s / aspf=s) or configure Customer.io to sign and bounce with the From domain itself.",
        ))
    elif None in (dkim_ok, spf_ok) and unknown:
        ev.results.append(v.error(
            "Could not determine the organizational domains: "
            + "; ".join(a.describe_failure() for a in unknown)
            + ".",
            rule="RFC 9989 §4.10.2",
            fix="Retry; check the DNS servers for the names listed.",
        ))
    elif problems:
        ev.results.append(v.warn(
            "Only one identifier can align: "
            + "; ".join(problems)
            + ". DMARC then depends on the other alone (SPF breaks on forwarding).",
            found=found,
            fix="Use relaxed alignment for both (adkim=r, aspf=r, the defaults).",
        ))
    else:
        detail = f"DKIM d={dkim_id or placeholder}, return path {spf_id or placeholder}, From {ev.domain}"
        ev.results.append(v.passed(
            f"Customer.io's DKIM and return-path domains can align with {ev.domain} (adkim={adkim}, aspf={aspf})"
            + (
                "."
                if spf_id and dkim_id
                else f", assuming its default sending subdomain {placeholder} (set [deliverability] return_path_domain to check the real one)."
            ),
            found=found,
            detail=detail,
        ))


async def check_dmarc(domain: str, resolver: Resolver) -> list[CheckResult]:
    return (await evaluate_dmarc(domain, resolver)).results


__all__ = [
    "AlignmentIdentifiers",
    "DmarcEvaluation",
    "check_dmarc",
    "evaluate_dmarc",
    "is_dmarc_record",
    "organizational_domain",
    "parse_dmarc",
    "tree_walk",
    "walk_targets",
]
