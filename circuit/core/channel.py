"""A channel: Go's buffered channel, with exactly-once delivery of byte strings.

States: *unmade* (no capacity yet), *open*, *closed* (draining, then drained),
*removed*.  Every public operation changes state completely, then fires the
Deferreds it has made ready (`Deferrals`), so a callback re-entering the channel
never sees a half-done transition.

Every waiting sender and receiver may carry an ``alive`` predicate, asked of the
caller's own view at the very moment of hand-over: a receiver that has gone (a
reader hit by Ctrl-C) is skipped and the message goes to the next one; a sender
that has gone fails with EINTR and its message is never delivered.

A receive may be *tentative* (`offer`): the message leaves the channel as an
`Offer` that the taker's view confirms at its last moment before the reader has
it, or declines (the reader left; the message goes back where it was), or loses
(the link to the taker failed).  While an offer is out no later message is
handed to anyone, so giving one back keeps the order; with one exception, for
throughput across hosts: receivers that share a ``side`` and decide each offer
as it arrives, in the order sent (``ahead``: a client's whole reads over one
connection) may have several offers out at once.  Their side gives back every
later offer of the same *epoch* once it gives one back (see `Offer.tag`), and
no new offer is made until all of them are settled, so what comes back goes
back in its old order.  A rendezvous sender
completes when the reader's side holds the message: when its offer is confirmed,
or at once when sender and taker share a ``side`` (one connection from another
host: the sender's answer then travels behind the message, to the same host).
"""
from __future__ import annotations

from bisect import bisect
from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from circuit import errors
from circuit.core.waiters import Deferrals, WaiterSet

log = Logger("circuit.channel")

Alive = Optional[Callable[[], bool]]
AHEAD_WINDOW = 16  # offers out at once to one side whose receivers decide on arrival
_tokens = count(1)


@dataclass(eq=False)
class _Sender:
    message: bytes
    done: Deferred
    alive: Alive = None
    decided: Optional[Callable[[], None]] = None  # its answer, settled but not yet fired
    told: bool = False  # answered while its message was out on offer
    side: object = None  # whose path its answer takes (see the module's docstring)


@dataclass(eq=False)
class _Receiver:
    done: Deferred
    alive: Alive
    decided: Optional[Callable[[], None]] = None
    tentative: bool = False  # wants an Offer, not the message itself
    side: object = None
    ahead: int = 0  # the largest offer its side decides on as it arrives, in order (0: none)


def _here(waiter) -> bool:
    return waiter.alive is None or waiter.alive()


class Offer:
    """A message on its way to a taker, not yet known to have arrived.

    Exactly one of `confirm`, `decline` and `lost` settles it; later calls do nothing.
    """

    def __init__(self, channel: "Channel", message: bytes, sender: Optional[_Sender],
                 side: object = None, ahead: int = 0):
        self.channel = channel
        self.message = message
        self.sender = sender  # a rendezvous sender, committed but not yet answered
        self.side = side  # the taker's side
        self.ahead = ahead  # its receiver's (see _Receiver)
        self.seq = channel._taken  # its place in the channel's order
        self.epoch = channel._epoch
        self.settled = False

    @property
    def tag(self) -> list:
        """[channel, epoch], for a taker that has several offers of this channel on their
        way: once it gives one back, it gives back every later one of the same epoch
        (the channel starts a new epoch when it has one back)."""
        return [self.channel.token, self.epoch]

    def confirm(self) -> None:
        """The taker's reader has it."""
        if self._settle():
            self.channel._confirmed(self)

    def decline(self) -> None:
        """The taker's reader had gone: the message goes back, as if never taken."""
        if self._settle():
            self.channel._declined(self)

    def lost(self) -> None:
        """The link to the taker failed mid-hand-over: it may or may not have the message."""
        if self._settle():
            self.channel._lost(self)

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        return True


def _decide(later: Deferrals, waiter, fire: Callable[[], None]) -> None:
    """Settle a waiter's answer now and fire it with the batch, or sooner if it is cancelled."""
    waiter.decided = fire
    later.later(lambda: _fire(waiter))


class _Line:
    """A deque made only when first used: an idle channel's three would cost 2 KB (a
    deque allocates a block of 64 slots at once), more than all the rest of it."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: Optional[deque] = None

    def _made(self) -> deque:
        if self._items is None:
            self._items = deque()
        return self._items

    def append(self, item) -> None:
        self._made().append(item)

    def appendleft(self, item) -> None:
        self._made().appendleft(item)

    def popleft(self):
        return self._made().popleft()

    def insert(self, i: int, item) -> None:
        self._made().insert(i, item)

    def first(self):
        return self._made()[0]

    def remove(self, item) -> None:
        self._made().remove(item)

    def clear(self) -> None:
        self._items = None

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def __iter__(self):
        return iter(()) if self._items is None else iter(self._items)

    def __contains__(self, item) -> bool:
        return self._items is not None and item in self._items


def _fire(waiter) -> None:
    fire, waiter.decided = waiter.decided, None
    if fire is not None:
        fire()


class Channel:
    """Send and receive byte strings, in order, each exactly once."""

    # The hand-overs' state starts as these class-wide values, and a channel has its
    # own only once it hands something over: a host holds many idle channels (see _Line).
    _out: list[Offer] | tuple = ()  # offers in flight, oldest first: one, or several to one side
    _back: list[int] | tuple = ()   # places of messages given back while others are still out
    _taken = 0  # messages taken as offers so far: each offer's place in the order
    _epoch = 0  # a new one each time an offer comes back (Offer.tag)
    _token = 0  # this channel in tags, made when first asked for
    _on_end: list | tuple = ()  # told once when a send could no longer pass (on_end)

    def __init__(self) -> None:
        self.cap: Optional[int] = None
        self.closed = False
        self.removed = False
        self.sent = 0
        self.received = 0
        self._buffer = _Line()     # bytes
        self._senders = _Line()    # _Sender
        self._receivers = _Line()  # _Receiver
        self._send_ready = WaiterSet()
        # Writers on other hosts wait for a turn (wait_turn): only as many are woken as
        # could send now, instead of every one of them trying, one succeeding, and the
        # rest waiting again (a round trip each, for every message taken).
        self._turn_waiters = WaiterSet()
        self._turns_out = 0  # woken, their attempt (or their giving up) not yet seen
        self._recv_ready = WaiterSet()

    @property
    def token(self) -> int:
        """This channel, among all of this process's, in an offer's tag (Offer.tag)."""
        if not self._token:
            self._token = next(_tokens)
        return self._token

    # -- configuration -------------------------------------------------------------
    def set_cap(self, cap: int) -> None:
        self.check_cap()
        if cap < 0:
            raise errors.Invalid("cap must be a whole number, 0 or more")
        self.cap = cap
        self._settle()

    # -- sending -------------------------------------------------------------------
    def send(self, message: bytes, alive: Alive = None, side: object = None) -> Deferred:
        """Fires once the message is buffered or, for cap 0, held by a receiver's side.

        Cancelling before then withdraws the message: nobody will receive it.  A
        sender whose ``alive`` says False at the moment of hand-over fails with
        EINTR, its message unsent.
        """
        try:
            self._check_usable()
        except errors.CircuitError as e:
            return fail(e)
        if self.closed:
            return fail(errors.Closed("send on a closed channel"))
        sender = _Sender(message, Deferred(lambda d: self._withdraw(sender)), alive, side=side)
        self._senders.append(sender)
        self._settle()
        return sender.done

    def try_send(self, message: bytes, alive: Alive = None, side: object = None) -> Deferred:
        """Send only if the message is taken at once (buffered, or matched with a
        receiver); else raise WouldBlock and change nothing.  The Deferred fires as
        send's does: for cap 0, once the receiver's side holds the message."""
        self._check_usable()
        if self.closed:
            raise errors.Closed("send on a closed channel")
        if not self._would_send():
            raise errors.WouldBlock("the channel is full (trysend would block)")
        done = self.send(message, alive, side)
        if not done.called and any(s.done is done for s in self._senders):
            done.cancel()  # not taken after all (the receiver had gone): withdraw it
            done.addErrback(lambda f: None)
            raise errors.WouldBlock("the channel is full (trysend would block)")
        return done

    def _withdraw(self, sender: _Sender) -> None:
        if sender in self._senders:
            self._senders.remove(sender)
            self._settle()
        elif sender.decided is not None:  # cancelled after its answer was settled: answer now
            _fire(sender)
        elif any(o.sender is sender for o in self._out):
            # Its message is out on offer: it was committed when it was taken, so it
            # has been sent; the offer settles without it (see _declined, _lost).
            later = Deferrals()
            self._answer(sender, later)
            later.run()

    # -- receiving -----------------------------------------------------------------
    def recv(self, alive: Alive = None) -> Deferred:
        """Fires with the next message; cancelling before that takes nothing."""
        return self._wait_recv(alive, tentative=False)

    def offer(self, alive: Alive = None, side: object = None, ahead: int = 0) -> Deferred:
        """As recv, but fires with an Offer that the taker must confirm, decline or lose.

        ``ahead``: the taker's side decides on an offer of up to that many bytes as it
        arrives, in the order sent, and keeps the epoch rule (`Offer.tag`): several such
        offers may then be out to it at once."""
        return self._wait_recv(alive, tentative=True, side=side, ahead=ahead)

    def _wait_recv(self, alive: Alive, tentative: bool, side: object = None, ahead: int = 0) -> Deferred:
        try:
            self._check_usable()
        except errors.CircuitError as e:
            return fail(e)
        receiver = _Receiver(Deferred(lambda d: self._leave(receiver)), alive, tentative=tentative,
                             side=side, ahead=ahead)
        self._receivers.append(receiver)
        self._settle()
        return receiver.done

    def try_recv(self) -> bytes:
        offer = self.try_offer()
        offer.confirm()
        return offer.message

    def try_offer(self, side: object = None) -> Offer:
        """The next message as an Offer if one is there now; else WouldBlock or Closed."""
        self._check_usable()
        while True:
            if self._out or not (self._buffer or self._senders):
                if self.closed and not self._out:
                    raise errors.Closed("the channel is closed and drained")
                raise errors.WouldBlock("the channel is empty (tryrecv would block)")
            later = Deferrals()
            offer = self._take(later, side)
            self._settle()
            later.run()
            if offer is not None:
                return offer

    def unrecv(self, message: bytes) -> None:
        """Put back a message that was taken for a taker that then gave up.

        It goes to the head of the queue: it was the oldest when it was taken.
        """
        if self.removed:
            return
        self._buffer.appendleft(message)
        if self._back:  # older than any offer out: it goes before those that came back
            self._back = [-1, *self._back]
        self.received -= 1
        self._settle()

    def _leave(self, receiver: _Receiver) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)
            self._settle()
        else:  # cancelled after its message was settled: it gets the message now
            _fire(receiver)

    # -- turns, for writers that try once when woken (writers on other hosts) ------------
    def wait_turn(self) -> Deferred:
        """Fires, taking nothing, when this writer's attempt could go through: a send
        would not block, and fewer writers hold a turn than could send now.  The writer
        then attempts (try_send) or gives up, and says so with turn_over()."""
        if self.removed:
            return fail(errors.NotFound("the channel was removed"))
        if self.cap is not None and self._free_turns() > 0 and not len(self._turn_waiters):
            self._turns_out += 1
            return succeed(None)
        return self._turn_waiters.wait()

    def turn_over(self) -> None:
        """A woken writer attempted, or gave up: its turn may go to the next."""
        if self._turns_out > 0:
            self._turns_out -= 1
            self._settle()

    def _fire_turns(self, n: int) -> None:
        self._turns_out -= n - self._turn_waiters.fire_first(n)  # some may have left since

    def _free_turns(self) -> int:
        if not self._would_send():
            return 0
        if self.closed:
            return len(self._turn_waiters) + 1  # every attempt fails at once: wake them all
        can = self._room() if self._room() > 0 else 1  # a rendezvous: one hand-over at a time
        return can - self._turns_out

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
        return self._room() > 0 or (not self._out and any(self._live_receivers()))

    def _would_recv(self) -> bool:
        if self._out:
            return False  # the next message is whatever those hand-overs leave
        return bool(self._buffer or self._senders or self.closed)

    def _room(self) -> int:
        """Free buffer slots; a buffered message out on offer keeps its slot until confirmed."""
        assert self.cap is not None
        held = sum(1 for o in self._out if o.sender is None)
        return self.cap - len(self._buffer) - held

    def _live_receivers(self):
        return (r for r in self._receivers if _here(r))

    # -- ending --------------------------------------------------------------------
    def on_end(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once, when the channel closes or is removed (at once if it has):
        from then on no send passes ``check_send``.  Another host's leases hang on it."""
        if self.closed or self.removed:
            hook()
            return
        if not self._on_end:
            self._on_end = []
        self._on_end.append(hook)

    def forget_end(self, hook: Callable[[], None]) -> None:
        if hook in self._on_end:
            self._on_end.remove(hook)

    def _ended(self) -> None:
        hooks, self._on_end = self._on_end, ()
        for hook in hooks:
            hook()

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
        self._ended()

    def remove(self) -> None:
        """The element is gone: everyone waiting fails with ENOENT."""
        if self.removed:
            return
        self.removed = True
        gone = errors.NotFound("the channel was removed")
        later = Deferrals()
        waiting = [*self._senders, *self._receivers]
        out, self._out, self._back = self._out, (), ()
        waiting += [o.sender for o in out if o.sender is not None and not o.sender.told]
        for w in waiting:
            _decide(later, w, lambda w=w: w.done.errback(gone))
        self._senders.clear()
        self._receivers.clear()
        self._buffer.clear()
        later.later(lambda: self._send_ready.fail_all(gone))
        later.later(lambda: self._turn_waiters.fail_all(gone))
        later.later(lambda: self._recv_ready.fail_all(gone))
        later.run()
        self._ended()

    def stat(self) -> dict:
        return {
            "cap": self.cap,
            "len": len(self._buffer),
            "closed": self.closed,
            "sent": self.sent,
            "received": self.received,
            "senders_waiting": len(self._senders),
            "receivers_waiting": len(self._receivers),
            "handing_over": len(self._out),
            "send_waits": len(self._send_ready) + len(self._turn_waiters),  # for a send to be possible
            "recv_waits": len(self._recv_ready),
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
            # Fill the buffer from blocked senders still there, oldest first.
            while self._senders and self._room() > 0:
                s = self._senders.popleft()
                if not _here(s):
                    _decide(later, s, lambda s=s: s.done.errback(errors.Interrupted("the sender went away")))
                    continue
                self._buffer.append(s.message)
                self.sent += 1
                _decide(later, s, lambda s=s: s.done.callback(None))
            if not (self._receivers and (self._buffer or self._senders)):
                break
            if self._out and not self._may_send_ahead(self._receivers.first()):
                break  # one hand-over at a time: a message given back keeps its place
            # Hand the oldest message to the oldest receiver still there.
            r = self._receivers.popleft()
            if not _here(r):
                _decide(later, r, lambda r=r: r.done.errback(errors.Interrupted("the receiver went away")))
                continue
            offer = self._take(later, r.side, r.ahead)
            if offer is None:  # the rendezvous sender had gone: try again with this receiver
                self._receivers.appendleft(r)
                continue
            if r.tentative:
                _decide(later, r, lambda r=r, o=offer: r.done.callback(o))
                self._tell_alongside(offer, later)
            else:
                offer.settled = True
                self._confirm(offer, later)
                _decide(later, r, lambda r=r, m=offer.message: r.done.callback(m))
        if self.closed and not self._buffer and not self._out:
            drained = errors.Closed("the channel is closed and drained")
            while self._receivers:
                r = self._receivers.popleft()
                _decide(later, r, lambda r=r: r.done.errback(drained))
        # Waiters first: _would_send may ask receivers whether they are alive.
        if len(self._send_ready) and self._would_send():
            later.later(self._send_ready.fire_all)
        if len(self._turn_waiters):
            turns = self._free_turns()
            if turns > 0:
                n = min(turns, len(self._turn_waiters))
                self._turns_out += n
                later.later(lambda: self._fire_turns(n))
        if len(self._recv_ready) and self._would_recv():
            later.later(self._recv_ready.fire_all)
        later.run()

    def _may_send_ahead(self, r: _Receiver) -> bool:
        """May the next message go to ``r`` while the offers out are unsettled?  Only if
        they and it all go, from the buffer, to one side that decides each as it
        arrives, in order (see the module's docstring), and none has come back since."""
        if not (r.tentative and r.ahead and r.side is not None and self._buffer and not self._back
                and len(self._out) < AHEAD_WINDOW and len(self._buffer.first()) <= r.ahead):
            return False
        return all(o.sender is None and o.side is r.side and len(o.message) <= o.ahead
                   for o in self._out)

    def _take(self, later: Deferrals, side: object = None, ahead: int = 0) -> Optional[Offer]:
        """Take the oldest message, from the buffer or a rendezvous sender's hand, as
        an offer in flight to a taker on ``side``; None if that sender had gone (it
        fails with EINTR)."""
        if self._buffer:
            offer = Offer(self, self._buffer.popleft(), None, side, ahead)
        else:
            s = self._senders.popleft()
            if not _here(s):
                _decide(later, s, lambda: s.done.errback(errors.Interrupted("the sender went away")))
                return None
            offer = Offer(self, s.message, s, side)
        self._taken += 1
        if not self._out:
            self._out = []
        self._out.append(offer)
        return offer

    def _tell_alongside(self, offer: Offer, later: Deferrals) -> None:
        """A rendezvous sender on the taker's side is answered now: its answer follows
        the offer along the same path, so it arrives once its host holds the message."""
        s = offer.sender
        if s is not None and s.side is not None and s.side is offer.side:
            self._answer(s, later)

    def _answer(self, s: _Sender, later: Deferrals) -> None:
        """A rendezvous sender whose message is out on offer is told it was sent (once)."""
        if not s.told:
            s.told = True
            self.sent += 1
            _decide(later, s, lambda: s.done.callback(None))

    # -- settling an offer ----------------------------------------------------------
    def _confirm(self, offer: Offer, later: Deferrals) -> None:
        self._settled(offer)
        self.received += 1
        if offer.sender is not None:
            self._answer(offer.sender, later)

    def _confirmed(self, offer: Offer) -> None:
        if offer not in self._out:
            return  # the channel was removed meanwhile
        later = Deferrals()
        self._confirm(offer, later)
        later.run()
        self._settle()

    def _settled(self, offer: Offer) -> None:
        self._out.remove(offer)
        if not self._out:
            self._out = self._back = ()

    def _came_back(self, offer: Offer, message_back: bool) -> None:
        """``offer`` is settled without its taker: a new epoch begins (see Offer.tag) and,
        if ``message_back``, its message goes back to the buffer's head, in its old place
        among any others that came back while offers were still out."""
        self._epoch += 1
        if message_back:
            i = bisect(self._back, offer.seq)
            self._back = [*self._back[:i], offer.seq, *self._back[i:]]
            self._buffer.insert(i, offer.message)
        self._settled(offer)

    def _declined(self, offer: Offer) -> None:
        if offer not in self._out:
            return
        s = offer.sender
        back = s is None or s.told
        self._came_back(offer, message_back=back)  # it was the oldest: it is again
        if not back and self.closed:
            s.done.errback(errors.Closed("the channel was closed"))
        elif not back:
            self._senders.appendleft(s)  # still waiting, and asked again at the next hand-over
        self._settle()

    def _lost(self, offer: Offer) -> None:
        """Two generals: the taker may have delivered it.  A sender still waiting is
        told EHOSTDOWN (its send's outcome is unknown) and the message is dropped, so it
        is never delivered twice; a message already acknowledged to its sender goes
        back to the head, so it is never lost (a duplicate is possible)."""
        if offer not in self._out:
            return
        s = offer.sender
        if s is not None and not s.told:
            log.warn("a rendezvous hand-over was cut off: its sender is told EHOSTDOWN and the "
                     "message ({n} bytes) dropped; the reader's host may have delivered it",
                     n=len(offer.message))
            self._came_back(offer, message_back=False)
            s.done.errback(errors.HostDown("the receiving host was lost during the hand-over"))
        else:
            log.warn("a hand-over was cut off: the message ({n} bytes) goes back to the head of "
                     "its channel; the reader's host may have delivered it too", n=len(offer.message))
            self._came_back(offer, message_back=True)
        self._settle()
