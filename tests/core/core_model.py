"""Shared by the core tests: reading fired Deferreds, and a model a channel is checked against.

The core's Deferreds fire synchronously, so a test can look at one straight
after the call that should have fired it: no reactor, no clock.
"""
from __future__ import annotations

import itertools

from collections import Counter, deque
from typing import Callable, Optional

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from circuit import errors
from circuit.core.channel import Channel

_NOTHING = object()


def _noted(method):
    """A model callback run inside a Deferred: an assertion it makes is kept for check()
    (raised inside a callback it would only reach the log)."""
    def run(self, *args):
        try:
            return method(self, *args)
        except AssertionError as e:
            self.broken.append(e)
            raise
    return run


def _peek(d: Deferred):
    """The current result of d, without consuming it; _NOTHING if it has not fired."""
    seen = []

    def look(result):
        seen.append(result)
        return result

    d.addBoth(look)
    return seen[0] if seen else _NOTHING


def value(d: Deferred):
    """What a Deferred that must already have succeeded fired with."""
    result = _peek(d)
    assert result is not _NOTHING, "the Deferred has not fired"
    if isinstance(result, Failure):
        result.raiseException()
    return result


def failure(d: Deferred, *kinds: type[BaseException]) -> BaseException:
    """The exception a Deferred that must already have failed with one of ``kinds`` carries; handled."""
    result = _peek(d)
    assert result is not _NOTHING, "the Deferred has not fired"
    assert isinstance(result, Failure), f"the Deferred succeeded with {result!r}"
    assert result.check(*kinds), f"wanted {[k.__name__ for k in kinds]}, got {result.value!r}"
    d.addErrback(lambda _: None)
    return result.value


def pending(d: Deferred) -> bool:
    return _peek(d) is _NOTHING


class ChannelModel:
    """What a channel owes, checked after every step against what it did.

    Messages are unique.  ``queue`` is the order the channel owes its takers: the
    accepted messages, then those of blocked senders, oldest first; a take must
    take its head, and a message given back (unrecv) goes back to the head.

    An offer (a tentative take) takes the head too; while it is out (``handing``)
    it counts as taken but not received; declining it gives it back to the head;
    losing it gives it back, or, for a rendezvous sender still waiting, fails that
    sender with EHOSTDOWN (the message then counts as lost with its send).
    """

    def __init__(self, ch: Channel):
        self.ch = ch
        self.queue: deque[bytes] = deque()
        self.accepted: set[bytes] = set()      # its send fired (or try_send returned)
        self.refused: dict[bytes, BaseException] = {}  # its send failed: never to be delivered
        self.taken: Counter = Counter()        # net takes per message (unrecv gives one back)
        self.ever_taken: set[bytes] = set()
        self.sends: list[Deferred] = []
        self.recvs: list[tuple[Deferred, Optional[list]]] = []  # (deferred, alive flag)
        self.recv_errors: list[BaseException] = []
        self.cancelled_recvs: set[int] = set()   # ids of recv Deferreds cancelled while pending
        self.wait_sends: list[Deferred] = []
        self.wait_recvs: list[Deferred] = []
        self.broken: list[AssertionError] = []  # assertions made inside Deferred callbacks
        self.handing: Optional[tuple] = None  # (message, offer) out for confirmation
        self.lost: set[bytes] = set()  # dropped with a send that failed EHOSTDOWN
        self.writers: dict[bytes, list] = {}  # message -> its writer's alive flag
        self.gone_writers: set[bytes] = set()  # left before their message was taken
        self._counter = 0

    # -- acting on the channel, telling the model first ----------------------------
    def message(self) -> bytes:
        self._counter += 1
        return b"m%d@%x" % (self._counter, id(self) & 0xFFFF)

    def send(self, message: bytes, via: Optional[Callable[[bytes], Deferred]] = None,
             alive: Optional[list] = None, **side) -> Deferred:
        self.queue.append(message)
        if alive is not None:
            self.writers[message] = alive
        d = (via or self.ch.send)(message, alive=None if alive is None else (lambda: alive[0]), **side)
        self.sends.append(d)
        d.addCallbacks(self._on_accepted, self._on_refused,
                       callbackArgs=(message,), errbackArgs=(message,))
        return d

    def try_send(self, message: bytes) -> bool:
        self.queue.append(message)
        try:
            d = self.ch.try_send(message)
        except (errors.WouldBlock, errors.Closed) as e:
            self._refuse(message, e)
            return False
        self.sends.append(d)  # fires at once, or for cap 0 once an offer of it is confirmed
        d.addCallbacks(self._on_accepted, self._on_refused,
                       callbackArgs=(message,), errbackArgs=(message,))
        return True

    def recv(self, alive: Optional[list] = None) -> Deferred:
        d = self.ch.recv(alive=None if alive is None else (lambda: alive[0]))
        self.recvs.append((d, alive))
        d.addCallbacks(self._on_received, self._on_recv_failed,
                       callbackArgs=(alive,), errbackArgs=(d, alive))
        return d

    def offer(self, alive: Optional[list] = None, side: object = None) -> Deferred:
        d = self.ch.offer(alive=None if alive is None else (lambda: alive[0]), side=side)
        self.recvs.append((d, alive))
        d.addCallbacks(self._on_offered, self._on_recv_failed,
                       callbackArgs=(alive,), errbackArgs=(d, alive))
        return d

    def settle(self, how: str) -> None:
        """Confirm, decline or lose the offer that is out."""
        if self.handing is None:
            return
        message, offer = self.handing
        self.handing = None
        if how == "confirm":
            offer.confirm()
            return
        rendezvous_waiting = offer.sender is not None and not offer.sender.told
        self.give_back(message)
        if message not in self.accepted:
            self.ever_taken.discard(message)  # never delivered: its sender waits again
        if how == "lost" and rendezvous_waiting:
            self.lost.add(message)  # its sender's errback below refuses it
        getattr(offer, "decline" if how == "decline" else "lost")()

    def try_recv(self) -> Optional[bytes]:
        try:
            message = self.ch.try_recv()
        except errors.WouldBlock:
            assert self.handing or (not self.queue and not self.ch.closed), \
                "tryrecv said EAGAIN with a message owed and no hand-over in flight"
            return None
        except errors.Closed:
            assert self.ch.closed and not self.queue and not self.handing, \
                "tryrecv said EPIPE with a message owed"
            return None
        self.take(message)
        return message

    def unrecv(self, message: bytes) -> None:
        self.give_back(message)
        self.ch.unrecv(message)

    def cancel_recv(self, d: Deferred) -> None:
        if pending(d):
            self.cancelled_recvs.add(id(d))
        d.cancel()

    def wait_send(self) -> Deferred:
        d = self.ch.wait_send()
        self.wait_sends.append(d)
        d.addErrback(lambda f: f.trap(CancelledError))
        return d

    def wait_recv(self) -> Deferred:
        d = self.ch.wait_recv()
        self.wait_recvs.append(d)
        d.addErrback(lambda f: f.trap(CancelledError))
        return d

    # -- what the channel did ---------------------------------------------------------
    def take(self, message: bytes) -> None:
        assert message not in self.refused, f"{message!r} delivered though its send failed"
        assert self.queue, f"{message!r} delivered, but nothing was owed"
        assert self.queue[0] == message, (
            f"out of order: {message!r} delivered, {self.queue[0]!r} was owed first")
        assert message not in self.gone_writers, f"{message!r} taken from a writer that had gone"
        self.queue.popleft()
        self.taken[message] += 1
        assert self.taken[message] == 1, f"{message!r} delivered twice"
        self.ever_taken.add(message)

    def give_back(self, message: bytes) -> None:
        """To the head; but a rendezvous message whose sender was not told (a declined or
        lost offer) is its sender's again: the oldest blocked sender, after every accepted
        message (one a select gave back meanwhile, say)."""
        assert self.taken[message] == 1
        self.taken[message] -= 1
        if message in self.accepted:
            self.queue.appendleft(message)
        else:
            self.queue.insert(sum(1 for _ in itertools.takewhile(self.accepted.__contains__, self.queue)),
                              message)

    @_noted
    def _on_offered(self, offer, alive: Optional[list]):
        assert alive is None or alive[0], f"{offer.message!r} offered to a receiver that had gone"
        assert self.handing is None, "two hand-overs in flight at once"
        self.take(offer.message)
        self.handing = (offer.message, offer)

    def writer_leaves(self, message: bytes) -> None:
        self.writers[message][0] = False
        out = self.handing[0] if self.handing else None
        if message in self.queue and message not in self.accepted and message != out:
            self.gone_writers.add(message)  # from now on it must never be taken

    def _accept(self, message: bytes) -> None:
        assert message not in self.gone_writers, f"{message!r} accepted from a writer that had gone"
        assert message not in self.refused
        self.accepted.add(message)

    def _refuse(self, message: bytes, error: BaseException) -> None:
        assert message not in self.accepted, f"{message!r} both accepted and refused"
        if message in self.lost:  # a rendezvous hand-over cut off: its outcome unknown
            assert isinstance(error, errors.HostDown)
            self.ever_taken.discard(message)
        assert message not in self.ever_taken, f"{message!r} refused after it was delivered"
        self.refused[message] = error
        self.queue.remove(message)

    @_noted
    def _on_accepted(self, result, message: bytes):
        self._accept(message)

    @_noted
    def _on_refused(self, f: Failure, message: bytes):
        f.trap(CancelledError, errors.Closed, errors.Interrupted, errors.HostDown)
        self._refuse(message, f.value)

    @_noted
    def _on_received(self, message: bytes, alive: Optional[list]):
        assert alive is None or alive[0], f"{message!r} handed to a receiver that had gone"
        self.take(message)

    @_noted
    def _on_recv_failed(self, f: Failure, d: Deferred, alive: Optional[list]):
        if f.check(CancelledError):
            assert id(d) in self.cancelled_recvs
        elif f.check(errors.Interrupted):
            assert alive is not None and not alive[0], "a live receiver was told EINTR"
        elif f.check(errors.Closed):
            assert self.ch.closed and not self.queue and not self.handing, \
                "a receiver was told EPIPE with a message owed"
        else:
            return f
        self.recv_errors.append(f.value)

    # -- the checks ---------------------------------------------------------------------
    def check(self) -> None:
        if self.broken:
            raise self.broken[0]
        ch, st = self.ch, self.ch.stat()
        out = self.handing[0] if self.handing else None
        delivered = sum(self.taken.values()) - (1 if out else 0)
        out_accepted = out is not None and out in self.accepted  # buffered, or its sender told
        assert st["handing_over"] == (1 if out else 0)
        assert st["sent"] == len(self.accepted)
        assert st["received"] == delivered
        assert st["len"] + (1 if out_accepted else 0) == st["sent"] - st["received"]
        assert st["len"] == sum(1 for m in self.queue if m in self.accepted)
        assert st["senders_waiting"] == sum(1 for d in self.sends if pending(d)) - (
            1 if out is not None and not out_accepted else 0)
        assert st["receivers_waiting"] == sum(1 for d, _ in self.recvs if pending(d))
        assert len(self.queue) == st["len"] + st["senders_waiting"]
        assert not set(self.queue) & self.refused.keys()
        assert all(self.taken[m] in (0, 1) for m in self.taken)
        assert self.ever_taken - {out} <= self.accepted, \
            "a message was delivered before its send was accepted"
        if ch.cap == 0:
            assert self.accepted <= self.ever_taken, "a cap-0 send completed with no receiver taking it"
        # Nobody waits while what they wait for is there (unless a hand-over is out).
        if st["receivers_waiting"] and not out:
            assert st["len"] == 0 and st["senders_waiting"] == 0, "a receiver waits beside a message"
        held = 1 if out is not None and out_accepted and ch.cap > 0 else 0
        if st["senders_waiting"] and not ch.closed:
            assert st["len"] + held >= ch.cap, "a sender waits beside room in the buffer"
        if any(pending(d) for d in self.wait_recvs):
            _would_block(ch.try_ready_recv, "waitrecv still blocks though a receive would proceed")
        if any(pending(d) for d in self.wait_sends):
            _would_block(ch.try_ready_send, "waitsend still blocks though a send would proceed")

    def finish(self) -> None:
        """Close, drain, and check that every accepted message was delivered exactly once."""
        while self.handing:  # each confirm may hand the next message to a waiting offer
            self.settle("confirm")
            self.check()
        if not self.ch.closed:
            self.ch.close()
        self.check()
        while self.try_recv() is not None or self.handing:
            self.settle("confirm")
            self.check()
        self.check()
        assert not self.queue
        assert not any(pending(d) for d in self.sends), "a sender still waits on a closed channel"
        assert not any(pending(d) for d, _ in self.recvs), "a receiver still waits on a drained channel"
        assert not any(pending(d) for d in self.wait_sends + self.wait_recvs)
        for m in self.accepted:
            assert self.taken[m] == 1, f"{m!r} accepted but never delivered"
        for m in self.refused:
            assert self.taken[m] == 0 and m not in self.ever_taken
        for d in self.sends:
            assert not pending(d)
        assert self.ch.stat()["sent"] == self.ch.stat()["received"] == len(self.accepted)


def _would_block(probe: Callable[[], None], why: str) -> None:
    try:
        probe()
    except (errors.WouldBlock, errors.Invalid):  # Invalid: no cap yet, and waits wait for one
        return
    raise AssertionError(why)
