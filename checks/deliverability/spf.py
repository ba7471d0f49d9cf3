"""SPF (RFC 7208) validation of a domain's published policy.

The whole include/redirect tree is fetched (each record's lookups concurrently) and
checked: one ``v=spf1`` record per name (§4.5), term syntax (§4.6.1, §12, macros §7),
the limit of 10 DNS-querying terms counted through the tree (§4.6.4), at most 2 void
lookups (§4.6.4), at most 10 MX names behind each ``mx`` (§4.6.4), include and redirect
targets that publish SPF (§5.2, §6.1), duplicate and ignored modifiers (§6, §6.1), loops,
``ptr`` (§5.5) and the ``all`` qualifier (§5.1).

This is a static check of what is published, not an evaluation for one sender IP, so
every term is counted (the worst case a receiver can meet). Terms whose target holds a
macro (``exists:%{i}.example.com``) are counted but cannot be resolved without a message.
The address lookups that follow an ``mx`` (one per MX name) are not made; the limit that
governs them (10 names) is checked on the MX answer. ``a`` and ``exists`` are looked up
as A records (an IPv4 sender's view; Customer.io sends over IPv4), so a name with only
AAAA records counts as a void lookup. When a lookup fails (SERVFAIL, timeout) the
findings that depend on the unread part of the tree are ``error``, never ``pass``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field

from checks.base import CheckResult
from checks.deliverability.dnstypes import DnsAnswer, Outcome, Resolver, TxtRecord, normalize_name
from checks.deliverability.findings import Verdicts

LOOKUP_LIMIT = 10
LOOKUP_NEAR = 8  #: from this many lookups on, warn that there is little headroom
VOID_LIMIT = 2
MX_NAME_LIMIT = 10
MAX_DEPTH = 12

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})

_MODIFIER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.]*$")
_MACRO = re.compile(r"%\{([A-Za-z])(\d*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)
_MACRO_LETTERS = set("slodiphcrtv")
_EXP_ONLY_LETTERS = set("crt")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?$")
_TOPLABEL = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?$")


def is_spf_record(text: str) -> bool:
    """§4.5: "v=spf1" (case-insensitive) followed by a space or the end of the record."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


# -- parsing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    text: str
    name: str  #: mechanism or modifier name, lower case
    qualifier: str  #: "+", "-", "~", "?" for mechanisms, "" for modifiers
    value: str | None  #: after ":" (mechanism) or "=" (modifier); None when absent
    is_modifier: bool

    @property
    def target(self) -> str | None:
        """The domain-spec without any CIDR suffix (a, mx)."""
        if self.value is None:
            return None
        if self.name in ("a", "mx"):
            return self.value.split("/", 1)[0] or None
        return self.value


@dataclass
class ParsedSpf:
    terms: list[Term] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  #: syntax errors (permerror)

    def mechanisms(self, name: str | None = None) -> list[Term]:
        return [t for t in self.terms if not t.is_modifier and (name is None or t.name == name)]

    def modifiers(self, name: str) -> list[Term]:
        return [t for t in self.terms if t.is_modifier and t.name == name]


def parse_spf(text: str) -> ParsedSpf:
    """Parse one SPF record (already joined, §3.3). Collects every syntax error."""
    parsed = ParsedSpf()
    if not is_spf_record(text):
        parsed.errors.append('the record does not start with "v=spf1"')
        return parsed
    if "\t" in text:
        parsed.errors.append("terms are separated by a tab; only spaces are allowed")
    for raw in text.replace("\t", " ").split(" ")[1:]:
        if not raw:
            continue
        term, error = _parse_term(raw)
        if error:
            parsed.errors.append(f"{raw!r}: {error}")
        if term is not None:
            parsed.terms.append(term)
    return parsed


def _parse_term(raw: str) -> tuple[Term | None, str | None]:
    # A modifier is name "=" value, where the name comes before any ":" or "/".
    eq = raw.find("=")
    colon = raw.find(":")
    slash = raw.find("/")
    if eq > 0 and (colon < 0 or eq < colon) and (slash < 0 or eq < slash):
        name, value = raw[:eq], raw[eq + 1 :]
        if not _MODIFIER_NAME.match(name):
            return None, "not a valid modifier name"
        lname = name.lower()
        term = Term(raw, lname, "", value, True)
        if lname in ("redirect", "exp"):
            if not value:
                return term, f"the {lname} modifier needs a domain"
            return term, _domain_spec_error(value, exp=False)
        return term, _macro_string_error(value, exp=False)
    qualifier = "+"
    body = raw
    if body[0] in "+-~?":
        qualifier, body = body[0], body[1:]
    name, sep, rest = body.partition(":")
    cidr = ""
    if not sep and "/" in name:
        name, _, cidr = name.partition("/")
        cidr = "/" + cidr
    lname = name.lower()
    if lname not in MECHANISMS:
        return None, "unknown mechanism"
    value: str | None = rest if sep else None
    if cidr:
        value = cidr if value is None else value
    term = Term(raw, lname, qualifier, value, False)
    if lname == "all":
        return term, (None if value is None else '"all" takes no argument')
    if lname in ("include", "exists"):
        if not value:
            return term, f'"{lname}" needs a domain ("{lname}:example.com")'
        return term, _domain_spec_error(value, exp=False)
    if lname == "ptr":
        return term, (
            None
            if value is None
            else _domain_spec_error(value, exp=False)
            if value
            else "empty domain"
        )
    if lname in ("a", "mx"):
        if value is None:
            return term, None
        domain, _, cidrs = value.partition("/")
        if sep and not domain:
            return term, "empty domain after ':'"
        if cidrs or value.startswith("/"):
            error = _dual_cidr_error("/" + cidrs)
            if error:
                return term, error
        return term, (_domain_spec_error(domain, exp=False) if domain else None)
    if lname in ("ip4", "ip6"):
        if not value:
            return term, f'"{lname}" needs an address'
        address, has_length, length = value.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return term, f"{address!r} is not an IP address"
        if (lname == "ip4") != (ip.version == 4):
            return term, f"{address!r} is not an IPv{lname[-1]} address"
        if has_length:
            limit = 32 if lname == "ip4" else 128
            if (
                not length.isdigit()
                or int(length) > limit
                or (len(length) > 1 and length[0] == "0")
            ):
                return term, f"prefix length must be 0-{limit}"
        return term, None
    return term, None  # pragma: no cover - every mechanism is handled above


def _dual_cidr_error(text: str) -> str | None:
    # "/" ip4-cidr-length [ "//" ip6-cidr-length ]  or  "//" ip6-cidr-length
    m = re.fullmatch(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?", text)
    if not m or (m.group(1) is None and m.group(2) is None):
        return f"{text!r} is not a valid CIDR length"
    if m.group(1) is not None and int(m.group(1)) > 32:
        return "IPv4 prefix length must be 0-32"
    if m.group(2) is not None and int(m.group(2)) > 128:
        return "IPv6 prefix length must be 0-128"
    return None


def _macro_string_error(text: str, *, exp: bool) -> str | None:
    """§7.1 macro-string: literals %x21-24 / %x26-7E, expands %{..}, %%, %_, %-."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            if text[i + 1 : i + 2] in ("%", "_", "-"):
                i += 2
                continue
            m = _MACRO.match(text, i)
            if not m:
                return f"invalid macro at {text[i : i + 8]!r}"
            letter = m.group(1).lower()
            if letter not in _MACRO_LETTERS:
                return f"unknown macro letter %{{{m.group(1)}}}"
            if letter in _EXP_ONLY_LETTERS and not exp:
                return f"macro %{{{m.group(1)}}} is allowed only in exp text (RFC 7208 §7.2)"
            if m.group(2) and int(m.group(2)) == 0:
                return "a macro transformer digit must not be 0"
            i = m.end()
            continue
        if not (0x21 <= ord(ch) <= 0x7E):
            return f"character {ch!r} is not allowed"
        i += 1
    return None


def _domain_spec_error(spec: str, *, exp: bool) -> str | None:
    """§7.1 domain-spec: macro-string ending in a top label or a macro."""
    error = _macro_string_error(spec, exp=exp)
    if error:
        return error
    if "%" in spec:
        return None  # ends in a macro, or its literal tail is checked when expanded
    name = spec[:-1] if spec.endswith(".") else spec
    if len(name) > 253:
        return "domain name longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return f"{spec!r} is not a fully qualified domain name"
    for label in labels:
        if not label or len(label) > 63 or not _LABEL.match(label):
            return f"{spec!r} is not a valid domain name"
    if not _TOPLABEL.match(labels[-1]):
        return f"{spec!r} does not end in a valid top-level label"
    return None


# -- the tree -----------------------------------------------------------------------------
@dataclass
class SpfNode:
    """One record in the include/redirect tree."""

    domain: str
    record: str
    parsed: ParsedSpf
    via: str  #: "" for the top, "include" or "redirect"
    children: list[SpfNode] = field(default_factory=list)


@dataclass
class SpfEvaluation:
    """Everything learned about a domain's SPF; ``results`` are the findings."""

    domain: str
    answer: DnsAnswer | None = None
    records: list[TxtRecord] = field(default_factory=list)
    root: SpfNode | None = None
    lookups: int = 0
    void_lookups: list[str] = field(default_factory=list)
    mx_overflow: list[tuple[str, int]] = field(default_factory=list)
    missing_targets: list[tuple[str, str, str]] = field(default_factory=list)  # via, target, why
    loops: list[str] = field(default_factory=list)
    ptr_in: list[str] = field(default_factory=list)
    syntax: list[tuple[str, str]] = field(default_factory=list)  # domain, error
    duplicate_modifiers: list[tuple[str, str]] = field(default_factory=list)
    ignored_redirects: list[str] = field(default_factory=list)
    unknown_modifiers: list[tuple[str, str]] = field(default_factory=list)
    macro_terms: list[str] = field(default_factory=list)
    dns_failures: list[DnsAnswer] = field(default_factory=list)
    include_targets: set[str] = field(default_factory=set)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def published(self) -> bool:
        return self.root is not None


async def evaluate_spf(domain: str, resolver: Resolver) -> SpfEvaluation:
    """Fetch and check the SPF policy of ``domain``."""
    domain = normalize_name(domain)
    ev = SpfEvaluation(domain)
    answer = await resolver.query(domain, "TXT")
    ev.answer = answer
    v = Verdicts("deliverability.spf.record", f"SPF record at {domain}", "RFC 7208 §4.5")
    if answer.outcome.is_failure:
        ev.results.append(v.dns_error(answer, "RFC 7208 §4.4"))
        return ev
    ev.records = [r for r in answer.txt if is_spf_record(r.text)]
    if answer.outcome is Outcome.NXDOMAIN:
        ev.results.append(v.fail(
            f"{domain} does not exist (NXDOMAIN), so it has no SPF record.",
            rule="RFC 7208 §4.3",
            fix=f'Check the domain name; publish {domain} in DNS with a TXT record "v=spf1 ... -all".',
        ))
        return ev
    if not ev.records:
        ev.results.append(v.fail(
            f'No SPF record at {domain}: no TXT record starts with "v=spf1".',
            found="; ".join(r.presentation() for r in answer.txt),
            fix=f'Publish one TXT record at {domain}: "v=spf1 include:<your senders> ~all" (add the include Customer.io gives you for its sending subdomain if you send from this domain\'s envelope).',
        ))
        return ev
    if len(ev.records) > 1:
        ev.results.append(v.fail(
            f"{len(ev.records)} SPF records at {domain}; receivers return permerror when there is more than one.",
            found=" | ".join(r.presentation() for r in ev.records),
            fix='Merge them into a single "v=spf1" TXT record (one set of mechanisms, one "all") and delete the others.',
        ))
        return ev
    record = ev.records[0]
    split_note = f" (joined from {len(record.strings)} strings)" if len(record.strings) > 1 else ""
    ev.results.append(
        v.passed(f"One SPF record at {domain}{split_note}.", rule="RFC 7208 §4.5, §3.3", found=record.text)
    )
    ev.root = SpfNode(domain, record.text, parse_spf(record.text), "")
    await _walk(ev, resolver, ev.root, (domain,), 0)
    _summarize(ev)
    return ev


async def _walk(
    ev: SpfEvaluation, resolver: Resolver, node: SpfNode, path: tuple[str, ...], depth: int
) -> None:
    parsed = node.parsed
    for error in parsed.errors:
        ev.syntax.append((node.domain, error))
    for name in ("redirect", "exp"):
        if len(parsed.modifiers(name)) > 1:
            ev.duplicate_modifiers.append((node.domain, name))
    for term in parsed.terms:
        if term.is_modifier and term.name not in ("redirect", "exp"):
            ev.unknown_modifiers.append((node.domain, term.text))
    has_all = bool(parsed.mechanisms("all"))
    redirects = parsed.modifiers("redirect")
    if redirects and has_all:
        ev.ignored_redirects.append(node.domain)

    # Terms that query DNS, in record order; redirect last and only when it applies (§6.1).
    lookup_terms = [t for t in parsed.terms if not t.is_modifier and t.name in LOOKUP_TERMS]
    if redirects and not has_all:
        lookup_terms.append(redirects[0])
    ev.lookups += len(lookup_terms)
    if ev.lookups > LOOKUP_LIMIT * 3 or depth > MAX_DEPTH:
        return  # far past the limit already: the verdict cannot change

    jobs: list[tuple[Term, str, str]] = []  # term, name, rdtype
    for term in lookup_terms:
        if term.name == "ptr":
            ev.ptr_in.append(node.domain)
            continue
        target = term.target or node.domain
        if "%" in target:
            ev.macro_terms.append(f"{node.domain}: {term.text}")
            continue
        if term.name in ("include", "redirect"):
            ev.include_targets.add(normalize_name(target))
        rdtype = {"include": "TXT", "redirect": "TXT", "a": "A", "mx": "MX", "exists": "A"}[
            term.name
        ]
        jobs.append((term, normalize_name(target), rdtype))

    answers = await asyncio.gather(*(resolver.query(name, rdtype) for _, name, rdtype in jobs))
    recurse: list[tuple[SpfNode, tuple[str, ...]]] = []
    for (term, name, _rdtype), answer in zip(jobs, answers, strict=True):
        if answer.outcome.is_failure:
            ev.dns_failures.append(answer)
            continue
        if answer.outcome.is_void:
            ev.void_lookups.append(f"{term.text} ({answer.outcome.value})")
        if term.name == "mx" and len(answer.mx) > MX_NAME_LIMIT:
            ev.mx_overflow.append((name, len(answer.mx)))
        if term.name not in ("include", "redirect"):
            continue
        where = f"{term.text} in {node.domain}"
        if answer.outcome is not Outcome.FOUND:
            ev.missing_targets.append(
                (term.name, name, f"{where}: {name} has no TXT record ({answer.outcome.value})")
            )
            continue
        spf = [r for r in answer.txt if is_spf_record(r.text)]
        if not spf:
            ev.missing_targets.append((term.name, name, f"{where}: {name} publishes no SPF record"))
            continue
        if len(spf) > 1:
            ev.missing_targets.append(
                (term.name, name, f"{where}: {name} publishes {len(spf)} SPF records")
            )
            continue
        if name in path:
            ev.loops.append(" -> ".join((*path, name)))
            continue
        child = SpfNode(name, spf[0].text, parse_spf(spf[0].text), term.name)
        node.children.append(child)
        recurse.append((child, (*path, name)))
    await asyncio.gather(
        *(_walk(ev, resolver, child, child_path, depth + 1) for child, child_path in recurse)
    )


def _effective_all(node: SpfNode) -> tuple[str | None, str]:
    """The qualifier of the "all" that ends evaluation, and where it is (follows redirect)."""
    current: SpfNode | None = node
    while current is not None:
        alls = current.parsed.mechanisms("all")
        if alls:
            return alls[0].qualifier, current.domain
        if not current.parsed.modifiers("redirect"):
            return None, current.domain
        current = next((c for c in current.children if c.via == "redirect"), None)
    return None, node.domain


def _summarize(ev: SpfEvaluation) -> None:
    assert ev.root is not None
    d = ev.domain
    record = ev.root.record
    complete = not ev.dns_failures
    failed_names = ", ".join(sorted({a.name for a in ev.dns_failures}))
    read_part = (
        "" if complete else f" in the records that could be read (DNS failed for {failed_names})"
    )
    add = ev.results.append

    def incomplete(v: Verdicts, rule: str | None = None) -> CheckResult:
        return v.error(
            f"Could not read the whole SPF tree: DNS failed for {failed_names}.",
            rule=rule or v.rule,
            detail="; ".join(a.describe_failure() for a in ev.dns_failures),
            fix="Retry; if it persists, check the DNS servers for the names listed (SERVFAIL or timeouts make receivers return temperror).",
        )

    v = Verdicts("deliverability.spf.syntax", "SPF term syntax", "RFC 7208 §4.6.1, §12")
    if ev.syntax:
        add(v.fail(
            f"SPF syntax error{'s' if len(ev.syntax) > 1 else ''}: "
            + "; ".join(f"{dom}: {err}" for dom, err in ev.syntax),
            found=record,
            fix="Correct the terms listed (mechanisms are all, include, a, mx, ptr, ip4, ip6, exists; modifiers name=value) — receivers return permerror for the whole record.",
        ))
    else:
        add(v.passed("Every SPF term in the tree is well-formed" + read_part + ".", found=record))

    v = Verdicts("deliverability.spf.lookup_limit", "SPF DNS lookup limit (10)", "RFC 7208 §4.6.4")
    n = ev.lookups
    if n > LOOKUP_LIMIT:
        add(v.fail(
            f"{n} DNS-querying terms through includes and redirects; the limit is {LOOKUP_LIMIT}, so receivers return permerror.",
            found=record,
            data={"lookups": n},
            fix="Remove includes you no longer use, replace a/mx with ip4/ip6 ranges, or move senders to their own subdomains so each SPF tree stays at 10 lookups or fewer.",
        ))
    elif not complete:
        add(incomplete(v))
    else:
        add(v.passed(f"{n} of {LOOKUP_LIMIT} DNS-querying terms used.", found=record, data={"lookups": n}))

    v = Verdicts("deliverability.spf.lookup_headroom", "SPF lookup headroom", "RFC 7208 §4.6.4")
    voids = len(ev.void_lookups)
    if n <= LOOKUP_LIMIT and voids <= VOID_LIMIT and complete:
        near = []
        if n >= LOOKUP_NEAR:
            near.append(f"{n} of {LOOKUP_LIMIT} DNS lookups")
        if voids == VOID_LIMIT:
            near.append(f"{voids} of {VOID_LIMIT} void lookups")
        counts = {"lookups": n, "void_lookups": voids}
        if near:
            add(v.warn(
                f"Close to the SPF limits: {', '.join(near)}; one more include from a provider change tips it into permerror.",
                data=counts,
                fix="Trim includes that are no longer used or flatten stable ranges to ip4/ip6 to keep a margin of 2-3 lookups.",
            ))
        else:
            add(v.passed(f"{n} lookups and {voids} void lookups leave headroom.", data=counts))

    v = Verdicts("deliverability.spf.void_lookups", "SPF void lookups (2)", "RFC 7208 §4.6.4")
    if voids > VOID_LIMIT:
        add(v.fail(
            f"{voids} terms point at names with no records ({'; '.join(ev.void_lookups)}); more than {VOID_LIMIT} void lookups is a permerror.",
            found=record,
            fix="Remove the terms whose names no longer exist or have no records of the type the term asks for.",
        ))
    elif not complete:
        add(incomplete(v))
    else:
        add(v.passed(f"{voids} void lookup(s), limit {VOID_LIMIT}.", detail="; ".join(ev.void_lookups)))

    v = Verdicts("deliverability.spf.mx_limit", "SPF mx mechanism: at most 10 MX names", "RFC 7208 §4.6.4")
    if ev.mx_overflow:
        add(v.fail(
            "An mx term resolves to more than 10 MX names: "
            + ", ".join(f"{dom} ({k})" for dom, k in ev.mx_overflow)
            + "; receivers return permerror.",
            found=record,
            fix="Replace the mx term with ip4/ip6 ranges of the hosts that actually send, or an include of the provider's SPF record.",
        ))
    elif not complete:
        add(incomplete(v))
    else:
        add(v.passed("No mx term resolves to more than 10 MX names."))

    v = Verdicts("deliverability.spf.include_targets", "SPF include and redirect targets", "RFC 7208 §5.2, §6.1")
    if ev.missing_targets:
        add(v.fail(
            "; ".join(why for _, _, why in ev.missing_targets)
            + ". An include or redirect whose target has no single SPF record is a permerror.",
            found=record,
            fix="Correct the include/redirect domain (copy it from the provider's documentation) or remove it.",
        ))
    elif not complete:
        add(incomplete(v, "RFC 7208 §5.2"))
    else:
        targets = ", ".join(sorted(ev.include_targets)) or "none"
        add(v.passed(f"Every include/redirect target publishes one SPF record ({targets})."))

    v = Verdicts("deliverability.spf.loop", "SPF include/redirect loops", "RFC 7208 §4.6.4, §5.2")
    if ev.loops:
        add(v.fail(
            "SPF include/redirect loop: " + "; ".join(ev.loops) + ". It can only end in permerror.",
            fix="Break the loop: a record must not include or redirect to itself or to a record that leads back to it.",
        ))
    elif not complete:
        add(incomplete(v))
    else:
        add(v.passed("No include or redirect loop."))

    v = Verdicts("deliverability.spf.modifiers", "SPF modifiers", "RFC 7208 §6")
    if ev.duplicate_modifiers:
        add(v.fail(
            "Modifier given more than once: "
            + ", ".join(f"{name}= in {dom}" for dom, name in ev.duplicate_modifiers)
            + " (permerror).",
            found=record,
            fix="Keep a single redirect= and a single exp= per record.",
        ))
    elif ev.ignored_redirects:
        add(v.warn(
            'redirect= is ignored because the record also has an "all" mechanism: '
            + ", ".join(ev.ignored_redirects)
            + ".",
            rule="RFC 7208 §6.1",
            found=record,
            fix='Remove either the redirect= (if "all" is intended) or the "all" (if the redirect target\'s policy should apply).',
        ))
    else:
        detail = "; ".join(f"{dom}: {t}" for dom, t in ev.unknown_modifiers)
        add(v.passed(
            "Modifiers are used correctly" + read_part + ".",
            detail=f"Unknown modifiers (ignored by receivers): {detail}" if detail else "",
        ))

    v = Verdicts("deliverability.spf.ptr", "SPF ptr mechanism", "RFC 7208 §5.5")
    if ev.ptr_in:
        add(v.warn(
            "The ptr mechanism is used in "
            + ", ".join(ev.ptr_in)
            + "; it is slow, unreliable and some receivers skip it.",
            found=record,
            fix="Replace ptr with ip4/ip6 ranges or a/mx terms.",
        ))
    else:
        add(v.passed("No ptr mechanism" + read_part + "."))

    v = Verdicts("deliverability.spf.all", "SPF default result (all)", "RFC 7208 §5.1")
    qualifier, where = _effective_all(ev.root)
    if qualifier is None and ev.root.parsed.modifiers("redirect") and not complete:
        add(incomplete(v, "RFC 7208 §5.1, §6.1"))
    elif qualifier == "+":
        add(v.fail(
            f'"+all" in {where} authorises every host on the internet to send as {d}.',
            found=record,
            fix='End the record with "-all" or "~all" instead of "+all".',
        ))
    elif qualifier == "?":
        add(v.warn(
            f'"?all" in {where}: mail from unlisted hosts is neutral, which gives no protection.',
            rule="RFC 7208 §5.1, §8.2",
            found=record,
            fix='End the record with "~all" (softfail) or "-all" (fail).',
        ))
    elif qualifier is None:
        add(v.warn(
            f'The SPF record of {where} has no "all" and no redirect, so unlisted hosts get neutral.',
            rule="RFC 7208 §4.7",
            found=record,
            fix='End the record with "~all" or "-all".',
        ))
    else:
        word = "softfail" if qualifier == "~" else "fail"
        add(v.passed(f'Unlisted hosts get {word} ("{qualifier}all" in {where}).', found=record))


async def check_spf(domain: str, resolver: Resolver) -> list[CheckResult]:
    return (await evaluate_spf(domain, resolver)).results
