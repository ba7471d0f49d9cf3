"""DKIM key records (RFC 6376, RFC 8301, RFC 8463) for the configured selectors.

Each selector is looked up at ``<selector>._domainkey.<domain>`` (CNAME delegation to the
provider is followed by the resolver). A selector given as a full name
(``krs._domainkey.cio123.example.com``) is used as is. One finding per selector, with the
worst problem deciding the status and the rule cited; every problem is listed.

- tag-list syntax; a duplicate tag invalidates the record (RFC 6376 §3.2);
- ``v=DKIM1`` first when present (§3.6.1);
- ``p=`` required; empty ``p=`` means the key was revoked (§3.6.1);
- RSA key size read from the key itself: < 1024 bits fails, 1024..2047 warns, >= 2048
  passes (RFC 8301 §3.2); ``k=ed25519`` accepted (RFC 8463);
- ``h=`` without sha256 fails: rsa-sha1 must not be used (RFC 8301 §3.1);
- ``t=y`` (testing) warns; ``s=`` must allow email.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from checks.base import CheckResult, Status
from checks.deliverability.dnstypes import Outcome, Resolver, normalize_name
from checks.deliverability.findings import error_from, finding

MIN_RSA_BITS = 1024
RECOMMENDED_RSA_BITS = 2048
_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SELECTOR = re.compile(
    r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?)*$"
)

_ORDER = {Status.PASS: 0, Status.SKIP: 1, Status.WARN: 2, Status.ERROR: 3, Status.FAIL: 4}


def selector_name(selector: str, domain: str) -> str:
    selector = normalize_name(selector)
    if "._domainkey." in selector:
        return selector
    return f"{selector}._domainkey.{normalize_name(domain)}"


@dataclass
class Problem:
    status: Status
    text: str
    rule: str
    fix: str


@dataclass
class DkimKey:
    tags: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    key_type: str | None = None
    key_bits: int | None = None

    @property
    def usable(self) -> bool:
        return not any(p.status is Status.FAIL for p in self.problems)


def parse_dkim_key(text: str) -> DkimKey:
    """Parse and judge one DKIM key record (strings already joined)."""
    key = DkimKey()
    parts = [p.strip() for p in text.split(";")]
    if parts and not parts[-1]:
        parts.pop()
    for index, part in enumerate(parts):
        name, eq, value = part.partition("=")
        name = name.strip()
        value = re.sub(r"\s+", "", value) if name == "p" else value.strip()
        if not eq or not _TAG_NAME.match(name):
            key.problems.append(
                Problem(
                    Status.FAIL,
                    f"{part!r} is not tag=value",
                    "RFC 6376 §3.2",
                    "Rewrite the record as tag=value pairs separated by semicolons.",
                )
            )
            continue
        if name in key.tags:
            key.problems.append(
                Problem(
                    Status.FAIL,
                    f'tag "{name}" appears more than once, which invalidates the record',
                    "RFC 6376 §3.2",
                    f"Keep a single {name}= tag.",
                )
            )
            continue
        key.tags[name] = value
        if name == "v" and index != 0:
            key.problems.append(
                Problem(
                    Status.FAIL,
                    '"v" must be the first tag',
                    "RFC 6376 §3.6.1",
                    "Move v=DKIM1 to the start of the record.",
                )
            )
    if "v" in key.tags and key.tags["v"] != "DKIM1":
        key.problems.append(
            Problem(
                Status.FAIL,
                f"v={key.tags['v']} is not DKIM1",
                "RFC 6376 §3.6.1",
                "Use v=DKIM1 or leave v out.",
            )
        )
    _judge_algorithms(key)
    _judge_flags(key)
    _judge_key(key)
    return key


def _judge_algorithms(key: DkimKey) -> None:
    hashes = [h.strip().lower() for h in key.tags.get("h", "").split(":") if h.strip()]
    if hashes and "sha256" not in hashes:
        key.problems.append(
            Problem(
                Status.FAIL,
                f"h={key.tags['h']} allows only SHA-1, which verifiers must not accept",
                "RFC 8301 §3.1",
                "Remove h= (or set h=sha256) and sign with rsa-sha256.",
            )
        )
    elif "sha1" in hashes:
        key.problems.append(
            Problem(
                Status.WARN,
                f"h={key.tags['h']} still allows SHA-1",
                "RFC 8301 §3.1",
                "Set h=sha256 or remove h=.",
            )
        )
    services = [s.strip().lower() for s in key.tags.get("s", "*").split(":")]
    if "*" not in services and "email" not in services:
        key.problems.append(
            Problem(
                Status.FAIL,
                f"s={key.tags['s']} does not allow email",
                "RFC 6376 §3.6.1",
                "Remove s= or set s=email.",
            )
        )


def _judge_flags(key: DkimKey) -> None:
    flags = [f.strip().lower() for f in key.tags.get("t", "").split(":") if f.strip()]
    if "y" in flags:
        key.problems.append(
            Problem(
                Status.WARN,
                "t=y: the domain is testing DKIM, receivers may ignore the signature",
                "RFC 6376 §3.6.1",
                "Remove t=y once signing is verified.",
            )
        )


def _judge_key(key: DkimKey) -> None:
    k = key.tags.get("k", "rsa").lower()
    key.key_type = k
    if "p" not in key.tags:
        key.problems.append(
            Problem(
                Status.FAIL,
                "no p= tag: the record has no public key",
                "RFC 6376 §3.6.1",
                "Publish the public key in p= exactly as the provider gives it.",
            )
        )
        return
    p = key.tags["p"]
    if p == "":
        key.problems.append(
            Problem(
                Status.FAIL,
                "empty p=: the key has been revoked",
                "RFC 6376 §3.6.1",
                "Publish the current key from Customer.io (Sending domains) for this selector.",
            )
        )
        return
    try:
        der = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        key.problems.append(
            Problem(
                Status.FAIL,
                "p= is not valid base64",
                "RFC 6376 §3.6.1",
                "Copy the key again; it was probably cut or has stray characters.",
            )
        )
        return
    if k == "ed25519":
        if len(der) == 32:
            key.key_bits = 256
            return
        try:
            loaded = load_der_public_key(der)
        except ValueError:
            loaded = None
        if isinstance(loaded, ed25519.Ed25519PublicKey):
            key.key_bits = 256
            return
        key.problems.append(
            Problem(
                Status.FAIL,
                "p= is not an Ed25519 public key (32 bytes)",
                "RFC 8463 §4.2",
                "Publish the base64 of the raw 32-byte Ed25519 public key.",
            )
        )
        return
    if k != "rsa":
        key.problems.append(
            Problem(
                Status.FAIL,
                f"k={k} is not a key type verifiers know (rsa, ed25519)",
                "RFC 6376 §3.6.1, RFC 8463",
                "Use k=rsa (or leave k out) or k=ed25519.",
            )
        )
        return
    try:
        loaded = load_der_public_key(der)
    except (ValueError, TypeError):
        loaded = None
    if not isinstance(loaded, rsa.RSAPublicKey):
        key.problems.append(
            Problem(
                Status.FAIL,
                "p= is not a DER-encoded RSA public key",
                "RFC 6376 §3.6.1",
                "Copy the key again from Customer.io; it was probably cut.",
            )
        )
        return
    bits = loaded.key_size
    key.key_bits = bits
    if bits < MIN_RSA_BITS:
        key.problems.append(
            Problem(
                Status.FAIL,
                f"{bits}-bit RSA key: verifiers must reject keys under 1024 bits",
                "RFC 8301 §3.2",
                "Rotate to a 2048-bit key.",
            )
        )
    elif bits < RECOMMENDED_RSA_BITS:
        key.problems.append(
            Problem(
                Status.WARN,
                f"{bits}-bit RSA key: 2048 bits is recommended",
                "RFC 8301 §3.2",
                "Rotate to a 2048-bit key when the provider allows.",
            )
        )


@dataclass
class DkimEvaluation:
    results: list[CheckResult] = field(default_factory=list)
    usable_selectors: list[str] = field(default_factory=list)
    dns_failed: bool = False


async def evaluate_dkim(
    domain: str, selectors: Sequence[str], resolver: Resolver
) -> DkimEvaluation:
    ev = DkimEvaluation()
    if not selectors:
        ev.results.append(
            finding(
                "deliverability.dkim.selectors",
                "DKIM selectors",
                Status.SKIP,
                "No DKIM selector configured, so DKIM keys were not checked.",
                rule="RFC 6376 §3.6.2.1",
                fix="Set CIO_DKIM_SELECTORS (or --dkim-selector) to the selectors Customer.io shows under Sending domains.",
            )
        )
        return ev
    selectors = list(dict.fromkeys(selectors))  # each selector once, in the order given
    names = [selector_name(s, domain) for s in selectors]
    valid = [bool(_SELECTOR.match(normalize_name(s))) for s in selectors]
    answers = await asyncio.gather(
        *(resolver.query(n, "TXT") for n, ok in zip(names, valid, strict=True) if ok)
    )
    answer_iter = iter(answers)
    for selector, name, ok in zip(selectors, names, valid, strict=True):
        rid = "deliverability.dkim." + re.sub(
            r"[^a-z0-9_.\-]", "_", normalize_name(selector).split("._domainkey.")[0]
        )
        title = f"DKIM key {name}"
        if not ok:
            ev.results.append(
                finding(
                    rid,
                    title,
                    Status.FAIL,
                    f"{selector!r} is not a valid DKIM selector.",
                    rule="RFC 6376 §3.1",
                    fix="Use the selector exactly as Customer.io shows it.",
                )
            )
            continue
        answer = next(answer_iter)
        if answer.outcome.is_failure:
            ev.dns_failed = True
            ev.results.append(error_from(rid, title, answer, "RFC 6376 §3.6.2.2"))
            continue
        via = f" (via CNAME {' -> '.join(answer.cname_chain)})" if answer.cname_chain else ""
        if answer.outcome is not Outcome.FOUND or not answer.txt:
            what = (
                "does not exist (NXDOMAIN)"
                if answer.outcome is Outcome.NXDOMAIN
                else "has no TXT record (NODATA)"
            )
            ev.results.append(
                finding(
                    rid,
                    title,
                    Status.FAIL,
                    f"No DKIM key: {answer.canonical_name if via else name} {what}{via}.",
                    rule="RFC 6376 §3.6.2.2",
                    fix=f"Publish the DKIM record Customer.io gives for selector {selector} (TXT or CNAME at {name}).",
                )
            )
            continue
        texts = [r.text for r in answer.txt]
        key_texts = [
            t for t in texts if "p=" in t.replace(" ", "") or t.strip().startswith("v=DKIM1")
        ]
        if not key_texts:
            ev.results.append(
                finding(
                    rid,
                    title,
                    Status.FAIL,
                    f"The TXT record at {name}{via} is not a DKIM key (no p= tag).",
                    rule="RFC 6376 §3.6.1",
                    found=" | ".join(texts),
                    fix=f"Publish the DKIM record Customer.io gives for selector {selector}.",
                )
            )
            continue
        key = parse_dkim_key(key_texts[0])
        problems = list(key.problems)
        if len(key_texts) > 1:
            problems.append(
                Problem(
                    Status.WARN,
                    f"{len(key_texts)} key records at one selector; verifiers pick one at random",
                    "RFC 6376 §3.6.2.2",
                    "Keep a single key record per selector.",
                )
            )
        worst = max((p.status for p in problems), key=_ORDER.__getitem__, default=Status.PASS)
        size = f"{key.key_bits}-bit " if key.key_bits else ""
        desc = f"{size}{(key.key_type or 'rsa').upper() if key.key_type != 'ed25519' else 'Ed25519'} key"
        data = {
            "selector": selector,
            "name": name,
            "key_type": key.key_type,
            "key_bits": key.key_bits,
            "cname_chain": list(answer.cname_chain),
        }
        if worst is Status.PASS:
            ev.usable_selectors.append(selector)
            ev.results.append(
                finding(
                    rid,
                    title,
                    Status.PASS,
                    f"{desc} published at {name}{via}.",
                    rule="RFC 6376 §3.6.1, RFC 8301 §3.2",
                    found=key_texts[0],
                    data=data,
                )
            )
            continue
        if worst is not Status.FAIL:
            ev.usable_selectors.append(selector)
        main = max(problems, key=lambda p: _ORDER[p.status])
        ev.results.append(
            finding(
                rid,
                title,
                worst,
                f"{desc} at {name}{via}: " + "; ".join(p.text for p in problems) + ".",
                rule=main.rule,
                found=key_texts[0],
                fix=" ".join(dict.fromkeys(p.fix for p in problems)),
                detail="; ".join(f"{p.status.value}: {p.text} ({p.rule})" for p in problems),
                data=data,
            )
        )
    return ev


async def check_dkim(
    domain: str, selectors: Sequence[str], resolver: Resolver
) -> list[CheckResult]:
    return (await evaluate_dkim(domain, selectors, resolver)).results
