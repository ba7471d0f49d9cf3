"""What the deliverability checks need from DNS: typed answers and a Resolver protocol.

The checks are pure logic over these types. The project's DNS client
(``bot.providers.dns.DnsClient``) implements :class:`Resolver`; tests run it against a
real DNS server on loopback. A resolver never raises for a DNS outcome: NXDOMAIN, NODATA,
SERVFAIL and timeouts are values of :class:`Outcome`, so a check can tell "the record is
absent" (a finding) from "we could not find out" (status ``error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Outcome(StrEnum):
    FOUND = "found"  #: NOERROR with at least one record of the type asked for
    NXDOMAIN = "nxdomain"  #: RCODE 3: the name does not exist
    NODATA = "nodata"  #: NOERROR, the name exists, but has no record of this type
    SERVFAIL = "servfail"  #: the server could not answer (SERVFAIL, REFUSED, ...)
    TIMEOUT = "timeout"  #: no answer within the resolver's time limit
    ERROR = "error"  #: anything else (malformed answer, network error, bad name)

    @property
    def is_void(self) -> bool:
        """RFC 7208 §4.6.4: a "void lookup" is NOERROR with no answer, or NXDOMAIN."""
        return self in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def is_failure(self) -> bool:
        """The DNS could not tell us whether the record exists."""
        return self in (Outcome.SERVFAIL, Outcome.TIMEOUT, Outcome.ERROR)


@dataclass(frozen=True)
class TxtRecord:
    """One TXT resource record: its character-strings, as published."""

    strings: tuple[bytes, ...]

    @property
    def text(self) -> str:
        """The strings joined without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return b"".join(self.strings).decode("utf-8", errors="replace")

    def presentation(self) -> str:
        """The record as a zone file shows it: each string quoted."""
        return " ".join(
            '"' + s.decode("utf-8", errors="replace").replace('"', '\\"') + '"'
            for s in self.strings
        )


@dataclass(frozen=True)
class MxRecord:
    preference: int
    exchange: str  #: lower case, no trailing dot ("." for a null MX)


@dataclass(frozen=True)
class DnsAnswer:
    """The result of one (name, type) query."""

    name: str  #: the name asked for (lower case, no trailing dot)
    rdtype: str  #: "TXT", "MX", "A", "AAAA", ...
    outcome: Outcome
    txt: tuple[TxtRecord, ...] = ()
    mx: tuple[MxRecord, ...] = ()
    addresses: tuple[str, ...] = ()
    #: CNAMEs followed to reach the answer, in order (empty when none)
    cname_chain: tuple[str, ...] = ()
    #: what went wrong, for SERVFAIL / TIMEOUT / ERROR (safe to show)
    detail: str = ""

    @property
    def canonical_name(self) -> str:
        return self.cname_chain[-1] if self.cname_chain else self.name

    def describe_failure(self) -> str:
        """One sentence naming what was asked and what happened, for error findings."""
        what = {
            Outcome.SERVFAIL: "the DNS server failed to answer (SERVFAIL)",
            Outcome.TIMEOUT: "the DNS query timed out",
            Outcome.ERROR: "the DNS query failed",
            Outcome.NXDOMAIN: "the name does not exist (NXDOMAIN)",
            Outcome.NODATA: f"the name has no {self.rdtype} record (NODATA)",
            Outcome.FOUND: "records were found",
        }[self.outcome]
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.rdtype} {self.name}: {what}{extra}"


@runtime_checkable
class Resolver(Protocol):
    """Answers (name, type) questions. Must not raise for DNS outcomes."""

    async def query(self, name: str, rdtype: str) -> DnsAnswer: ...


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()
