"""Whole clusters in memory: the real `Membership` over a simulated network and clock.

Used by the tests and by ``bench/membership.py``.  Every host is a real
`Membership`; only the transport and the clock are simulated:

- `SimClock` is `task.Clock` with a heap: Clock re-sorts every pending call on
  every callLater and every run, which is quadratic with thousands of hosts.
  `run` jumps from call to call, each seeing the time it was due.
- `SimNetwork` carries each PB call and its answer with a per-link latency
  (fixed per link within a spread, plus jitter per message), loss, cut links,
  partitions, crashed and silent hosts.  It counts, per host, the messages and
  the bytes PB would send for them (`wire_size`).
- `Simulation` makes N hosts (joined one by one, or started as a converged
  cluster), runs join / leave / crash / silence / refutation / partition / loss
  scenarios, and records when each host learned each event.

Loss comes in two kinds.  ``tcp`` is what the real transport sees: PB runs on
TCP, so a lost segment is sent again after the retransmission timeout (200 ms,
doubling), and the message arrives late rather than never.  ``drop`` loses the
message outright, as a datagram transport would (harsher, and what SWIM papers
and memberlist's UDP probes assume).
"""
from __future__ import annotations

import heapq
import json
import math
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Optional

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.task import Clock
from zope.interface import implementer

from circuit.membership.rumours import ALIVE, SUSPECT
from circuit.membership.swim import ITransport, Member, Membership
from circuit.membership.timing import Timing

# -- the clock -------------------------------------------------------------------------------


class SimClock(Clock):
    """`task.Clock` whose pending calls live in a heap; cancelled ones are skipped when due."""

    def __init__(self) -> None:
        super().__init__()
        self._heap: list = []
        self._seq = 0
        self._cancelled = 0  # about how many entries of the heap are of cancelled calls

    def callLater(self, delay, callable, *args, **kw):
        dc = DelayedCall(self.rightNow + delay, callable, args, kw,
                         self._cancel, self._push, self.seconds)
        self._seq += 1  # _push, inlined: the most frequent call of a simulation
        heapq.heappush(self._heap, (dc.time, self._seq, dc))
        if self._cancelled > len(self._heap) // 2 + 10_000:
            self._purge()
        return dc

    def _cancel(self, dc) -> None:
        self._cancelled += 1

    def _purge(self) -> None:
        """Drop the entries `run_until` would skip.  A suspicion is re-armed (cancelled and
        called later again) at each confirmation heard: in a mass suspicion the cancelled
        calls were most of the heap, gigabytes at 5,000 hosts, each kept until it was due.
        The rest keep their (time, sequence) keys, so they run in the same order."""
        heap = self._heap  # changed in place: run_until holds it
        heap[:] = [e for e in heap if not (e[2].cancelled or e[2].called) and e[2].getTime() == e[0]]
        heapq.heapify(heap)
        self._cancelled = 0

    def _push(self, dc) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (dc.getTime(), self._seq, dc))

    def getDelayedCalls(self):
        return [dc for _, _, dc in self._heap if not (dc.cancelled or dc.called)]

    def advance(self, amount: float) -> None:
        self.run_until(self.rightNow + amount)

    def run_until(self, when: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= when:
            due, _, dc = heapq.heappop(heap)
            if dc.cancelled or dc.called or dc.getTime() != due:
                self._cancelled -= dc.cancelled
                continue  # cancelled, or reset (its newer entry is elsewhere in the heap)
            self.rightNow = max(self.rightNow, due)
            dc.called = 1
            dc.func(*dc.args, **dc.kw)
        self.rightNow = max(self.rightNow, when)


# -- what PB would send ----------------------------------------------------------------------

# PB's "pb" dialect sends these strings as one small number (twisted.spread.pb).
_VOCABULARY = {b"None", b"class", b"dereference", b"reference", b"dictionary", b"function",
               b"instance", b"list", b"module", b"persistent", b"tuple", b"unpersistable",
               b"copy", b"cache", b"cached", b"remote", b"local", b"lcache", b"version", b"login",
               b"password", b"challenge", b"logged_in", b"not_logged_in", b"cachemessage",
               b"message", b"answer", b"error", b"decref", b"decache", b"uncache"}
REQUEST_ID = 1000  # PB numbers calls per connection; a typical long-lived value


def _b128_len(n: int) -> int:
    return max(1, math.ceil(n.bit_length() / 7))


class Blob:
    """A string of known length, to size a message without building it."""

    def __init__(self, length: int):
        self.length = length


def banana_size(obj) -> int:
    """Bytes Banana (pb dialect) writes for ``obj``: lists, ints, bytes, `Blob`s."""
    if isinstance(obj, (list, tuple)):
        return _b128_len(len(obj)) + 1 + sum(banana_size(x) for x in obj)
    if isinstance(obj, int):
        return _b128_len(abs(obj)) + 1
    if isinstance(obj, Blob):
        return _b128_len(obj.length) + 1 + obj.length
    if obj in _VOCABULARY:
        return _b128_len(len(_VOCABULARY)) + 1
    return _b128_len(len(obj)) + 1 + len(obj)


@lru_cache(maxsize=4096)
def call_size(method: str, lengths: tuple) -> int:
    """`banana_size` of `call_message` with string arguments of these lengths (ASCII)."""
    return banana_size(call_message(method, [Blob(n) for n in lengths]))


def answer_size(json_length: int) -> int:
    return _ANSWER_FIXED + _b128_len(1 + json_length) + 1 + 1 + json_length



def call_message(method: str, args: Iterable) -> list:
    """The s-expression `Broker._sendMessage` sends for ``callRemote(method, *args)`` on the
    root object, each argument a str (jellied as unicode) or a `Blob` standing for one."""
    jellied = [b"tuple"] + [[b"unicode", a if isinstance(a, Blob) else a.encode()] for a in args]
    return [b"message", REQUEST_ID, b"root", method.encode(), 1, jellied, [b"dictionary"]]


def answer_message(json_length: int) -> list:
    """An answer: ``wire.ok(value)`` is b"J" + JSON, sent as bytes."""
    return [b"answer", REQUEST_ID, Blob(1 + json_length)]


_ANSWER_FIXED = banana_size(answer_message(0)) - 3  # all but the b"J"+JSON string


_ITEM_LENGTHS: dict = {}  # a rumour's fields -> the length of its JSON


def json_length(value) -> int:
    """``len(json.dumps(value))``.  A list's items (rumours, a state's rows) are measured
    each once and remembered: messages repeat what others said, and after a mass failure
    encoding 64 rumours a message cost more than the rest of sending them.  Only rows of
    exactly str, str, str, int, str are remembered (1, 1.0 and True are equal keys)."""
    if type(value) is not list or not value:
        return len(json.dumps(value))
    lengths = _ITEM_LENGTHS
    total = 2 * len(value)  # the brackets, and ", " between items
    for item in value:
        if type(item) is list and len(item) == 5 and type(item[3]) is int:
            key = (item[0], item[1], item[2], item[3], item[4])
            n = lengths.get(key)
            if n is None:
                n = len(json.dumps(item))
                if type(key[0]) is str and type(key[1]) is str and type(key[2]) is str \
                        and type(key[4]) is str:
                    if len(lengths) >= 300_000:  # (a suspecter a rumour: N^2 of them)
                        lengths.clear()
                    lengths[key] = n
        else:
            n = len(json.dumps(item))
        total += n
    return total


def wire_size(banana: int) -> int:
    """A faithful guess at the bytes on the wire: TLS 1.3 records (22 bytes each, up to
    16 KiB of data) in TCP/IPv4 segments (52 bytes of headers with timestamps, 1448 of data)."""
    tls = banana + 22 * max(1, math.ceil(banana / 16384))
    return tls + 52 * max(1, math.ceil(tls / 1448))


# -- the network -----------------------------------------------------------------------------

RTO = 0.2  # Linux's minimum TCP retransmission timeout


class Counters:
    """Per host: messages and bytes sent and received, connections dialled."""

    def __init__(self):
        self.sent = {}
        self.received = {}
        self.bytes_sent = {}
        self.bytes_received = {}
        self.wire_sent = {}
        self.dials = {}
        self.by_method = {}  # Banana bytes of each method's calls and answers, all hosts

    def add(self, src: str, dst: str, banana: int, method: str = "") -> None:
        self.by_method[method] = self.by_method.get(method, 0) + banana
        self.sent[src] = self.sent.get(src, 0) + 1
        self.bytes_sent[src] = self.bytes_sent.get(src, 0) + banana
        self.wire_sent[src] = self.wire_sent.get(src, 0) + wire_size(banana)
        self.received[dst] = self.received.get(dst, 0) + 1
        self.bytes_received[dst] = self.bytes_received.get(dst, 0) + banana

    def snapshot(self) -> dict:
        return {name: dict(getattr(self, name)) for name in
                ("sent", "received", "bytes_sent", "bytes_received", "wire_sent", "dials",
                 "by_method")}


class SimNetwork:
    """Hosts keyed by URL.  A message from A to B is delivered after the link's latency,
    unless B is down (a crashed process: connections reset, dials refused), or the
    link is silent (a cut link, another side of a partition, a silent host), or lost."""

    def __init__(self, clock, latency=(0.0002, 0.002), jitter: float = 0.1, loss: float = 0.0,
                 loss_mode: str = "tcp", seed: int = 1):
        if loss_mode not in ("tcp", "drop"):
            raise ValueError(f"loss_mode is tcp or drop, not {loss_mode!r}")
        self.clock = clock
        self.hosts: dict[str, Membership] = {}
        self.cut: set = set()        # frozenset({url_a, url_b}): silent both ways
        self.paused: set = set()     # silent hosts: no answer, no reset
        self.side: dict = {}         # url -> partition side; sides do not hear each other
        self.latency = latency if isinstance(latency, tuple) else (latency, latency)
        self.jitter = jitter
        self.loss = loss
        self.loss_mode = loss_mode
        self.rng = random.Random(seed)
        self._seed = seed
        self.counters = Counters()
        self.lost = 0  # messages lost (drop) or segments sent again (tcp)
        # Connections dialled and still open: (src, dst), each used both ways.  A converged
        # start opens every pair among its hosts at once (`mesh`), without listing N^2 pairs.
        self.opened: set = set()
        self.closed: set = set()
        self.mesh: set = set()

    # -- links -------------------------------------------------------------------------
    def link_latency(self, a: str, b: str) -> float:
        """The link's own latency, uniform in the spread (fixed per link and seed, computed
        rather than stored: N^2 links), times 1 +- jitter per message."""
        key = (a, b) if a < b else (b, a)
        lo, hi = self.latency
        base = lo + (hi - lo) * (zlib.crc32(f"{self._seed} {key[0]} {key[1]}".encode()) / 2 ** 32)
        if self.jitter:
            return base * (1 + self.jitter * (2 * self.rng.random() - 1))
        return base

    def silent(self, a: str, b: str) -> bool:
        return (a in self.paused or b in self.paused or self.side.get(a) != self.side.get(b)
                or (self.cut and frozenset((a, b)) in self.cut))

    def delay(self, a: str, b: str) -> Optional[float]:
        """When a message sent now from a reaches b (seconds from now), or None: never."""
        if self.silent(a, b):
            return None
        latency = self.link_latency(a, b)
        if self.loss:
            if self.loss_mode == "drop":
                if self.rng.random() < self.loss:
                    self.lost += 1
                    return None
            else:
                rto = RTO
                while self.rng.random() < self.loss:
                    self.lost += 1
                    latency += rto
                    rto *= 2
        return latency

    def partition(self, urls: Iterable[str], side: str = "B") -> None:
        for url in urls:
            self.side[url] = side

    def heal(self) -> None:
        self.side.clear()
        self.cut.clear()

    # -- connections -------------------------------------------------------------------
    def connected(self, a: str, b: str) -> bool:
        """A connection either dialled serves calls both ways (`circuit.pb.peers.Peers.adopt`)."""
        if (a, b) in self.opened or (b, a) in self.opened:
            return True
        return a in self.mesh and b in self.mesh and (a, b) not in self.closed

    def _close(self, a: str, b: str) -> None:
        self.opened.discard((a, b))
        if a in self.mesh and b in self.mesh:
            self.closed.add((a, b))

    def crash(self, url: str, reset: bool = True) -> None:
        """The process at ``url`` dies.  With ``reset`` its kernel closes its sockets: every
        host holding a connection to it hears so (`Membership.probe_now`, as
        `circuit.pb.peers` does) and its later dials are refused.  Without, the host goes
        silent: a pulled cable, or a hung or powered-off machine (no reset ever comes).
        A silent host's membership runs on, alone: its own conclusions are not counted."""
        node = self.hosts.get(url)
        if node is None:
            return
        if not reset:
            self.paused.add(url)  # it runs on, alone
            return
        node.stop()
        del self.hosts[url]
        holders = [a for a in self.hosts if self.connected(a, url)]
        for a in list(self.hosts):
            self._close(a, url)
            self._close(url, a)
        for a in holders:
            lat = self.delay(url, a)
            if lat is not None:  # the reset reaches it (a cut link hides it)
                self.clock.callLater(lat, self._hint, a, node.id)

    def _hint(self, holder: str, member_id: str) -> None:
        node = self.hosts.get(holder)
        if node is not None and not node.leaving:
            node.probe_now(member_id)

    # -- calls -------------------------------------------------------------------------
    def call(self, src: str, dst: str, method: str, args: tuple, serve: Callable,
             answer_length: Callable[[object], int]) -> Deferred:
        """One PB call from src to dst and its answer; dials first when not connected.

        ``args`` are the lengths of the call's string arguments (`call_size`);
        ``serve(node)`` runs on dst and returns the answer (or a Deferred of it);
        ``answer_length(answer)`` is the answer's JSON length."""
        d = Deferred()
        if src not in self.hosts:
            return d  # a dead host sends nothing
        if not self.connected(src, dst):
            self._dial(src, dst, d, lambda: self._send(src, dst, method, args, serve, answer_length, d))
        else:
            self._send(src, dst, method, args, serve, answer_length, d)
        return d

    def _dial(self, src, dst, d, then) -> None:
        """TCP, TLS 1.3 and PB's dialect take about two round trips; then Peers asks
        ``hello`` (one more) before trusting the connection."""
        self.counters.dials[src] = self.counters.dials.get(src, 0) + 1
        there = self.delay(src, dst)
        if there is None:
            return  # silence: the caller's timeout decides
        back = self.delay(dst, src) or there
        if dst not in self.hosts:
            self.clock.callLater(there + back, self._fail, d, ConnectionRefusedError(), src)
            return
        self.counters.add(src, dst, call_size("hello", ()), "hello")
        self.counters.add(dst, src, answer_size(json_length(dst)), "hello")

        def made():
            if dst not in self.hosts:
                self._fail(d, ConnectionLost(), src)
                return
            self.opened.add((src, dst))
            then()
        self.clock.callLater(3 * (there + back), made)

    def _send(self, src, dst, method, args, serve, answer_length, d) -> None:
        self.counters.add(src, dst, call_size(method, args), method)
        there = self.delay(src, dst)
        if there is None:
            return
        self.clock.callLater(there, self._arrive, src, dst, method, serve, answer_length, d)

    def _arrive(self, src, dst, method, serve, answer_length, d) -> None:
        node = self.hosts.get(dst)
        if node is None:  # died meanwhile: the connection was reset
            self._lost(src, dst, d)
            return
        if src in self.paused or dst in self.paused:
            return
        try:
            result = serve(node)
        except Exception as e:  # noqa: BLE001 - a bug in serving is the caller's error
            result = fail(e)
        if isinstance(result, Deferred):
            result.addCallbacks(lambda r: self._answer(src, dst, method, r, answer_length, d),
                                lambda f: self._answer_failure(src, dst, method, f, d))
        else:
            self._answer(src, dst, method, result, answer_length, d)

    def _answer(self, src, dst, method, result, answer_length, d) -> None:
        if dst not in self.hosts:
            self._lost(src, dst, d)
            return
        self.counters.add(dst, src, answer_size(answer_length(result)), method)
        back = self.delay(dst, src)
        if back is not None:
            self.clock.callLater(back, self._deliver, src, d, result)

    def _answer_failure(self, src, dst, method, failure, d) -> None:
        # The server turns any failure into a refusal (wire.refusal): a short answer.
        if dst not in self.hosts:
            self._lost(src, dst, d)
            return
        self.counters.add(dst, src, answer_size(40), method)
        back = self.delay(dst, src)
        if back is not None:
            self.clock.callLater(back, self._fail, d, failure, src)

    def _lost(self, src, dst, d) -> None:
        # A reset travels back as fast as an answer would.
        back = self.link_latency(dst, src)
        self.clock.callLater(back, self._fail, d, ConnectionLost(), src)

    def _deliver(self, src, d: Deferred, result) -> None:
        if not d.called and src in self.hosts:  # a caller that timed out has cancelled it
            d.callback(result)

    def _fail(self, d: Deferred, error, src=None) -> None:
        if not d.called and (src is None or src in self.hosts):
            d.errback(error)


@implementer(ITransport)
class SimTransport:
    """The membership's calls, made as `circuit.pb.transport.PBTransport` makes them:
    rumours and states travel as one JSON string argument, answers as b"J" + JSON."""

    def __init__(self, net: SimNetwork, url: str):
        self.net, self.url = net, url

    def ping(self, member_id, url, rumours):
        return self.net.call(self.url, url, "ping", (json_length(rumours),),
                             lambda m: m.handle_ping(rumours), json_length)

    def ping_req(self, via_id, via_url, target_id, target_url, rumours):
        return self.net.call(self.url, via_url, "ping_req",
                             (len(target_id), len(target_url), json_length(rumours)),
                             lambda m: m.handle_ping_req(target_id, target_url, rumours), json_length)

    def sync(self, member_id, url, state):
        return self.net.call(self.url, url, "sync", (json_length(state),),
                             lambda m: m.handle_sync(state), json_length)

    def connected(self, member_id):
        return self.net.connected(self.url, self._url_of(member_id))

    def _url_of(self, member_id) -> str:
        node = self.net.hosts.get(self.url)
        member = node.members.get(member_id) if node is not None else None
        return member.url if member is not None else ""


# -- whole clusters --------------------------------------------------------------------------


def url_of(i: int) -> str:
    return f"circuit://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:7700/X{i:016x}"


@dataclass
class Reach:
    """How long an event took to reach the hosts that should learn it."""
    times: list           # seconds after the event, one per host that learned it, sorted
    expected: int         # hosts that should have learned it

    def quantile(self, q: float) -> Optional[float]:
        """Time by which a fraction ``q`` of the expected hosts had learned it; None if never."""
        need = max(1, math.ceil(q * self.expected - 1e-9))
        return self.times[need - 1] if len(self.times) >= need else None

    @property
    def all(self) -> Optional[float]:
        return self.quantile(1.0)


class Simulation:
    """N real `Membership`s on a `SimNetwork` under a `SimClock`.

    ``converged=True`` starts them as a cluster that has run for a while: each knows
    every other, alive, at incarnation 0, with a connection open to each (the real
    hosts keep every connection, each serving calls both ways, and probing calls every
    member once a round); run it for one `Timing.sync_interval` before measuring, while
    their loops start.  ``converged=False`` joins them one by one through the first."""

    def __init__(self, n: int, timing: Timing = Timing(), converged: bool = True, seed: int = 1,
                 **net_args):
        self.clock = SimClock()
        self.net = SimNetwork(self.clock, seed=seed, **net_args)
        self.timing = timing
        self.seed = seed
        self.nodes: list[Membership] = []
        self.learned: dict = {}   # (kind, subject id) -> {observer id: time}
        self.events: list = []    # (time, observer id, kind, subject id)
        self._next = 0
        self._converged = converged
        if converged:
            for _ in range(n):
                self._make()
            urls = [node.url for node in self.nodes]
            everyone = [(node.id, node.url) for node in self.nodes]
            # Started at random moments over one full-exchange interval, as hosts that
            # came up at different times: their probes and exchanges are not in step.
            start = random.Random(seed)
            for node in self.nodes:
                node.members = {i: Member(i, u, 0, ALIVE, 0.0) for i, u in everyone if i != node.id}
                self.clock.callLater(start.uniform(0, timing.sync_interval), node.start)
            self.net.mesh = set(urls)
        else:
            for _ in range(n):
                self.add()

    # -- hosts -------------------------------------------------------------------------
    def _make(self) -> Membership:
        i = self._next
        self._next += 1
        url = url_of(i)
        node = Membership(f"X{i:016x}", url, SimTransport(self.net, url), self.clock, self.timing,
                          listener=lambda *e, me=f"X{i:016x}": self._heard(me, *e),
                          rng=random.Random(hash((self.seed, i))))
        self.net.hosts[url] = node
        self.nodes.append(node)
        return node

    def add(self, via: Optional[Membership] = None) -> Membership:
        """A new host joins through ``via`` (the first live host by default)."""
        live = self.live()
        node = self._make()
        node.start()
        if live:
            node.join((via or live[0]).url).addErrback(lambda f: None)
        return node

    def live(self) -> list[Membership]:
        return [n for n in self.nodes if n.url in self.net.hosts and n.url not in self.net.paused
                and not n.leaving]

    def _heard(self, observer: str, event: str, member, reason: str = "") -> None:
        kind = "joined" if event == "joined" else f"left:{reason}"
        now = self.clock.seconds()
        self.events.append((now, observer, kind, member.id))
        self.learned.setdefault((kind, member.id), {}).setdefault(observer, now)

    def crash(self, node: Membership, reset: bool = True) -> None:
        self.net.crash(node.url, reset)

    def leave(self, node: Membership) -> None:
        """A graceful stop, as `circuit.service` does it: say "left" to everyone, wait up to
        a second for their answers, then exit (connections close)."""
        timers: list = []

        def exit_(_=None):
            if node.url in self.net.hosts:
                for t in timers:
                    if t.active():
                        t.cancel()
                self.net.crash(node.url, reset=True)
        node.leave().addBoth(exit_)
        if node.url in self.net.hosts:
            timers.append(self.clock.callLater(1.0, exit_))

    # -- time and views ----------------------------------------------------------------
    def run(self, seconds: float) -> None:
        self.clock.run_until(self.clock.seconds() + seconds)

    def run_until(self, done: Callable[[], bool], limit: float, step: float = 0.05) -> bool:
        """Run until ``done()`` holds (checked every ``step``), at most ``limit`` seconds."""
        end = self.clock.seconds() + limit
        while self.clock.seconds() < end:
            if done():
                return True
            self.run(step)
        return done()

    @staticmethod
    def view(node: Membership) -> set:
        return {m.id for m in node.members.values() if m.state in (ALIVE, SUSPECT)}

    def announced(self) -> dict[str, set]:
        """What each host's listener was told ("joined", "left"), replayed from the events:
        the members a real host's tree shows, which must be its membership's own `view`.
        A converged start tells nobody of the members it begins with."""
        ids = {n.id for n in self.nodes}
        told = {n.id: (ids - {n.id}) if self._converged else set() for n in self.nodes}
        for _, observer, kind, subject in self.events:
            if kind == "joined":
                told[observer].add(subject)
            else:
                told[observer].discard(subject)
        return told

    def unannounced(self, hosts: Iterable[Membership]) -> int:
        """Members a host's membership and its listener disagree on, summed over ``hosts``."""
        told = self.announced()
        return sum(len(self.view(h) ^ told[h.id]) for h in hosts)

    def reach(self, kinds: Iterable[str], subject: str, since: float,
              observers: Iterable[Membership]) -> Reach:
        ids = {o.id for o in observers}
        first: dict = {}
        for kind in kinds:
            for observer, when in self.learned.get((kind, subject), {}).items():
                if observer in ids and when >= since:
                    first[observer] = min(when, first.get(observer, when))
        return Reach(sorted(t - since for t in first.values()), len(ids))

    def departures(self, since: float, of: Optional[set] = None,
                   observers: Optional[Iterable[Membership]] = None) -> list:
        """"left" events since a time, about members in ``of``, seen by ``observers``
        (by default: all of either)."""
        seen_by = None if observers is None else {o.id for o in observers}
        return [e for e in self.events if e[0] >= since and e[2].startswith("left:")
                and (of is None or e[3] in of) and (seen_by is None or e[1] in seen_by)]

    def load(self, since: dict, seconds: float, hosts: Iterable[Membership]) -> dict:
        """Per host per second over the last ``seconds``, from a `Counters.snapshot`."""
        now = self.net.counters.snapshot()
        out = {}
        urls = [h.url for h in hosts]
        for name, values in now.items():
            if name == "by_method":
                out[name] = {m: (b - since[name].get(m, 0)) / seconds / len(urls)
                             for m, b in values.items()}
                continue
            per_host = [(values.get(u, 0) - since[name].get(u, 0)) / seconds for u in urls]
            out[name] = (sum(per_host) / len(per_host), max(per_host))
        return out

    # -- scenarios ---------------------------------------------------------------------
    def join_one(self, limit: float = 60.0) -> tuple[Reach, Optional[float]]:
        """A new host joins through a random member.  The event's reach among the others,
        and when the newcomer itself knew all of them (None: not within ``limit``)."""
        observers = self.live()
        ids = {o.id for o in observers}
        since = self.clock.seconds()
        node = self.add(via=self._pick(observers))
        heard = lambda: len(self.learned.get(("joined", node.id), {}).keys() & ids)  # noqa: E731
        self.run_until(lambda: heard() == len(ids) and self.view(node) >= ids, limit)
        knew = [self.learned.get(("joined", i), {}).get(node.id) for i in ids]
        own = max(knew) - since if None not in knew else None
        return self.reach(["joined"], node.id, since, observers), own

    def leave_one(self, limit: float = 60.0) -> tuple[Reach, int]:
        """A random member stops gracefully.  The reach of its departure, and how many
        learned it as a failure rather than a leave."""
        node = self._pick(self.live())
        observers = [o for o in self.live() if o is not node]
        since = self.clock.seconds()
        self.leave(node)
        kinds = ["left:left", "left:failed"]
        self.run_until(lambda: self.reach(kinds, node.id, since, observers).all is not None, limit)
        failed = self.reach(["left:failed"], node.id, since, observers)
        return self.reach(kinds, node.id, since, observers), len(failed.times)

    def crash_one(self, reset: bool = True, limit: float = 120.0) -> Reach:
        """A random member dies: its connections reset (a killed process), or silent."""
        node = self._pick(self.live())
        observers = [o for o in self.live() if o is not node]
        since = self.clock.seconds()
        self.crash(node, reset)
        self.run_until(lambda: self.reach(["left:failed"], node.id, since, observers).all is not None,
                       limit)
        return self.reach(["left:failed"], node.id, since, observers)

    def refute_one(self, limit: float = 60.0, step: float = 0.01) -> Reach:
        """Gossip alone: one host suspects a live member (as if its probe had failed); the
        suspicion spreads, the member refutes, and the refutation spreads.  When each
        host had the refutation (checked every ``step``)."""
        hosts = self.live()
        accuser, accused = self._pick(hosts), None
        while accused is None or accused is accuser:
            accused = random.Random(len(self.events) + self._next + 1).choice(hosts)
        since = self.clock.seconds()
        accuser.suspect(accused.id)
        others = [h for h in hosts if h is not accused]
        first: dict = {}

        def refuted():
            now = self.clock.seconds()
            for h in others:
                m = h.members.get(accused.id)
                if h.id not in first and accused.incarnation > 0 and m is not None \
                        and m.incarnation >= accused.incarnation and m.state == ALIVE:
                    first[h.id] = now - since
            return len(first) == len(others)
        self.run_until(refuted, limit, step)
        return Reach(sorted(first.values()), len(others))

    def lossy(self, loss: float, mode: str, seconds: float) -> dict:
        """Run with loss on every link; what the live hosts wrongly concluded."""
        hosts = self.live()
        ids = {h.id for h in hosts}
        before = {h.id: h.incarnation for h in hosts}
        since = self.clock.seconds()
        self.net.loss, self.net.loss_mode = loss, mode
        try:
            self.run(seconds)
        finally:
            self.net.loss = 0.0
        wrong = self.departures(since, of=ids, observers=hosts)
        return {"departures": len(wrong), "members": len({e[3] for e in wrong}),
                "refutations": sum(h.incarnation - before[h.id] for h in hosts)}

    def partition(self, fraction: float = 0.2, hold: float = 60.0, limit: float = 300.0,
                  heal: bool = True) -> dict:
        """Cut a random ``fraction`` of the hosts from the rest for ``hold`` seconds, then heal.

        split: when every host saw the other side gone (None: not within ``hold``), and
        a_saw_b_gone / b_saw_a_gone the same for each side (a: the larger);
        merged: when, after the heal, every host saw every other alive again;
        lost: hosts missing from some view at the end; wrong: departures of a host
        declared by one on its own side (during the cut and after the heal).  With
        ``heal=False`` the cut is measured and never healed (merged and lost: None)."""
        hosts = self.live()
        count = max(1, round(fraction * len(hosts)))
        side_b = set(random.Random(self.seed + 1).sample([h.url for h in hosts], count))
        b = [h for h in hosts if h.url in side_b]
        a = [h for h in hosts if h.url not in side_b]
        ids_a, ids_b = {h.id for h in a}, {h.id for h in b}
        since = self.clock.seconds()
        self.net.partition(side_b)

        seen: dict = {}

        def split():
            for name, side, other in (("a", a, ids_b), ("b", b, ids_a)):
                if name not in seen and all(not (self.view(h) & other) for h in side):
                    seen[name] = self.clock.seconds() - since
            return len(seen) == 2
        apart = self.run_until(split, hold)
        split_at = self.clock.seconds() - since if apart else None
        self.run(max(0.0, since + hold - self.clock.seconds()))
        healed = self.clock.seconds()
        out = {"a": len(a), "b": len(b), "split": split_at, "healed": heal,
               "a_saw_b_gone": seen.get("a"), "b_saw_a_gone": seen.get("b"),
               "merged": None, "lost": None, "wrong_after_heal": None}
        if heal:
            self.net.heal()
            everyone = ids_a | ids_b
            one = self.run_until(lambda: all(self.view(h) == everyone - {h.id} for h in hosts), limit)
            out["merged"] = self.clock.seconds() - healed if one else None
            out["lost"] = len({i for h in hosts for i in everyone - {h.id} - self.view(h)})
            out["unannounced"] = self.unannounced(hosts)
        wrong = [e for e in self.departures(since, observers=hosts) if (e[1] in ids_a) == (e[3] in ids_a)]
        out.update(wrong=len(wrong), wrong_members=len({e[3] for e in wrong}))
        if heal:
            out["wrong_after_heal"] = len([e for e in wrong if e[0] >= healed])
        return out

    def _pick(self, hosts: list) -> Membership:
        return random.Random(self.seed * 7919 + len(self.events) + self._next).choice(hosts)
