"""The channel: Go's buffered channel over byte strings, exactly once and in order (SPEC 3, chan/)."""
from __future__ import annotations

import errno

import pytest
from random import Random

from hypothesis import example, given, settings, strategies as st
from twisted.internet.defer import CancelledError

from circuit import errors
from circuit.core.channel import Channel
from core_model import ChannelModel, failure, pending, value


def chan(cap: int) -> Channel:
    ch = Channel()
    ch.set_cap(cap)
    return ch


# -- making it ---------------------------------------------------------------------------

def test_everything_but_waiting_wants_a_cap_first():
    ch = Channel()
    assert failure(ch.send(b"x"), errors.Invalid).errno == errno.EINVAL
    assert failure(ch.recv(), errors.Invalid).errno == errno.EINVAL
    for op in (lambda: ch.try_send(b"x"), ch.try_recv, ch.close, ch.check_send,
               ch.try_ready_send, ch.try_ready_recv):
        with pytest.raises(errors.Invalid) as e:
            op()
        assert e.value.errno == errno.EINVAL
    assert ch.stat()["cap"] is None


def test_waits_made_before_the_cap_fire_once_it_is_set():
    ch = Channel()
    ws, wr = ch.wait_send(), ch.wait_recv()
    assert pending(ws) and pending(wr)
    ch.set_cap(1)
    assert value(ws) is None  # room in the buffer
    assert pending(wr)        # nothing to receive yet
    ch.try_send(b"a")
    assert value(wr) is None


def test_cap_is_set_once():
    ch = chan(3)
    with pytest.raises(errors.Busy) as e:
        ch.set_cap(4)
    assert e.value.errno == errno.EBUSY
    with pytest.raises(errors.Busy):
        ch.check_cap()
    assert ch.cap == 3


def test_a_negative_cap_is_refused_and_leaves_the_channel_unmade():
    ch = Channel()
    with pytest.raises(errors.Invalid):
        ch.set_cap(-1)
    assert ch.cap is None
    ch.set_cap(0)
    assert ch.cap == 0


# -- cap 0: rendezvous ----------------------------------------------------------------------

def test_rendezvous_send_waits_for_a_receiver():
    ch = chan(0)
    s = ch.send(b"hello")
    assert pending(s)
    assert ch.stat()["len"] == 0 and ch.stat()["senders_waiting"] == 1
    r = ch.recv()
    assert value(r) == b"hello"
    assert value(s) is None
    assert ch.stat() == {"cap": 0, "len": 0, "closed": False, "sent": 1, "received": 1,
                         "senders_waiting": 0, "receivers_waiting": 0, "handing_over": 0,
                         "send_waits": 0, "recv_waits": 0}


def test_rendezvous_receiver_first():
    ch = chan(0)
    r = ch.recv()
    assert pending(r)
    s = ch.send(b"x")
    assert value(s) is None and value(r) == b"x"


def test_rendezvous_trysend_needs_a_waiting_receiver():
    ch = chan(0)
    with pytest.raises(errors.WouldBlock) as e:
        ch.try_send(b"x")
    assert e.value.errno == errno.EAGAIN
    assert ch.stat()["sent"] == 0 and ch.stat()["senders_waiting"] == 0
    r = ch.recv()
    ch.try_send(b"x")
    assert value(r) == b"x"


def test_rendezvous_tryrecv_takes_from_a_blocked_sender():
    ch = chan(0)
    with pytest.raises(errors.WouldBlock) as e:
        ch.try_recv()
    assert e.value.errno == errno.EAGAIN
    s = ch.send(b"x")
    assert ch.try_recv() == b"x"
    assert value(s) is None


def test_rendezvous_senders_are_served_in_order():
    ch = chan(0)
    sends = [ch.send(b"%d" % i) for i in range(5)]
    assert [value(ch.recv()) for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
    assert all(value(s) is None for s in sends)


# -- cap N: buffering --------------------------------------------------------------------------

def test_buffer_accepts_cap_messages_then_blocks():
    ch = chan(2)
    a, b = ch.send(b"a"), ch.send(b"b")
    assert value(a) is None and value(b) is None
    c = ch.send(b"c")
    assert pending(c)
    with pytest.raises(errors.WouldBlock):
        ch.try_send(b"d")
    with pytest.raises(errors.WouldBlock):
        ch.try_ready_send()
    assert ch.stat()["len"] == 2 and ch.stat()["senders_waiting"] == 1
    assert ch.try_recv() == b"a"
    assert value(c) is None  # room made: the blocked sender is accepted
    assert [ch.try_recv(), ch.try_recv()] == [b"b", b"c"]
    with pytest.raises(errors.WouldBlock):
        ch.try_recv()


def test_receivers_are_served_in_order():
    ch = chan(1)
    rs = [ch.recv() for _ in range(3)]
    for m in (b"1", b"2", b"3"):
        ch.try_send(m)
    assert [value(r) for r in rs] == [b"1", b"2", b"3"]


def test_empty_and_large_messages_are_messages():
    ch = chan(2)
    big = bytes(range(256)) * (1 << 14)  # 4 MiB
    ch.try_send(b"")
    ch.try_send(big)
    assert ch.try_recv() == b""
    assert ch.try_recv() == big


def test_a_receiver_that_receives_again_from_its_callback_gets_the_next_message():
    ch = chan(3)
    got = []

    def again(message):
        got.append(message)
        if len(got) < 3:
            ch.recv().addCallback(again)

    ch.recv().addCallback(again)
    for m in (b"1", b"2", b"3", b"4"):
        ch.try_send(m)
    assert got == [b"1", b"2", b"3"]
    assert ch.try_recv() == b"4"


# -- giving up -------------------------------------------------------------------------------

def test_cancelling_a_blocked_send_withdraws_its_message():
    ch = chan(0)
    s1, s2 = ch.send(b"1"), ch.send(b"2")
    s1.cancel()
    failure(s1, CancelledError)
    assert value(ch.recv()) == b"2"
    assert value(s2) is None
    with pytest.raises(errors.WouldBlock):
        ch.try_recv()
    assert ch.stat()["sent"] == ch.stat()["received"] == 1


def test_cancelling_an_accepted_send_changes_nothing():
    ch = chan(1)
    s = ch.send(b"kept")
    s.cancel()
    assert value(s) is None
    assert ch.try_recv() == b"kept"


def test_cancelling_a_waiting_receiver_takes_nothing():
    ch = chan(1)
    r1, r2 = ch.recv(), ch.recv()
    r1.cancel()
    failure(r1, CancelledError)
    ch.try_send(b"x")
    assert value(r2) == b"x"
    assert ch.stat()["receivers_waiting"] == 0


def test_a_receiver_that_has_gone_is_skipped_and_told_eintr():
    ch = chan(0)
    here = [True]
    gone = ch.recv(alive=lambda: here[0])
    stays = ch.recv(alive=lambda: True)
    here[0] = False
    ch.try_send(b"x")  # a live receiver is waiting: it would not block
    assert failure(gone, errors.Interrupted).errno == errno.EINTR
    assert value(stays) == b"x"


def test_trysend_on_cap0_does_not_count_receivers_that_have_gone():
    ch = chan(0)
    ch.recv(alive=lambda: False)
    with pytest.raises(errors.WouldBlock):
        ch.try_send(b"x")
    ws = ch.wait_send()
    assert pending(ws)
    ch.recv()
    assert value(ws) is None


def test_unrecv_puts_a_message_back_at_the_head():
    ch = chan(3)
    for m in (b"1", b"2", b"3"):
        ch.try_send(m)
    taken = ch.try_recv()
    assert ch.stat()["received"] == 1
    ch.unrecv(taken)
    st = ch.stat()
    assert st["received"] == 0 and st["len"] == 3 and st["sent"] == 3
    assert [ch.try_recv() for _ in range(3)] == [b"1", b"2", b"3"]


def test_unrecv_goes_to_a_waiting_receiver():
    ch = chan(0)
    s = ch.send(b"x")
    taken = ch.try_recv()
    assert value(s) is None
    r = ch.recv()
    assert pending(r)
    ch.unrecv(taken)
    assert value(r) == b"x"


# -- closing ---------------------------------------------------------------------------------

def test_close_drains_then_fails_with_epipe():
    ch = chan(3)
    ch.try_send(b"a")
    ch.try_send(b"b")
    ch.close()
    assert ch.stat()["closed"] is True
    assert value(ch.recv()) == b"a"
    assert ch.try_recv() == b"b"
    assert failure(ch.recv(), errors.Closed).errno == errno.EPIPE
    with pytest.raises(errors.Closed) as e:
        ch.try_recv()
    assert e.value.errno == errno.EPIPE


def test_close_fails_blocked_senders_and_their_messages_are_not_delivered():
    ch = chan(1)
    ch.try_send(b"in")
    blocked = ch.send(b"out")
    ch.close()
    assert failure(blocked, errors.Closed).errno == errno.EPIPE
    assert ch.try_recv() == b"in"
    with pytest.raises(errors.Closed):
        ch.try_recv()
    assert ch.stat()["sent"] == 1


def test_close_fails_rendezvous_senders():
    ch = chan(0)
    s = ch.send(b"x")
    ch.close()
    failure(s, errors.Closed)
    failure(ch.recv(), errors.Closed)


def test_close_wakes_waiting_receivers_with_epipe():
    ch = chan(2)
    rs = [ch.recv(), ch.recv()]
    ch.close()
    for r in rs:
        failure(r, errors.Closed)


def test_sends_after_close_fail_with_epipe():
    ch = chan(2)
    ch.close()
    assert failure(ch.send(b"x"), errors.Closed).errno == errno.EPIPE
    for op in (lambda: ch.try_send(b"x"), ch.check_send, ch.close, ch.check_close):
        with pytest.raises(errors.Closed) as e:
            op()
        assert e.value.errno == errno.EPIPE
    assert ch.stat()["sent"] == 0


def test_waits_fire_on_close_because_the_operation_would_not_block():
    ch = chan(0)
    ws, wr = ch.wait_send(), ch.wait_recv()
    assert pending(ws) and pending(wr)
    ch.close()
    assert value(ws) is None and value(wr) is None
    assert value(ch.wait_send()) is None and value(ch.wait_recv()) is None


def test_a_receiver_that_cancels_another_on_close_does_not_break_close():
    """Re-entrancy: close() fails every waiting receiver in one batch; if the first one's
    errback cancels the second (still queued in the batch), close() must still finish and
    the waiters behind it must still be told."""
    ch = chan(1)
    r1, r2 = ch.recv(), ch.recv()
    r1.addErrback(lambda f: r2.cancel() or f)
    ws = ch.wait_send()
    ch.close()  # raises AlreadyCalledError out of close() if the batch fires r2 again
    failure(r2, CancelledError, errors.Closed)
    assert value(ws) is None


def test_a_receiver_cancelled_from_a_callback_after_its_message_was_assigned_loses_nothing():
    """Re-entrancy: one send settles a receiver that has gone (EINTR) and hands the message to
    the next one in the same batch.  If the first one's errback cancels the second before the
    batch reaches it, the message must stay in the channel, not vanish."""
    ch = chan(0)
    here = [True]
    gone = ch.recv(alive=lambda: here[0])
    second = ch.recv()
    gone.addErrback(lambda f: second.cancel() or f)
    here[0] = False
    s = ch.send(b"x")  # raises AlreadyCalledError out of send() if the batch fires `second` again
    failure(gone, errors.Interrupted)
    told = []
    second.addBoth(told.append)
    if told[0] != b"x":  # cancelled in time: the message is still the channel's
        assert told[0].check(CancelledError)
        assert pending(s) or ch.try_recv() == b"x", "the message was lost"


# -- removal ---------------------------------------------------------------------------------

def test_remove_fails_every_waiter_with_enoent():
    ch = chan(0)
    s = ch.send(b"x")
    ws = ch.wait_recv()  # ready at once (a sender waits), so it has fired already
    other = chan(0)
    r, wr, wss = other.recv(), other.wait_recv(), Channel().wait_send()
    ch.remove()
    assert failure(s, errors.NotFound).errno == errno.ENOENT
    assert value(ws) is None
    other.remove()
    failure(r, errors.NotFound)
    failure(wr, errors.NotFound)
    assert pending(wss)


def test_a_removed_channel_refuses_everything_with_enoent():
    ch = chan(1)
    ch.try_send(b"x")
    ch.remove()
    ch.remove()  # idempotent
    failure(ch.send(b"y"), errors.NotFound)
    failure(ch.recv(), errors.NotFound)
    failure(ch.wait_send(), errors.NotFound)
    failure(ch.wait_recv(), errors.NotFound)
    for op in (lambda: ch.try_send(b"x"), ch.try_recv, ch.close, ch.check_cap,
               lambda: ch.set_cap(1)):
        with pytest.raises(errors.NotFound) as e:
            op()
        assert e.value.errno == errno.ENOENT
    ch.unrecv(b"late")  # a select giving back after removal: dropped quietly
    assert ch.stat()["len"] == 0


def test_removing_an_unmade_channel_fails_its_waiters():
    ch = Channel()
    ws, wr = ch.wait_send(), ch.wait_recv()
    ch.remove()
    failure(ws, errors.NotFound)
    failure(wr, errors.NotFound)


# -- waits -----------------------------------------------------------------------------------

def test_waits_do_not_take_anything():
    ch = chan(1)
    wr = ch.wait_recv()
    ch.try_send(b"x")
    assert value(wr) is None
    assert value(ch.wait_recv()) is None  # still there
    assert pending(ch.wait_send())         # full
    assert ch.try_recv() == b"x"


def test_a_cancelled_wait_leaves_the_others():
    ch = chan(1)
    w1, w2 = ch.wait_recv(), ch.wait_recv()
    w1.cancel()
    failure(w1, CancelledError)
    ch.try_send(b"x")
    assert value(w2) is None


def test_waitsend_on_cap0_fires_when_a_receiver_arrives():
    ch = chan(0)
    ws = ch.wait_send()
    assert pending(ws)
    ch.recv()
    assert value(ws) is None
    ch.try_ready_send()


# -- the property ----------------------------------------------------------------------------

OPS = ("send", "send", "try_send", "recv", "recv_alive", "recv_alive", "leave", "cancel_send",
       "cancel_recv", "try_recv", "hold", "unrecv", "wait_send", "wait_recv", "cancel_wait", "close",
       "offer", "offer", "confirm", "decline", "lost", "send_alive", "writer_leaves")


@settings(max_examples=1000, deadline=None)
@example(cap=0, steps=[("send", 0), ("send", 0), ("hold", 0), ("offer", 0), ("unrecv", 0), ("offer", 0),
                       ("decline", 0)], give_back_order=Random(0))  # a select gives its take back
# while the next is offered; declined, that one is its sender's again, behind the given-back one
@given(cap=st.integers(0, 4),
       steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16)), max_size=60),
       give_back_order=st.randoms(use_true_random=False))
def test_random_interleavings_deliver_exactly_once_in_order(cap, steps, give_back_order):
    run_steps(cap, steps, give_back_order)


HAND_OVER_OPS = ("send", "send_alive", "send_alive", "writer_leaves", "offer", "offer", "recv",
                 "recv_alive", "leave", "confirm", "decline", "lost", "cancel_send", "try_recv", "close",
                 "send_side", "offer_side")
SIDE = object()  # one connection from another host: a sender and a taker on it


@settings(max_examples=500, deadline=None)
@example(cap=1, steps=[("send", 0), ("send_alive", 0), ("writer_leaves", 0), ("recv", 0)],
         give_back_order=Random(0))  # a full buffer's room goes past a writer that left
@example(cap=0, steps=[("send_alive", 0), ("writer_leaves", 0), ("offer", 0)],
         give_back_order=Random(0))  # a rendezvous reader goes past a writer that left
@example(cap=2, steps=[("send", 0), ("send", 0), ("offer", 0), ("recv", 0), ("decline", 0)],
         give_back_order=Random(0))  # a declined message comes back first, ahead of the next
@example(cap=0, steps=[("send", 0), ("offer", 0), ("cancel_send", 0), ("lost", 0), ("recv", 0)],
         give_back_order=Random(0))  # a sender told "sent" mid-offer: a lost offer keeps it
@example(cap=0, steps=[("send_side", 0), ("offer_side", 0), ("decline", 0), ("recv", 0)],
         give_back_order=Random(0))  # answered alongside its offer, then declined: kept
@given(cap=st.integers(0, 3),
       steps=st.lists(st.tuples(st.sampled_from(HAND_OVER_OPS), st.integers(0, 1 << 16)), max_size=40),
       give_back_order=st.randoms(use_true_random=False))
def test_hand_overs_take_only_from_and_give_only_to_callers_still_there(cap, steps, give_back_order):
    """The same model, weighted to the edges: writers and readers that leave, offers confirmed,
    declined or cut off; nothing goes to a reader that left or comes from a writer that left,
    and a given-back message keeps its place."""
    run_steps(cap, steps, give_back_order)


def run_steps(cap, steps, give_back_order):
    """Senders (some of which leave), receivers (some of which leave), offers confirmed, declined
    or lost, cancels, try ops, a select's take and give-back, waits and a close, in any order:
    every accepted message is delivered exactly once, in order; nothing withdrawn or refused is
    ever delivered; nobody that left is handed a message or has one taken."""
    ch = chan(cap)
    model = ChannelModel(ch)
    flags: list[list] = []
    writers: list[bytes] = []
    held: list[bytes] = []  # taken by a would-be select that has not yet committed or aborted

    for op, n in steps:
        if op == "send":
            model.send(model.message())
        elif op == "try_send":
            model.try_send(model.message())
        elif op == "recv":
            model.recv()
        elif op == "recv_alive":
            flags.append([True])
            model.recv(alive=flags[-1])
        elif op == "leave" and flags:
            flags[n % len(flags)][0] = False
        elif op == "cancel_send" and model.sends:
            model.sends[n % len(model.sends)].cancel()
        elif op == "cancel_recv" and model.recvs:
            model.cancel_recv(model.recvs[n % len(model.recvs)][0])
        elif op == "try_recv":
            model.try_recv()
        elif op == "hold":
            m = model.try_recv()
            if m is not None:
                held.append(m)
        elif op == "unrecv" and held:
            model.unrecv(held.pop(n % len(held)))
        elif op == "wait_send":
            model.wait_send()
        elif op == "wait_recv":
            model.wait_recv()
        elif op == "cancel_wait" and (model.wait_sends or model.wait_recvs):
            waits = model.wait_sends + model.wait_recvs
            waits[n % len(waits)].cancel()
        elif op == "close" and not ch.closed:
            ch.close()
        elif op == "offer":
            flags.append([True])
            model.offer(alive=flags[-1])
        elif op in ("confirm", "decline", "lost"):
            model.settle(op)
        elif op == "send_alive":
            writers.append(model.message())
            model.send(writers[-1], alive=[True])
        elif op == "send_side":
            writers.append(model.message())
            model.send(writers[-1], alive=[True], side=SIDE)
        elif op == "offer_side":
            flags.append([True])
            model.offer(alive=flags[-1], side=SIDE)
        elif op == "writer_leaves" and writers:
            model.writer_leaves(writers[n % len(writers)])
        model.check()

    give_back_order.shuffle(held)
    for m in held:  # the selects that held them abort
        model.unrecv(m)
        model.check()
    model.finish()


# -- turns: writers on other hosts are woken only as many as could send ------------------

def test_a_full_channel_wakes_one_waiting_writer_per_free_slot():
    ch = chan(1)
    ch.send(b"fills")
    turns = [ch.wait_turn() for _ in range(5)]
    assert all(pending(t) for t in turns)
    assert ch.stat()["send_waits"] == 5
    value(ch.recv())
    assert [not pending(t) for t in turns] == [True, False, False, False, False]
    ch.try_send(b"first's")  # the woken writer sends ...
    ch.turn_over()           # ... and its turn is over: nobody else, the channel is full
    assert [pending(t) for t in turns[1:]] == [True] * 4


def test_a_woken_writer_that_gives_up_passes_its_turn_on():
    ch = chan(1)
    ch.send(b"fills")
    turns = [ch.wait_turn() for _ in range(3)]
    value(ch.recv())
    assert not pending(turns[0]) and pending(turns[1])
    ch.turn_over()  # gone without trying
    assert not pending(turns[1]) and pending(turns[2])


def test_a_rendezvous_wakes_one_writer_at_a_time_and_a_closed_channel_all():
    ch = chan(0)
    turns = [ch.wait_turn() for _ in range(3)]
    got = ch.recv()
    assert [pending(t) for t in turns] == [False, True, True]
    ch.try_send(b"m")
    ch.turn_over()
    assert value(got) == b"m" and [pending(t) for t in turns[1:]] == [True, True]
    ch.close()
    assert not any(pending(t) for t in turns)


def test_waiting_writers_fail_when_the_channel_is_removed():
    ch = chan(0)
    turn = ch.wait_turn()
    ch.remove()
    assert failure(turn, errors.NotFound)


def test_a_writer_that_stops_waiting_for_its_turn_after_others_were_woken_is_gone():
    """Its canceller must find it where it waits: before, a writer cancelled after an
    earlier one was woken stayed among the waiters, and waking it raised AlreadyCalledError
    in the middle of a hand-over, which left the channel stuck."""
    ch = chan(1)
    ch.send(b"fills")
    turns = [ch.wait_turn() for _ in range(3)]
    value(ch.recv())            # wakes the first
    turns[1].cancel()           # the second gives up
    failure(turns[1], CancelledError)
    ch.try_send(b"first's")
    ch.turn_over()
    value(ch.recv())            # room again: the third, not the one that left
    assert not pending(turns[2])
    assert ch.stat()["send_waits"] == 0


# -- offers sent ahead: several at once to one side that decides them as they arrive -------

AHEAD = 8  # the takers' limit in these tests: longer messages go one at a time


class _Taker:
    """One side (a connection from another host) whose whole reads take offers ahead, as
    `circuit.pb.remote_tree.RemoteHandle` does: it decides each offer in the order they
    arrived and, once it gave one back, gives back every later one of the same epoch."""

    def __init__(self, ch: Channel):
        self.ch = ch
        self.arrived: list = []   # offers not yet decided, in the order they came
        self.gave_back: dict = {}  # channel token -> epoch (RemoteHostTree.gave_back)
        self.waiting: list = []   # its receivers' Deferreds, not yet fired

    def receive(self):
        d = self.ch.offer(alive=lambda: True, side=self, ahead=AHEAD)
        self.waiting.append(d)
        d.addCallback(self._arrived, d)
        d.addErrback(lambda f: f.trap(CancelledError))
        return d

    def _arrived(self, offer, d):
        self.waiting.remove(d)
        self.arrived.append(offer)

    def decide(self, keep: bool, delivered: list | None = None):
        """The oldest offer: confirmed (its message delivered, noted in ``delivered`` as
        its reader has it) or given back."""
        offer = self.arrived.pop(0)
        token, epoch = offer.tag
        if self.gave_back.get(token) == epoch:
            keep = False  # the epoch rule
        if keep:
            if delivered is not None:
                delivered.append(offer.message)
            offer.confirm()
            return offer.message
        self.gave_back[token] = epoch
        offer.decline()
        return None

    def lose_all(self, rnd):
        """The connection went: every offer it had is lost, in whatever order."""
        lost, self.arrived = self.arrived, []
        rnd.shuffle(lost)
        for offer in lost:
            offer.lost()


def _three_out() -> tuple[Channel, _Taker]:
    """Four messages buffered, and a taker with three whole reads: a, b and c are out."""
    ch = chan(10)
    for m in (b"a", b"b", b"c", b"d"):
        ch.try_send(m)
    taker = _Taker(ch)
    for _ in range(3):
        taker.receive()
    return ch, taker


def test_one_side_has_several_whole_reads_answered_at_once():
    ch, taker = _three_out()
    assert [o.message for o in taker.arrived] == [b"a", b"b", b"c"]
    assert ch.stat()["handing_over"] == 3
    other = ch.offer(alive=lambda: True, side=object(), ahead=AHEAD)
    assert pending(other), "another side waits until those hand-overs settle"
    assert [taker.decide(True) for _ in range(3)] == [b"a", b"b", b"c"]
    assert value(other).message == b"d"


def test_offers_go_ahead_only_to_readers_that_decide_on_arrival_and_only_small_ones():
    ch = chan(10)
    for m in (b"a", b"b", b"c" * (AHEAD + 1), b"d"):
        ch.try_send(m)
    plain = [ch.offer(alive=lambda: True, side=SIDE) for _ in range(2)]
    assert not pending(plain[0]) and pending(plain[1]), "no ahead: one hand-over at a time"
    value(plain[0]).confirm()
    value(plain[1]).confirm()
    taker = _Taker(ch)
    taker.receive()
    taker.receive()
    assert [o.message for o in taker.arrived] == [b"c" * (AHEAD + 1)], "too long to go ahead"
    taker.decide(True)
    assert [o.message for o in taker.arrived] == [b"d"]


def test_a_message_given_back_brings_back_the_later_ones_of_its_epoch_in_their_order():
    ch, taker = _three_out()
    assert taker.decide(False) is None          # "a": its reader had gone
    late = taker.receive()
    assert pending(late), "nothing new goes out while the others of that epoch are out"
    assert taker.decide(True) is None           # "b": given back by the rule, though wanted
    assert taker.decide(True) is None           # "c" too
    assert [o.message for o in taker.arrived] == [b"a"], "then the oldest again, to the next reader"
    assert ch.stat()["len"] == 3 and ch.stat()["handing_over"] == 1


def test_offers_lost_with_their_connection_go_back_in_their_order_whatever_order_they_are_lost_in():
    ch, taker = _three_out()
    taker.lose_all(Random(3))
    assert [ch.try_recv() for _ in range(4)] == [b"a", b"b", b"c", b"d"]


AHEAD_OPS = ("send", "send", "try_send", "big", "receive", "receive", "receive", "keep", "keep",
             "keep", "give_back", "lose", "other", "plain", "cancel")


@settings(max_examples=600, deadline=None)
@example(cap=4, steps=["send", "send", "send", "receive", "receive", "receive", "give_back", "keep",
                       "receive", "keep", "keep", "keep"], rnd=Random(0))
@example(cap=0, steps=["receive", "try_send", "lose"], rnd=Random(0))  # a rendezvous, cut off
@example(cap=0, steps=["send", "send", "receive", "lose", "other", "send", "receive", "lose"],
         rnd=Random(0))  # a rendezvous message dropped, then more sent
@given(cap=st.integers(0, 4), steps=st.lists(st.sampled_from(AHEAD_OPS), max_size=60),
       rnd=st.randoms(use_true_random=False))
def test_offers_sent_ahead_deliver_exactly_once_in_order(cap, steps, rnd):
    """One side takes offers ahead (some kept, some given back, all of them lost with the
    connection at times), beside readers of other sides and plain receives: every message
    sent is delivered once, and in the order sent."""
    ch = chan(cap)
    taker = _Taker(ch)
    sent: list[bytes] = []
    delivered: list[bytes] = []
    others: list = []
    receivers: list = []

    made = iter(range(10_000))

    def message(size: int = 1) -> bytes:
        # Numbered in sending order, never twice: a message dropped from `sent` (unsent)
        # must not give its number to the next one.
        m = b"%d:" % next(made)
        sent.append(m + b"x" * max(0, size - len(m)))
        return sent[-1]

    def unsent(f, m):  # a rendezvous hand-over lost with its connection: the send's outcome
        f.trap(errors.HostDown)  # is unknown, and the message is dropped (Channel._lost)
        assert m not in delivered
        sent.remove(m)

    def other_arrived(offer):
        delivered.append(offer.message)  # another host's reader, which keeps it
        offer.confirm()

    for op in steps:
        if op in ("send", "big"):
            m = message(AHEAD + 1 if op == "big" else 1)
            ch.send(m).addErrback(unsent, m)
        elif op == "try_send":
            m = message()
            try:
                ch.try_send(m).addErrback(unsent, m)
            except errors.WouldBlock:
                sent.pop()
        elif op == "receive":
            receivers.append(taker.receive())
        elif op in ("keep", "give_back") and taker.arrived:
            taker.decide(op == "keep", delivered)
        elif op == "lose":
            taker.lose_all(rnd)
        elif op == "other":
            others.append(ch.offer(alive=lambda: True, side=object(), ahead=AHEAD)
                          .addCallback(other_arrived))
        elif op == "plain":
            others.append(ch.recv().addCallback(delivered.append))
        elif op == "cancel" and taker.waiting:
            taker.waiting[rnd.randrange(len(taker.waiting))].cancel()
        st_ = ch.stat()
        assert st_["handing_over"] <= max(1, len(taker.arrived))
        assert delivered == sorted(delivered, key=lambda m: int(m.split(b":")[0])), "out of order"

    # The end: every reader keeps what it has and a last reader drains the channel.
    for d in taker.waiting[:]:
        d.cancel()
    while True:
        if taker.arrived:
            taker.decide(True, delivered)
            continue
        try:
            delivered.append(ch.try_recv())
        except errors.WouldBlock:
            break
    for d in others:
        d.addErrback(lambda f: f.trap(CancelledError))
        d.cancel()
    assert delivered == sent, "every message once, in the order sent"


def test_a_select_giving_back_what_it_held_while_offers_come_back_keeps_the_order():
    """A select took the oldest message (held, not committed) before offers went ahead; one
    comes back, the select gives its message back, then the rest come back: all in order."""
    ch = chan(10)
    for m in (b"h", b"a", b"b", b"c"):
        ch.try_send(m)
    held = ch.try_recv()             # a select's take
    taker = _Taker(ch)
    for _ in range(3):
        taker.receive()
    assert taker.decide(False) is None   # "a" comes back
    ch.unrecv(held)                      # the select aborts
    assert taker.decide(True) is None    # "b" and "c" come back by the epoch rule
    assert taker.decide(True) is None
    for d in taker.waiting[:]:
        d.cancel()
    while taker.arrived:
        taker.arrived.pop(0).decline()
    assert [ch.try_recv() for _ in range(4)] == [b"h", b"a", b"b", b"c"]
