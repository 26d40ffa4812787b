"""The select: wait for the first of several clauses and commit exactly that one (SPEC 3, select/)."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings, strategies as st
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from circuit import errors
from circuit.core.channel import Channel
from circuit.core.select import ABORTED, ARMED, COMMITTED, Clause, Select
from core_model import ChannelModel, failure, pending, value


def chan(cap: int) -> Channel:
    ch = Channel()
    ch.set_cap(cap)
    return ch


# The clauses as circuit/tree/chan_files.py builds them for recv and send.
def recv_clause(ch: Channel, name: str = "recv") -> Clause:
    return Clause("r", name, ready=ch.wait_recv, commit=ch.try_recv, undo=ch.unrecv)


def send_clause(ch: Channel, name: str = "send") -> Clause:
    def can_send() -> bytes:
        ch.try_ready_send()
        return b""
    return Clause("w", name, ready=ch.wait_send, commit=can_send, write=ch.send)


def armed(*clauses: Clause) -> Select:
    s = Select()
    s.arm(list(clauses))
    return s


# -- arming ------------------------------------------------------------------------------------

def test_a_select_wants_at_least_one_clause():
    s = Select()
    with pytest.raises(errors.Invalid) as e:
        s.arm([])
    assert e.value.errno == errno.EINVAL
    assert s.state == "idle"


def test_a_select_is_armed_once():
    s = armed(recv_clause(chan(1)))
    with pytest.raises(errors.Busy) as e:
        s.arm([recv_clause(chan(1))])
    assert e.value.errno == errno.EBUSY
    s.abort()
    with pytest.raises(errors.Busy):
        s.arm([recv_clause(chan(1))])


def test_stat_says_state_clauses_and_the_committed_one():
    a, b = chan(1), chan(1)
    s = armed(recv_clause(a, "a/recv"), send_clause(b, "b/send"))
    assert s.stat()["state"] == COMMITTED  # b has room: the send clause is ready at once
    assert s.stat() == {"state": "committed", "clause": 1,
                        "clauses": [{"op": "r", "file": "a/recv"}, {"op": "w", "file": "b/send"}]}
    assert Select().stat() == {"state": "idle", "clauses": []}


# -- committing ----------------------------------------------------------------------------------

def test_a_ready_recv_clause_commits_at_once_and_takes_one_message():
    a, b = chan(2), chan(2)
    b.try_send(b"b1")
    b.try_send(b"b2")
    s = armed(recv_clause(a), recv_clause(b))
    outcome = value(s.wait())
    assert (outcome.index, outcome.value, outcome.error) == (1, b"b1", None)
    assert b.stat()["len"] == 1 and b.stat()["received"] == 1
    a.try_send(b"a1")  # too late: the select has committed
    assert a.try_recv() == b"a1"


def test_the_first_clause_to_become_ready_commits_and_the_others_take_nothing():
    a, b = chan(0), chan(1)
    s = armed(recv_clause(a), recv_clause(b))
    w = s.wait()
    assert pending(w) and s.state == ARMED
    b.try_send(b"x")
    assert value(w).index == 1 and value(w).value == b"x"
    sa = a.send(b"for someone else")
    assert pending(sa)  # the select did not take it
    assert value(a.recv()) == b"for someone else"


def test_every_wait_gets_the_outcome_and_later_waits_too():
    ch = chan(1)
    s = armed(recv_clause(ch))
    ws = [s.wait(), s.wait()]
    ch.try_send(b"x")
    assert [value(w).value for w in ws] == [b"x", b"x"]
    assert value(s.wait()).value == b"x"


def test_two_clauses_on_one_channel_commit_once():
    ch = chan(2)
    s = armed(recv_clause(ch, "1"), recv_clause(ch, "2"), Clause(
        "r", "waitrecv", ready=ch.wait_recv, commit=lambda: ch.try_ready_recv() or b""))
    w = s.wait()
    ch.try_send(b"1")
    ch.try_send(b"2")
    assert value(w).index == 0 and value(w).value == b"1"
    assert ch.try_recv() == b"2"


def test_two_selects_racing_for_one_message_commit_one_and_rearm_the_other():
    ch = chan(1)
    s1, s2 = armed(recv_clause(ch)), armed(recv_clause(ch))
    ch.try_send(b"first")
    assert s1.state == COMMITTED and value(s1.wait()).value == b"first"
    assert s2.state == ARMED  # woken too, beaten to it, waiting again
    ch.try_send(b"second")
    assert value(s2.wait()).value == b"second"


def test_a_send_clause_on_cap0_commits_when_a_receiver_waits_then_writes():
    ch = chan(0)
    s = armed(send_clause(ch))
    assert s.state == ARMED
    r = ch.recv()
    outcome = value(s.wait())
    assert outcome.index == 0 and outcome.value == b""
    assert pending(r)  # the commit took nothing and gave nothing
    sent = s.clauses[0].write(b"hello")
    assert value(sent) is None and value(r) == b"hello"


def test_a_recv_clause_on_a_closed_drained_channel_commits_with_epipe():
    ch = chan(1)
    s = armed(recv_clause(ch))
    ch.close()
    outcome = value(s.wait())
    assert outcome.value is None and isinstance(outcome.error, errors.Closed)
    assert outcome.error.errno == errno.EPIPE
    assert s.stat()["error"] == outcome.error.message


def test_removing_a_channel_commits_its_clause_with_enoent():
    ch, other = chan(1), chan(1)
    s = armed(recv_clause(ch), recv_clause(other))
    ch.remove()
    outcome = value(s.wait())
    assert outcome.index == 0 and isinstance(outcome.error, errors.NotFound)


def test_a_clause_on_an_unmade_channel_waits_for_its_cap():
    ch = Channel()
    s = armed(send_clause(ch))
    assert s.state == ARMED
    ch.set_cap(1)
    assert value(s.wait()).index == 0


def test_an_unexpected_commit_error_becomes_the_outcome():
    def boom():
        raise ValueError("boom")
    s = armed(Clause("r", "odd", ready=lambda: succeed(None), commit=boom))
    outcome = value(s.wait())
    assert isinstance(outcome.error, errors.CircuitError) and "boom" in outcome.error.message


def test_a_clause_whose_wait_is_cancelled_from_outside_stays_quiet():
    d = Deferred()
    s = armed(Clause("r", "x", ready=lambda: d, commit=lambda: b"never"))
    d.cancel()
    assert s.state == ARMED and pending(s.wait())


def test_a_commit_leaves_no_waits_behind_on_the_other_clauses():
    """Clause 0 is ready when armed and commits at once: clause 1's wait must not be left
    registered (it would sit in the idle channel's waiters until the select is removed)."""
    ready = chan(1)
    ready.try_send(b"x")
    made: list[Deferred] = []

    def idle_ready():
        made.append(Deferred())
        return made[-1]

    s = armed(recv_clause(ready), Clause("r", "idle", ready=idle_ready, commit=lambda: b""))
    assert s.state == COMMITTED
    assert all(not pending(d) for d in made), "a wait was left armed after the commit"


# -- aborting ------------------------------------------------------------------------------------

def test_abort_before_a_commit_fails_wait_with_ecanceled_and_takes_nothing():
    ch = chan(1)
    s = armed(recv_clause(ch), send_clause(chan(0)))
    w = s.wait()
    s.abort()
    assert failure(w, errors.Aborted).errno == errno.ECANCELED
    assert failure(s.wait(), errors.Aborted).errno == errno.ECANCELED
    ch.try_send(b"x")
    assert ch.try_recv() == b"x"
    assert s.state == ABORTED
    s.abort()  # idempotent


def test_abort_after_a_recv_commit_gives_the_message_back_at_the_head():
    ch = chan(3)
    for m in (b"1", b"2"):
        ch.try_send(m)
    s = armed(recv_clause(ch))
    assert value(s.wait()).value == b"1"
    ch.try_send(b"3")
    s.abort()
    assert s.state == ABORTED and s.outcome is None
    assert [ch.try_recv() for _ in range(3)] == [b"1", b"2", b"3"]
    assert ch.stat()["sent"] == ch.stat()["received"] == 3


def test_abort_after_the_committed_message_was_read_gives_nothing_back():
    ch = chan(1)
    ch.try_send(b"1")
    s = armed(recv_clause(ch))
    value(s.wait()).consumed = True
    s.abort()
    with pytest.raises(errors.WouldBlock):
        ch.try_recv()


def test_abort_while_a_commit_is_in_flight_gives_back_what_it_then_takes():
    in_flight: Deferred = Deferred()
    given_back = []
    s = armed(Clause("r", "slow", ready=lambda: succeed(None), commit=lambda: in_flight,
                     undo=given_back.append))
    w = s.wait()
    s.abort()
    failure(w, errors.Aborted)
    in_flight.callback(b"late")
    assert given_back == [b"late"] and s.state == ABORTED


def test_an_aborted_select_leaves_no_waits_on_its_channels():
    a, b = chan(0), chan(0)
    s = armed(recv_clause(a), send_clause(b))
    s.abort()
    sa = a.send(b"x")
    assert pending(sa)  # nobody is receiving: the select's wait did not count as a receiver
    with pytest.raises(errors.WouldBlock):
        b.try_send(b"y")
    assert value(a.recv()) == b"x"


# -- the property ----------------------------------------------------------------------------------

OPS = ("send", "send", "try_send", "recv", "try_recv", "cancel_send", "cancel_recv", "wait",
       "abort", "consume", "close", "race_recv", "race_recv", "race_send")


@settings(max_examples=250, deadline=None)
@given(caps=st.lists(st.integers(0, 2), min_size=1, max_size=3),
       clauses=st.lists(st.tuples(st.sampled_from("rw"), st.integers(0, 2)), min_size=1, max_size=4),
       steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16)), max_size=40),
       arm_at=st.integers(0, 40),
       end_by_consuming=st.booleans())
def test_a_select_commits_at_most_once_and_an_aborted_one_keeps_nothing(
        caps, clauses, steps, arm_at, end_by_consuming):
    models = [ChannelModel(chan(cap)) for cap in caps]
    sel = Select()
    commits: list[int] = []     # clauses whose commit ran to an answer (not EAGAIN)
    holding: list = []          # [(model, message)] the select took and has neither given back nor had read
    waits: list[Deferred] = []

    def make(i: int, op: str, model: ChannelModel) -> Clause:
        ch = model.ch

        def committed() -> None:
            assert sel.state == ARMED, "a clause committed outside the armed state"
            commits.append(i)

        if op == "r":
            def take():
                try:
                    message = ch.try_recv()
                except errors.WouldBlock:
                    raise
                except errors.CircuitError:
                    committed()
                    raise
                committed()
                model.take(message)
                holding.append((model, message))
                return message

            def undo(message):
                holding.remove((model, message))
                model.unrecv(message)
            return Clause("r", f"{i}/recv", ready=ch.wait_recv, commit=take, undo=undo)

        def can_send():
            ch.try_ready_send()
            committed()
            return b""
        return Clause("w", f"{i}/send", ready=ch.wait_send, commit=can_send,
                      write=lambda message: model.send(message))

    made = [make(i, op, models[c % len(models)]) for i, (op, c) in enumerate(clauses)]

    def check() -> None:
        assert len(commits) <= 1, f"clauses {commits} all committed"
        assert len(holding) <= 1
        if sel.state == ARMED:
            assert not commits and not holding
            assert all(pending(w) for w in waits)
            for clause, (op, c) in zip(made, clauses):  # nothing it waits for is there
                ch = models[c % len(models)].ch
                try:
                    (ch.try_ready_recv if op == "r" else ch.try_ready_send)()
                except errors.WouldBlock:
                    continue
                except errors.CircuitError:
                    pass
                raise AssertionError(f"clause {clause.file} could proceed, yet the select waits")
        elif sel.state == COMMITTED:
            outcome = sel.outcome
            assert commits == [outcome.index]
            if made[outcome.index].op == "r" and outcome.error is None and not outcome.consumed:
                assert [m for _, m in holding] == [outcome.value]  # nobody else has it
            for w in waits:
                assert value(w) is sel.outcome
        elif sel.state == ABORTED:
            assert not holding, "an aborted select kept a message"
            for w in waits:  # told of the commit before the abort, or of the abort
                told = value(w)
                assert told == "aborted" or [told.index] == commits
        for model in models:
            model.check()

    def consume() -> None:
        outcome = sel.outcome
        if sel.state != COMMITTED or outcome.consumed:
            return
        outcome.consumed = True
        clause = sel.clauses[outcome.index]
        if outcome.error is not None:
            return
        if clause.write is not None:
            model = models[clauses[outcome.index][1] % len(models)]
            clause.write(model.message())
        elif holding:
            holding.clear()  # read.N was read: the message reached its reader

    def told_aborted(f: Failure) -> str:
        f.trap(errors.Aborted)
        assert f.value.errno == errno.ECANCELED
        return "aborted"

    arm_at %= len(steps) + 1
    for step, (op, n) in enumerate(steps):
        if step == arm_at:
            sel.arm(made)
            check()
        model = models[n % len(models)]
        if op == "send":
            model.send(model.message())
        elif op == "try_send":
            model.try_send(model.message())
        elif op == "recv":
            model.recv()
        elif op == "try_recv":
            model.try_recv()
        elif op == "race_recv":  # other select-like takers, woken in the same batch as this one
            for m in models:
                m.wait_recv().addCallback(lambda _, m=m: m.try_recv())
        elif op == "race_send":
            for m in models:
                m.wait_send().addCallback(lambda _, m=m: m.try_send(m.message()))
        elif op == "cancel_send" and model.sends:
            model.sends[n % len(model.sends)].cancel()
        elif op == "cancel_recv" and model.recvs:
            model.cancel_recv(model.recvs[n % len(model.recvs)][0])
        elif op == "wait" and sel.state != "idle":
            waits.append(sel.wait().addErrback(told_aborted))
        elif op == "abort" and sel.state != "idle":
            sel.abort()
        elif op == "consume":
            consume()
        elif op == "close" and not model.ch.closed:
            model.ch.close()
        check()

    if sel.state == "idle":
        sel.arm(made)
        check()
    for _ in range(2):  # make every clause ready (twice: a racer may take the first round)
        if sel.state != ARMED:
            break
        for op, c in clauses:
            model = models[c % len(models)]
            if op == "r":
                model.send(model.message())
            else:
                model.recv()
            check()
    if end_by_consuming:
        consume()
    sel.abort()
    check()
    assert not holding
    for model in models:
        model.finish()
