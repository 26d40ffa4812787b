"""A subscription: membership events kept until read (gocircuit's ``mk@join``/``mk@leave``).

States: *made* (no topics yet: every event is kept) -> *on* (joins, leaves or both; what
was kept and is of neither topic is dropped) -> *removed*.  Each event is the JSON line
``sys/events`` shows; the backlog holds at most ``cap`` of them, and when a new one
arrives at a full backlog the oldest is dropped and counted.

A receive is tentative, as a channel's is (`circuit.core.channel.Offer`): the event
leaves the backlog as an offer that the reader's view confirms at its last moment, or
gives back (the reader left: the event is at the head again, for the next reader).
One offer is out at a time, so events are read in order and each exactly once.
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed

from circuit import errors
from circuit.core.events import EventHub
from circuit.core.waiters import Deferrals, WaiterSet

CAP = 1000  # events kept unread; past it the oldest goes (stat's "dropped")
TOPICS = {"join": "joined", "leave": "left"}  # a topic, and the key its events carry

Alive = Optional[Callable[[], bool]]


@dataclass(eq=False)
class _Receiver:
    done: Deferred
    alive: Alive


class Offer:
    """An event on its way to a reader; exactly one of confirm, decline, lost settles it."""

    def __init__(self, subscription: "Subscription", topic: str, message: bytes):
        self.subscription = subscription
        self.topic = topic
        self.message = message
        self.settled = False

    def confirm(self) -> None:
        if self._settle():
            self.subscription._confirmed(self)

    def decline(self) -> None:
        if self._settle():
            self.subscription._given_back(self)

    def lost(self) -> None:
        """The link to the reader failed: it may have the event; it goes back (a
        duplicate rather than a loss, as a buffered channel's message does)."""
        if self._settle():
            self.subscription._given_back(self)

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        return True


def _topic_of(line: bytes) -> str:
    event = json.loads(line)
    return next(t for t, key in TOPICS.items() if key in event)


def parse_topics(text: str) -> frozenset:
    words = text.replace(",", " ").split()
    if not words or any(w not in TOPICS for w in words) or len(set(words)) != len(words):
        raise errors.Invalid(f"on: want join, leave, or both; not {text.strip()[:60]!r}")
    return frozenset(words)


class Subscription:
    def __init__(self, hub: EventHub, cap: int = CAP):
        self.cap = cap
        self.topics: Optional[frozenset] = None
        self.removed = False
        self.heard = 0  # events kept, of its topics
        self.received = 0
        self.dropped = 0
        self._backlog: deque[tuple[str, bytes]] = deque()  # (topic, JSON line)
        self._receivers: deque[_Receiver] = deque()
        self._offered: Optional[Offer] = None
        self._recv_ready = WaiterSet()
        self._hub = hub
        hub.listen(self._heard)

    # -- topics -------------------------------------------------------------------------
    def check_on(self) -> None:
        self._check_alive()
        if self.topics is not None:
            raise errors.Busy(f"on is already {' '.join(sorted(self.topics))}; make a new subscription")

    def set_on(self, topics: frozenset) -> None:
        """Keep the events of ``topics`` from now on, and those kept since it was made."""
        self.check_on()
        self.topics = topics
        kept = [(t, line) for t, line in self._backlog if t in topics]
        self._backlog = deque(kept)
        self.heard = len(kept)
        self._settle()

    # -- events arriving ------------------------------------------------------------------
    def _heard(self, event: dict) -> None:
        topic = next((t for t, key in TOPICS.items() if key in event), None)
        if topic is None or self.removed or (self.topics is not None and topic not in self.topics):
            return
        self._backlog.append((topic, (json.dumps(event, sort_keys=True) + "\n").encode()))
        self.heard += 1
        if len(self._backlog) > self.cap:
            self._backlog.popleft()
            self.dropped += 1
        self._settle()

    # -- receiving ------------------------------------------------------------------------
    def offer(self, alive: Alive = None, side: object = None) -> Deferred:
        """Fires with an Offer of the next event (waiting for one); cancelling takes nothing."""
        try:
            self._check_usable()
        except errors.CircuitError as e:
            return fail(e)
        receiver = _Receiver(Deferred(lambda d: self._leave(receiver)), alive)
        self._receivers.append(receiver)
        self._settle()
        return receiver.done

    def try_recv(self) -> bytes:
        """The next event now, taken for good; WouldBlock if there is none."""
        self._check_usable()
        if self._offered is not None or not self._backlog:
            raise errors.WouldBlock("no event is waiting")
        self.received += 1
        return self._backlog.popleft()[1]

    def unrecv(self, line: bytes) -> None:
        """Give back an event taken by `try_recv` (a select that gave up): it is the oldest."""
        if self.removed:
            return
        self._backlog.appendleft((_topic_of(line), line))
        self.received -= 1
        self._settle()

    def wait_recv(self) -> Deferred:
        """Fires when a receive would not block."""
        if self.removed:
            return fail(errors.NotFound("the subscription was removed"))
        if self.topics is not None and self._backlog and self._offered is None:
            return succeed(None)
        return self._recv_ready.wait()

    def _leave(self, receiver: _Receiver) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    # -- ending ---------------------------------------------------------------------------
    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        self._hub.unlisten(self._heard)
        gone = errors.NotFound("the subscription was removed")
        later = Deferrals()
        for r in self._receivers:
            later.later(lambda r=r: r.done.errback(gone))
        self._receivers.clear()
        self._backlog.clear()
        self._offered = None
        later.later(lambda: self._recv_ready.fail_all(gone))
        later.run()

    def stat(self) -> dict:
        return {
            "on": None if self.topics is None else sorted(self.topics),
            "len": len(self._backlog),
            "cap": self.cap,
            "heard": self.heard,
            "received": self.received,
            "dropped": self.dropped,
            "receivers_waiting": len(self._receivers),
            "handing_over": 0 if self._offered is None else 1,
        }

    # -- the one place events move --------------------------------------------------------
    def _check_alive(self) -> None:
        if self.removed:
            raise errors.NotFound("the subscription was removed")

    def _check_usable(self) -> None:
        self._check_alive()
        if self.topics is None:
            raise errors.Invalid("the subscription has no topic yet: write join or leave to on first")

    def _settle(self) -> None:
        if self.topics is None or self.removed:
            return
        later = Deferrals()
        while self._offered is None and self._backlog and self._receivers:
            r = self._receivers.popleft()
            if r.alive is not None and not r.alive():
                later.later(lambda r=r: r.done.errback(errors.Interrupted("the receiver went away")))
                continue
            offer = self._offered = Offer(self, *self._backlog.popleft())
            later.later(lambda r=r, o=offer: r.done.callback(o))
        if len(self._recv_ready) and self._backlog and self._offered is None:
            later.later(self._recv_ready.fire_all)
        later.run()

    def _confirmed(self, offer: Offer) -> None:
        if self._offered is offer:
            self._offered = None
            self.received += 1
            self._settle()

    def _given_back(self, offer: Offer) -> None:
        if self._offered is offer:
            self._offered = None
            self._backlog.appendleft((offer.topic, offer.message))  # the oldest again
            if len(self._backlog) > self.cap:  # events arrived meanwhile: the oldest goes
                self._backlog.popleft()
                self.dropped += 1
            self._settle()
