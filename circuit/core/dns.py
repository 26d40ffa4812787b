"""A DNS server whose records the circuit sets: gocircuit's ``mkdns``, on twisted.names.

States: *made* (records may be set, nothing listens) -> *listening* (UDP and TCP on one
address) -> *removed* (both listeners closed, the port free).  Writing a new address
while listening moves the server: the new listeners are bound first, so a refused move
(a port in use) leaves the old ones serving.

The server answers for the names it holds, authoritatively, and with NXDOMAIN for
every other name: it is not a recursive resolver (a resolver in front of it forwards
the cluster's domain here).  A CNAME is followed within its own records.
"""
from __future__ import annotations

import errno as _errno
import ipaddress
import socket
from typing import Optional

from twisted.internet.defer import Deferred, fail, gatherResults, maybeDeferred, succeed
from twisted.internet.error import CannotListenError
from twisted.names import common, dns, error, server

from circuit import errors
from circuit.core.zone import Record, domain, parse_lines

MAX_RECORDS = 10_000  # a zone is a few services' names, not a database
_CHASE = 8  # CNAMEs followed within the zone, at most
_ADDRESSES = ("A", "AAAA")
_TARGETS = {"SRV": "target", "MX": "name", "NS": "name", "CNAME": "name"}


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv4 or bracketed IPv6 address; port 0 picks a free one)."""
    word = text.strip()
    host, sep, port = word.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.version == 6 and not bracketed:
        address = None  # ::1:53 could be either: an IPv6 address is written [::1]:53
    if not sep or address is None or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise errors.Invalid(f"addr: want IP:PORT (127.0.0.1:5353, [::1]:5353), not {word[:60]!r}")
    return str(address), int(port)


def show_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Authority(common.ResolverBase):
    """The element's records as twisted.names sees an authority."""

    def __init__(self, zone: "DnsServer"):
        super().__init__()
        self._zone = zone

    def _lookup(self, name: bytes, cls, type, timeout=None) -> Deferred:
        return self._zone._answer(name, type)


class DnsServer:
    def __init__(self, reactor):
        self.reactor = reactor
        self.records: dict[str, list[Record]] = {}  # by owner name, in the order set
        self.removed = False
        self.addr: Optional[str] = None  # where it listens, as bound
        self.queries = 0
        self.nxdomain = 0
        self._ports: tuple = ()  # (tcp, udp) while listening
        self._factory = server.DNSServerFactory(authorities=[_Authority(self)])
        self._factory.noisy = False

    # -- records ---------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self.removed:
            raise errors.NotFound("the DNS server was removed")

    def _merged(self, given: list[Record]) -> dict[str, list[Record]]:
        """The records after ``set``: each NAME and TYPE given replaced by those given."""
        self._check_alive()
        merged = {name: list(rs) for name, rs in self.records.items()}
        replaced = {(r.name, r.type) for r in given}
        for name, kind in replaced:
            if name in merged:
                merged[name] = [r for r in merged[name] if r.type != kind]
        for r in given:
            merged.setdefault(r.name, []).append(r)
        for name in {r.name for r in given}:
            kinds = [r.type for r in merged[name]]
            if "CNAME" in kinds and len(kinds) > 1:
                raise errors.Invalid(f"set: {name} would hold a CNAME and other records; "
                                     "a CNAME stands alone (unset the name first)")
        if sum(len(rs) for rs in merged.values()) > MAX_RECORDS:
            raise errors.TooBig(f"set: a DNS server holds at most {MAX_RECORDS} records")
        return merged

    def check_set(self, given: list[Record]) -> None:
        """Raise what `set` of these records would."""
        self._merged(given)

    def set(self, text: str) -> None:
        """Add the records of ``text`` (zone-file lines); those of a NAME and TYPE it
        gives replace the ones held.  All or nothing."""
        self.records = self._merged(parse_lines(text))

    def _without(self, text: str) -> tuple[str, list[Record]]:
        """The name ``unset`` would change, and what it would keep of it."""
        self._check_alive()
        words = text.split()
        if len(words) not in (1, 2):
            raise errors.Invalid(f"unset: want NAME or NAME TYPE, not {text.strip()[:80]!r}")
        name = domain(words[0], text.strip())
        kind = words[1].upper() if len(words) == 2 else None
        held = self.records.get(name, [])
        kept = [r for r in held if kind is not None and r.type != kind]
        if len(kept) == len(held):
            raise errors.NotFound(f"unset: no {kind + ' ' if kind else ''}records for {name}")
        return name, kept

    def check_unset(self, text: str) -> None:
        self._without(text)

    def unset(self, text: str) -> None:
        """Remove every record of a NAME, or of a NAME and TYPE (``NAME [TYPE]``)."""
        name, kept = self._without(text)
        if kept:
            self.records[name] = kept
        else:
            del self.records[name]

    def zone_text(self) -> str:
        return "".join(r.line() + "\n" for name in sorted(self.records)
                       for r in sorted(self.records[name], key=lambda r: r.type))

    # -- listening -------------------------------------------------------------------
    def check_listen(self, text: str) -> None:
        """Refuse at once what listen would refuse: a bad address, or a port that a probe
        finds taken (so that ``echo ... > addr``, which hears only write(2), hears it)."""
        self._check_alive()
        host, port = parse_addr(text)
        if self.addr != show_addr(host, port):
            _probe(host, port)  # port 0 too: the address may not be this host's

    def listen(self, text: str) -> Deferred:
        """Serve on ``text`` (HOST:PORT), UDP and TCP on the same port; fires once the
        listeners it replaces have closed."""
        self._check_alive()
        host, port = parse_addr(text)
        if self.addr == show_addr(host, port):
            return succeed(None)  # already there
        ports = self._bind(host, port)
        old, self._ports = self._ports, ports
        self.addr = show_addr(host, ports[0].getHost().port)
        return _close(old)

    def _bind(self, host: str, port: int) -> tuple:
        for _ in range(10 if port == 0 else 1):  # port 0: TCP picks, UDP must get the same
            tcp = _listening(lambda: self.reactor.listenTCP(port, self._factory, interface=host), host, port)
            bound = tcp.getHost().port
            protocol = dns.DNSDatagramProtocol(self._factory)
            protocol.noisy = False
            try:
                udp = _listening(lambda: self.reactor.listenUDP(bound, protocol, interface=host), host, bound)
            except errors.AddressInUse:
                tcp.stopListening()
                if port != 0:
                    raise
                continue
            return tcp, udp
        raise errors.AddressInUse(f"addr: no port free for both UDP and TCP on {host}")

    def remove(self) -> Deferred:
        """Stop serving: fires once both listeners have closed (the port is free)."""
        if self.removed:
            return succeed(None)
        self.removed = True
        self.records = {}
        for connection in list(self._factory.connections):
            connection.transport.loseConnection()
        old, self._ports = self._ports, ()
        return _close(old)

    def stat(self) -> dict:
        return {
            "addr": self.addr,
            "listening": bool(self._ports),
            "names": len(self.records),
            "records": sum(len(rs) for rs in self.records.values()),
            "queries": self.queries,
            "nxdomain": self.nxdomain,
        }

    # -- answering -------------------------------------------------------------------
    def _answer(self, qname: bytes, qtype: int) -> Deferred:
        """(answers, authority, additional) for a query, or NXDOMAIN for a name not held."""
        self.queries += 1
        name = qname.decode("ascii", "replace").lower().rstrip(".") + "."
        answers: list[Record] = []
        for _ in range(_CHASE):
            held = self.records.get(name)
            if held is None:
                if answers:
                    break  # a CNAME out of the zone: the resolver follows it
                self.nxdomain += 1
                return fail(error.AuthoritativeDomainError(qname))
            exact = [r for r in held if qtype in (r.payload.TYPE, dns.ALL_RECORDS)]
            if exact:
                answers += exact
                break
            alias = [r for r in held if r.type == "CNAME"]
            if not alias:
                break  # the name is held, not with this type: an empty answer
            answers.append(alias[0])
            name = alias[0].rdata
        additional = [a for r in answers if r.type in _TARGETS and r.type != "CNAME"
                      for a in self.records.get(r.rdata.split()[-1], ()) if a.type in _ADDRESSES]
        return succeed(([_header(r) for r in answers], [], [_header(r) for r in additional]))


def _header(r: Record) -> dns.RRHeader:
    return dns.RRHeader(r.name.rstrip(".").encode() or b".", r.payload.TYPE, dns.IN, r.ttl, r.payload,
                        auth=True)


def _listening(listen, host: str, port: int):
    try:
        return listen()
    except CannotListenError as e:
        code = getattr(e.socketError, "errno", None)
        where = show_addr(host, port)
        if code == _errno.EADDRINUSE:
            raise errors.AddressInUse(f"addr: {where} is in use")
        if code == _errno.EADDRNOTAVAIL:
            raise errors.AddressNotAvailable(f"addr: {host} is not an address of this host")
        if code == _errno.EACCES:
            raise errors.ReadOnly(f"addr: {where}: permission denied (ports below 1024 need root)")
        raise errors.Invalid(f"addr: cannot listen on {where}: {e.socketError}")


def _probe(host: str, port: int) -> None:
    """Bind and close a TCP and a UDP socket there, as the listeners will (SO_REUSEADDR on
    TCP, as Twisted sets it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _listening(lambda: _bind(s, host, port), host, port)


def _bind(s: socket.socket, host: str, port: int) -> None:
    try:
        s.bind((host, port))
    except OSError as e:
        raise CannotListenError(host, port, e)


def _close(ports: tuple) -> Deferred:
    if not ports:
        return succeed(None)
    return gatherResults([maybeDeferred(p.stopListening) for p in ports]).addCallback(lambda _: None)
