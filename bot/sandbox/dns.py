"""A small DNS server on loopback for the sandbox and the tests: real UDP and TCP, real wire format.

It serves the records it is given as if it were a recursive resolver that knows every
zone (it chases CNAMEs across all the data it holds), and answers like a real server:

- NXDOMAIN for a name that does not exist; NODATA (NOERROR, empty answer, SOA in the
  authority section) for a name that exists (or is an empty non-terminal) without the
  type asked for;
- CNAMEs chased within its data (or not, with ``chase_cnames=False``); a dangling CNAME
  ends in NXDOMAIN;
- SERVFAIL for names listed in ``servfail``; no answer at all for names in ``silent``;
- over UDP, an answer larger than the client's EDNS payload size (512 without EDNS) comes
  back empty with the TC bit set, so the client retries over TCP;
- an optional delay before every answer (``delay`` seconds).

Zones are plain dicts (or master-file text with absolute names): ``{"example.com": {"TXT": ["v=spf1 -all"], "MX": ["10 mx.example.com."]}}``.
TXT values are Python strings (split into 255-byte character-strings when longer) or
tuples/lists of strings (several character-strings in one record); other types use zone
file syntax. Names are absolute, with or without the trailing dot.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

Zone = Mapping[str, Mapping[str, Iterable[Any]]]
TTL = 300


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def txt_rdata_text(value: Any) -> str:
    """Zone-file text of one TXT record from a str (auto-split) or a sequence of strings."""
    if isinstance(value, str):
        raw = value.encode()
        parts = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    else:
        parts = [str(v).encode() for v in value]
    return " ".join('"' + p.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


@dataclass
class LoggedQuery:
    name: str
    rdtype: str
    transport: str  # "udp" or "tcp"


@dataclass
class FakeDNS:
    zones: dict[str, dict[int, list[dns.rdata.Rdata]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    delay: float = 0.0
    #: False: answer like an authoritative-only server, which returns a CNAME without
    #: chasing it, so the client has to ask for the target itself
    chase_cnames: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    log: list[LoggedQuery] = field(default_factory=list)
    errors: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.base_events.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- data --------------------------------------------------------------------------
    def load(
        self, zone: Zone | str, *, servfail: Iterable[str] = (), silent: Iterable[str] = ()
    ) -> None:
        """Replace everything served with ``zone`` (a dict, or master-file text)."""
        self.zones = {}
        if isinstance(zone, str):
            self._load_text(zone)
            zone = {}
        for name, types in zone.items():
            node = self.zones.setdefault(_norm(name), {})
            for type_text, values in types.items():
                rdtype = dns.rdatatype.from_text(type_text)
                for value in values:
                    text = txt_rdata_text(value) if rdtype == dns.rdatatype.TXT else str(value)
                    node.setdefault(rdtype, []).append(
                        dns.rdata.from_text(
                            dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False
                        )
                    )
        self.servfail = {_norm(n) for n in servfail}
        self.silent = {_norm(n) for n in silent}
        self.log.clear()

    def _load_text(self, text: str) -> None:
        """Master-file text with absolute names, e.g. ``example.com. 300 IN TXT "v=spf1 -all"``."""
        parsed = dns.zone.from_text(
            text, origin=dns.name.root, relativize=False, check_origin=False
        )
        for name, node in parsed.nodes.items():
            target = self.zones.setdefault(_norm(name.to_text()), {})
            for rdataset in node.rdatasets:
                target.setdefault(rdataset.rdtype, []).extend(rdataset)

    def _exists(self, name: str) -> bool:
        if name in self.zones:
            return True
        suffix = "." + name
        return any(other.endswith(suffix) for other in self.zones)  # empty non-terminal

    @property
    def nameserver(self) -> tuple[str, int]:
        return (self.host, self.port)

    def queries_for(self, name: str, rdtype: str | None = None) -> list[LoggedQuery]:
        name = _norm(name)
        return [q for q in self.log if q.name == name and (rdtype is None or q.rdtype == rdtype)]

    # -- answering -----------------------------------------------------------------------
    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to ``query``, or None to stay silent."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        name = _norm(question.name.to_text())
        rdtype = question.rdtype
        for _hop in range(10):
            if name in self.silent:
                return None
            if name in self.servfail:
                response.answer.clear()
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            node = self.zones.get(name, {})
            if rdtype in node:
                response.answer.append(self._rrset(name, rdtype, node[rdtype]))
                return response
            if dns.rdatatype.CNAME in node and rdtype != dns.rdatatype.CNAME:
                cname = node[dns.rdatatype.CNAME]
                response.answer.append(self._rrset(name, dns.rdatatype.CNAME, cname))
                if not self.chase_cnames:
                    return response
                name = _norm(cname[0].target.to_text())
                continue
            if not self._exists(name):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa(name))
            return response
        response.set_rcode(dns.rcode.SERVFAIL)  # CNAME loop
        return response

    @staticmethod
    def _rrset(name: str, rdtype: int, rdatas: list[dns.rdata.Rdata]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(dns.name.from_text(name), dns.rdataclass.IN, rdtype)
        for rd in rdatas:
            rrset.add(rd, TTL)
        return rrset

    def _soa(self, name: str) -> dns.rrset.RRset:
        labels = name.split(".")
        apex = ".".join(labels[-2:]) if len(labels) >= 2 else name
        soa = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            f"ns.{apex}. hostmaster.{apex}. 1 3600 600 86400 {TTL}",
            origin=dns.name.root,
            relativize=False,
        )
        return self._rrset(apex, dns.rdatatype.SOA, [soa])

    async def _respond(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.question:
            q = query.question[0]
            self.log.append(
                LoggedQuery(_norm(q.name.to_text()), dns.rdatatype.to_text(q.rdtype), transport)
            )
        try:
            response = self.answer(query)
        except Exception:  # a bug in the test server must not look like a timeout
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            self.errors += 1
        if response is None:
            return None
        if self.delay:
            await asyncio.sleep(self.delay)
        if transport == "tcp":
            return response.to_wire(max_size=65535)
        limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.RA | dns.flags.TC
            return truncated.to_wire(max_size=limit)

    # -- transports ------------------------------------------------------------------------
    async def start(self) -> FakeDNS:
        loop = asyncio.get_running_loop()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                async def reply() -> None:
                    out = await server._respond(data, "udp")
                    if out is not None and not self.transport.is_closing():
                        self.transport.sendto(out, addr)

                task = loop.create_task(reply())
                server._tasks.add(task)
                task.add_done_callback(server._tasks.discard)

        for _attempt in range(20):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, 0))
            port = sock.getsockname()[1]
            try:
                tcp = await asyncio.start_server(self._tcp_client, self.host, port)
            except OSError:
                sock.close()
                continue
            udp, _ = await loop.create_datagram_endpoint(Udp, sock=sock)
            self._udp, self._tcp, self.port = udp, tcp, port  # type: ignore[assignment]
            return self
        raise RuntimeError("could not bind a loopback port for UDP and TCP")

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(2)
                (length,) = struct.unpack("!H", header)
                wire = await reader.readexactly(length)
                out = await self._respond(wire, "tcp")
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def __aenter__(self) -> FakeDNS:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


#: The sandbox's sending domain: records a deliverability engineer would sign off on.
SANDBOX_DOMAIN = "example.com"
SANDBOX_RETURN_PATH = "cio12345.example.com"
SANDBOX_DKIM_SELECTOR = "krs"
#: a 2048-bit RSA public key (SubjectPublicKeyInfo, base64): only the public half exists
SANDBOX_DKIM_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAz7f29mMm/yHOXJPT7DtxAXfsmR6RrSp2pTCb"
    "Tyr3OHioejGYck2bozxOXmLbS22755S/3ZebwQysnWkRLQaoCVs/qoj40GZKHR2wK/KvEgpGqInPgY5r"
    "dW6OJhUdUy0q9UAiZCqVC+pyZjl6Ttt/G6qAmNIUlWa9pZMR4cJkGKV6VjlpORJZwcKHEj5ZaTjcSsJN"
    "KiPVDfy7by5+grOWIEk9sUzaAjDOdsSs+hRLXzpgIlJAnMv3Gj0Mdj9zHXV+hBMqv68Sbs/zL6P9loo0"
    "IZlxy76iVZkzByHA/FdOaoDjo+FBMwwd7r0735zNrQzGyRvzWy8gfP1WzejJGxhOXwIDAQAB"
)


def sandbox_zone() -> dict[str, dict[str, list[Any]]]:
    return {
        SANDBOX_DOMAIN: {"TXT": ["v=spf1 include:_spf.example.com ~all"], "MX": ["10 mx.example.com."]},
        "mx.example.com": {"A": ["192.0.2.25"]},
        "_spf.example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:dmarc@example.com"]},
        SANDBOX_RETURN_PATH: {
            "TXT": ["v=spf1 include:spf.esp.example.net ~all"],
            "MX": ["10 mx1.esp.example.net.", "20 mx2.esp.example.net."],
        },
        "spf.esp.example.net": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
        # the selector delegated from the sending domain to Customer.io's subdomain
        f"{SANDBOX_DKIM_SELECTOR}._domainkey.{SANDBOX_DOMAIN}": {
            "CNAME": [f"{SANDBOX_DKIM_SELECTOR}._domainkey.{SANDBOX_RETURN_PATH}."]
        },
        f"{SANDBOX_DKIM_SELECTOR}._domainkey.{SANDBOX_RETURN_PATH}": {
            "TXT": [f"v=DKIM1; k=rsa; p={SANDBOX_DKIM_KEY}"]
        },
    }


#: the CIO_CONFIG [deliverability] table that matches the sandbox zone
SANDBOX_DELIVERABILITY = {
    "return_path_domain": SANDBOX_RETURN_PATH,
    "return_path_spf_include": "spf.esp.example.net",
    "return_path_mx": ["mx1.esp.example.net", "mx2.esp.example.net"],
}
