"""A channel: Go's buffered channel, with exactly-once delivery of byte strings.

States: *unmade* (no capacity yet), *open*, *closed* (draining, then drained),
*removed*.  Every public operation changes state completely, then fires the
Deferreds it has made ready (`Deferrals`), so a callback re-entering the channel
never sees a half-done transition.

A waiting receiver may carry an ``alive`` predicate: the channel asks it at the
very moment it would hand the receiver a message, and skips receivers that have
gone (a reader hit by Ctrl-C), so the message goes to the next one.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed

from circuit import errors
from circuit.core.waiters import Deferrals, WaiterSet

Alive = Optional[Callable[[], bool]]


@dataclass(eq=False)
class _Sender:
    message: bytes
    done: Deferred
    decided: Optional[Callable[[], None]] = None  # its answer, settled but not yet fired


@dataclass(eq=False)
class _Receiver:
    done: Deferred
    alive: Alive
    decided: Optional[Callable[[], None]] = None


def _decide(later: Deferrals, waiter, fire: Callable[[], None]) -> None:
    """Settle a waiter's answer now and fire it with the batch, or sooner if it is cancelled."""
    waiter.decided = fire
    later.later(lambda: _fire(waiter))


def _fire(waiter) -> None:
    fire, waiter.decided = waiter.decided, None
    if fire is not None:
        fire()


class Channel:
    """Send and receive byte strings, in order, each exactly once."""

    def __init__(self) -> None:
        self.cap: Optional[int] = None
        self.closed = False
        self.removed = False
        self.sent = 0
        self.received = 0
        self._buffer: deque[bytes] = deque()
        self._senders: deque[_Sender] = deque()
        self._receivers: deque[_Receiver] = deque()
        self._send_ready = WaiterSet()
        self._recv_ready = WaiterSet()

    # -- configuration -------------------------------------------------------------
    def set_cap(self, cap: int) -> None:
        self.check_cap()
        if cap < 0:
            raise errors.Invalid("cap must be a whole number, 0 or more")
        self.cap = cap
        self._settle()

    # -- sending -------------------------------------------------------------------
    def send(self, message: bytes) -> Deferred:
        """Fires once the message is buffered or, for cap 0, taken by a receiver.

        Cancelling before then withdraws the message: nobody will receive it.
        """
        try:
            self._check_usable()
        except errors.CircuitError as e:
            return fail(e)
        if self.closed:
            return fail(errors.Closed("send on a closed channel"))
        sender = _Sender(message, Deferred(lambda d: self._withdraw(sender)))
        self._senders.append(sender)
        self._settle()
        return sender.done

    def try_send(self, message: bytes) -> None:
        self._check_usable()
        if self.closed:
            raise errors.Closed("send on a closed channel")
        if not self._would_send():
            raise errors.WouldBlock("the channel is full (trysend would block)")
        self.send(message)

    def _withdraw(self, sender: _Sender) -> None:
        if sender in self._senders:
            self._senders.remove(sender)
            self._settle()
        else:  # cancelled after its answer was settled: too late to withdraw, answer now
            _fire(sender)

    # -- receiving -----------------------------------------------------------------
    def recv(self, alive: Alive = None) -> Deferred:
        """Fires with the next message; cancelling before that takes nothing."""
        try:
            self._check_usable()
        except errors.CircuitError as e:
            return fail(e)
        receiver = _Receiver(Deferred(lambda d: self._leave(receiver)), alive)
        self._receivers.append(receiver)
        self._settle()
        return receiver.done

    def try_recv(self) -> bytes:
        self._check_usable()
        if not (self._buffer or self._senders):
            if self.closed:
                raise errors.Closed("the channel is closed and drained")
            raise errors.WouldBlock("the channel is empty (tryrecv would block)")
        later = Deferrals()
        message = self._take(later)
        self._settle()
        later.run()
        return message

    def unrecv(self, message: bytes) -> None:
        """Put back a message that was taken for a taker that then gave up.

        It goes to the head of the queue: it was the oldest when it was taken.
        """
        if self.removed:
            return
        self._buffer.appendleft(message)
        self.received -= 1
        self._settle()

    def _leave(self, receiver: _Receiver) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)
            self._settle()
        else:  # cancelled after its message was settled: it gets the message now
            _fire(receiver)

    # -- readiness (for select and the wait* files) --------------------------------
    def wait_send(self) -> Deferred:
        """Fires when a send would not block (including: it would fail)."""
        if self.removed:
            return fail(errors.NotFound("the channel was removed"))
        if self.cap is not None and self._would_send():
            return succeed(None)
        return self._send_ready.wait()

    def wait_recv(self) -> Deferred:
        """Fires when a receive would not block (including: it would fail)."""
        if self.removed:
            return fail(errors.NotFound("the channel was removed"))
        if self.cap is not None and self._would_recv():
            return succeed(None)
        return self._recv_ready.wait()

    def check_send(self) -> None:
        """Raise what a send would fail with at once (no cap, closed, removed)."""
        self._check_usable()
        if self.closed:
            raise errors.Closed("send on a closed channel")

    def check_close(self) -> None:
        self._check_usable()
        if self.closed:
            raise errors.Closed("the channel is already closed")

    def check_cap(self) -> None:
        self._check_alive()
        if self.cap is not None:
            raise errors.Busy(f"cap is already set to {self.cap}")

    def try_ready_send(self) -> None:
        """Raise WouldBlock unless a send would proceed now (or fail at once)."""
        self._check_usable()
        if not self._would_send():
            raise errors.WouldBlock("a send would block")

    def try_ready_recv(self) -> None:
        """Raise WouldBlock unless a receive would proceed now (or fail at once)."""
        self._check_usable()
        if not self._would_recv():
            raise errors.WouldBlock("a receive would block")

    def _would_send(self) -> bool:
        assert self.cap is not None
        if self.closed:
            return True
        if self._senders:
            return False
        return len(self._buffer) < self.cap or any(self._live_receivers())

    def _would_recv(self) -> bool:
        return bool(self._buffer or self._senders or self.closed)

    def _live_receivers(self):
        return (r for r in self._receivers if r.alive is None or r.alive())

    # -- ending --------------------------------------------------------------------
    def close(self) -> None:
        self.check_close()
        self.closed = True
        # Senders still blocked were never accepted: they fail, their messages unsent.
        later = Deferrals()
        while self._senders:
            s = self._senders.popleft()
            _decide(later, s, lambda s=s: s.done.errback(errors.Closed("the channel was closed")))
        self._settle()
        later.run()

    def remove(self) -> None:
        """The element is gone: everyone waiting fails with ENOENT."""
        if self.removed:
            return
        self.removed = True
        gone = errors.NotFound("the channel was removed")
        later = Deferrals()
        for w in [*self._senders, *self._receivers]:
            _decide(later, w, lambda w=w: w.done.errback(gone))
        self._senders.clear()
        self._receivers.clear()
        self._buffer.clear()
        later.later(lambda: self._send_ready.fail_all(gone))
        later.later(lambda: self._recv_ready.fail_all(gone))
        later.run()

    def stat(self) -> dict:
        return {
            "cap": self.cap,
            "len": len(self._buffer),
            "closed": self.closed,
            "sent": self.sent,
            "received": self.received,
            "senders_waiting": len(self._senders),
            "receivers_waiting": len(self._receivers),
        }

    # -- the one place messages move ------------------------------------------------
    def _check_alive(self) -> None:
        if self.removed:
            raise errors.NotFound("the channel was removed")

    def _check_usable(self) -> None:
        self._check_alive()
        if self.cap is None:
            raise errors.Invalid("the channel has no capacity yet: write cap first")

    def _settle(self) -> None:
        if self.cap is None or self.removed:
            return
        later = Deferrals()
        while True:
            # Fill the buffer from blocked senders, oldest first.
            while self._senders and len(self._buffer) < self.cap:
                s = self._senders.popleft()
                self._buffer.append(s.message)
                self.sent += 1
                _decide(later, s, lambda s=s: s.done.callback(None))
            if not (self._receivers and (self._buffer or self._senders)):
                break
            # Hand the oldest message to the oldest receiver still there.
            r = self._receivers.popleft()
            if r.alive is not None and not r.alive():
                _decide(later, r, lambda r=r: r.done.errback(errors.Interrupted("the receiver went away")))
                continue
            message = self._take(later)
            _decide(later, r, lambda r=r, m=message: r.done.callback(m))
        if self.closed and not self._buffer:
            drained = errors.Closed("the channel is closed and drained")
            while self._receivers:
                r = self._receivers.popleft()
                _decide(later, r, lambda r=r: r.done.errback(drained))
        # Waiters first: _would_send may ask receivers whether they are alive.
        if len(self._send_ready) and self._would_send():
            later.later(self._send_ready.fire_all)
        if len(self._recv_ready) and self._would_recv():
            later.later(self._recv_ready.fire_all)
        later.run()

    def _take(self, later: Deferrals) -> bytes:
        """Take the oldest message: from the buffer, else from a sender's hand."""
        if self._buffer:
            message = self._buffer.popleft()
        else:  # rendezvous
            s = self._senders.popleft()
            message = s.message
            self.sent += 1
            _decide(later, s, lambda: s.done.callback(None))
        self.received += 1
        return message
