"""Async DNS client for the deliverability checks (dnspython's asyncio resolver).

- nameservers as ``(host, port)`` pairs (``CIO_DNS_NAMESERVERS``), or the system's;
- a time limit per query; UDP first, TCP when the answer comes back truncated (TC bit),
  which dnspython's resolver does by itself;
- typed answers (:class:`checks.deliverability.dnstypes.DnsAnswer`) that tell records
  found, NXDOMAIN, NODATA, SERVFAIL and timeout apart; it never raises for those;
- a per-run cache: one :class:`DnsClient` is one run. Concurrent questions for the same
  (name, type) share one in-flight query;
- counters (:attr:`DnsClient.stats`) for the benchmark and for logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from checks.deliverability.dnstypes import DnsAnswer, MxRecord, Outcome, TxtRecord, normalize_name

DEFAULT_TIMEOUT = 5.0
MAX_CNAME_HOPS = 8


@dataclass
class QueryRecord:
    """One query that went to the network."""

    name: str
    rdtype: str
    outcome: Outcome
    started: float
    elapsed: float


@dataclass
class DnsStats:
    """What a run asked. ``lookups`` counts calls, ``queries`` the ones sent to DNS."""

    lookups: int = 0
    queries: list[QueryRecord] = field(default_factory=list)

    @property
    def query_count(self) -> int:
        return len(self.queries)

    @property
    def distinct_names(self) -> int:
        return len({q.name for q in self.queries})

    @property
    def total_latency(self) -> float:
        return sum(q.elapsed for q in self.queries)

    def duplicates(self) -> list[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        dups: list[tuple[str, str]] = []
        for q in self.queries:
            key = (q.name, q.rdtype)
            if key in seen:
                dups.append(key)
            seen.add(key)
        return dups


class DnsClient:
    """Implements :class:`checks.deliverability.dnstypes.Resolver` over real DNS."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = 1,
    ) -> None:
        self._nameserver_spec = tuple(nameservers)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.stats = DnsStats()
        self._cache: dict[tuple[str, str], asyncio.Future[DnsAnswer]] = {}
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._resolver_lock = asyncio.Lock()
        self._resolver_error: Exception | None = None

    # -- resolver set-up -------------------------------------------------------------
    async def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is not None:
            return self._resolver
        async with self._resolver_lock:
            if self._resolver_error is not None:
                raise self._resolver_error
            if self._resolver is None:
                try:
                    self._resolver = await self._build_resolver()
                except Exception as exc:  # remembered: one failure, not one per query
                    self._resolver_error = exc
                    raise
        return self._resolver

    async def _build_resolver(self) -> dns.asyncresolver.Resolver:
        if self._nameserver_spec:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port=port)
                for host, port in self._nameserver_spec
                for address in await _addresses(host)
            ]
        else:
            resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout * self.attempts
        resolver.retry_servfail = False
        resolver.cache = None  # this client caches per run itself
        # EDNS0 with the payload size DNS flag day 2020 recommends.
        resolver.use_edns(0, 0, 1232)
        return resolver

    # -- the Resolver protocol ---------------------------------------------------------
    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Answer for (name, type); the same question in one run is asked only once."""
        key = (normalize_name(name), rdtype.upper())
        self.stats.lookups += 1
        task = self._cache.get(key)
        if task is None:
            task = asyncio.ensure_future(self._resolve(*key))
            self._cache[key] = task
        # shield: a caller that is cancelled does not cancel the query others wait for
        return await asyncio.shield(task)

    async def _resolve(self, name: str, rdtype: str) -> DnsAnswer:
        chain: list[str] = []
        current = name
        for _ in range(MAX_CNAME_HOPS):
            answer = await self._resolve_once(current, rdtype)
            # A server that is authoritative for the alias but not for the target returns
            # the CNAME alone: follow it ourselves.
            chain.extend(answer.cname_chain)
            if answer.outcome is Outcome.NODATA and answer.cname_chain and rdtype != "CNAME":
                current = answer.cname_chain[-1]
                continue
            return _with_name(answer, name, tuple(chain))
        return DnsAnswer(
            name, rdtype, Outcome.ERROR, cname_chain=tuple(chain), detail="CNAME chain too long"
        )

    async def _resolve_once(self, name: str, rdtype: str) -> DnsAnswer:
        started = time.perf_counter()
        try:
            resolver = await self._get_resolver()
            answer = await self._ask(resolver, name, rdtype)
        except Exception as exc:  # the protocol promises an answer, never an exception
            answer = DnsAnswer(name, rdtype, Outcome.ERROR, detail=type(exc).__name__)
        self.stats.queries.append(
            QueryRecord(name, rdtype, answer.outcome, started, time.perf_counter() - started)
        )
        return answer

    async def _ask(self, resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> DnsAnswer:
        try:
            qname = dns.name.from_text(name)
            rdt = dns.rdatatype.from_text(rdtype)
        except (dns.exception.DNSException, ValueError) as exc:
            return DnsAnswer(
                name, rdtype, Outcome.ERROR, detail=f"not a valid DNS name or type: {exc}"
            )
        try:
            result = await resolver.resolve(qname, rdt, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN as exc:
            chain = _chain_from_nxdomain(exc, qname)
            return DnsAnswer(name, rdtype, Outcome.NXDOMAIN, cname_chain=chain)
        except dns.resolver.LifetimeTimeout:
            return DnsAnswer(
                name,
                rdtype,
                Outcome.TIMEOUT,
                detail=f"no answer within {self.timeout * self.attempts:g} s",
            )
        except dns.resolver.NoNameservers as exc:
            return DnsAnswer(name, rdtype, Outcome.SERVFAIL, detail=_servfail_detail(exc))
        except dns.resolver.YXDOMAIN:
            return DnsAnswer(
                name, rdtype, Outcome.ERROR, detail="name too long after DNAME substitution"
            )
        except dns.exception.DNSException as exc:
            return DnsAnswer(name, rdtype, Outcome.ERROR, detail=type(exc).__name__)
        except OSError as exc:
            return DnsAnswer(name, rdtype, Outcome.ERROR, detail=exc.strerror or str(exc))

        chain = tuple(normalize_name(n.to_text()) for n in _cname_targets(result.response, qname))
        if result.rrset is None:
            return DnsAnswer(name, rdtype, Outcome.NODATA, cname_chain=chain)
        txt: list[TxtRecord] = []
        mx: list[MxRecord] = []
        addresses: list[str] = []
        for rdata in result.rrset:
            if rdt == dns.rdatatype.TXT:
                txt.append(TxtRecord(tuple(rdata.strings)))
            elif rdt == dns.rdatatype.MX:
                mx.append(
                    MxRecord(int(rdata.preference), normalize_name(rdata.exchange.to_text()) or ".")
                )
            elif rdt in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses.append(rdata.address)
            else:
                addresses.append(rdata.to_text())
        return DnsAnswer(
            name,
            rdtype,
            Outcome.FOUND,
            txt=tuple(txt),
            mx=tuple(mx),
            addresses=tuple(addresses),
            cname_chain=chain,
        )


def _with_name(answer: DnsAnswer, name: str, chain: tuple[str, ...]) -> DnsAnswer:
    return DnsAnswer(
        name,
        answer.rdtype,
        answer.outcome,
        answer.txt,
        answer.mx,
        answer.addresses,
        chain,
        answer.detail,
    )


def _cname_targets(response: dns.message.Message, qname: dns.name.Name) -> list[dns.name.Name]:
    """The CNAME chain in a response, starting at qname."""
    targets: list[dns.name.Name] = []
    current = qname
    for _ in range(MAX_CNAME_HOPS):
        try:
            rrset = response.find_rrset(
                response.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME
            )
        except KeyError:
            break
        current = rrset[0].target
        targets.append(current)
    return targets


def _chain_from_nxdomain(exc: dns.resolver.NXDOMAIN, qname: dns.name.Name) -> tuple[str, ...]:
    response = exc.responses().get(qname)
    if response is None:
        return ()
    return tuple(normalize_name(n.to_text()) for n in _cname_targets(response, qname))


def _servfail_detail(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for _server, _tcp, _port, error, response in errors:
        if response is not None:
            return f"{dns.rcode.to_text(response.rcode())} from the DNS server"
        if error is not None:
            return type(error).__name__
    return "no DNS server could answer"


async def _addresses(host: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
