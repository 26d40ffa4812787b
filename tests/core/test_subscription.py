"""A subscription keeps membership events until read, each handed over exactly once, in order."""
from __future__ import annotations

import json

import pytest

from circuit import errors
from circuit.core.events import EventHub
from circuit.core.subscription import Subscription, parse_topics
from core_model import failure, pending, value


def joined(n: int) -> dict:
    return {"joined": f"X{n:016x}", "url": f"circuit://10.0.0.{n}:7700/X{n:016x}"}


def left(n: int, reason: str = "left") -> dict:
    return {"left": f"X{n:016x}", "reason": reason}


def made(*topics: str, cap: int = 1000):
    hub = EventHub()
    sub = Subscription(hub, cap=cap)
    if topics:
        sub.set_on(frozenset(topics))
    return hub, sub


def read(sub) -> dict:
    offer = value(sub.offer())
    offer.confirm()
    return json.loads(offer.message)


def test_events_wait_in_order_until_read_and_only_its_topics():
    hub, sub = made("join")
    for n in range(3):
        hub.publish(joined(n))
        hub.publish(left(n))
    assert sub.stat()["len"] == 3
    assert [read(sub) for _ in range(3)] == [joined(0), joined(1), joined(2)]
    assert pending(sub.offer())


def test_events_from_the_moment_it_was_made_not_from_on():
    hub, sub = made()
    hub.publish(left(1, "failed"))
    hub.publish(joined(2))
    sub.set_on(frozenset({"leave"}))
    assert read(sub) == left(1, "failed") and sub.stat()["len"] == 0


def test_both_topics():
    hub, sub = made("join", "leave")
    hub.publish(joined(1))
    hub.publish(left(1))
    assert [read(sub), read(sub)] == [joined(1), left(1)]


def test_a_blocked_reader_gets_the_next_event():
    hub, sub = made("join")
    d = sub.offer()
    assert pending(d) and sub.stat()["receivers_waiting"] == 1
    hub.publish(joined(7))
    offer = value(d)
    offer.confirm()
    assert json.loads(offer.message) == joined(7) and sub.stat()["received"] == 1


def test_a_reader_that_gave_up_takes_nothing():
    hub, sub = made("join")
    sub.offer().cancel()  # Ctrl-C while blocked
    gone = sub.offer(alive=lambda: False)  # gone by the time the event arrives
    hub.publish(joined(1))
    failure(gone, errors.Interrupted)
    assert read(sub) == joined(1)


def test_an_event_given_back_is_the_next_one_read():
    hub, sub = made("join")
    hub.publish(joined(1))
    hub.publish(joined(2))
    offer = value(sub.offer())
    other = sub.offer()
    assert pending(other)  # one hand-over at a time: order is kept
    offer.decline()  # its reader left before it had it
    again = value(other)
    assert json.loads(again.message) == joined(1)
    again.confirm()
    assert read(sub) == joined(2)
    assert sub.stat()["len"] == 0 and sub.stat()["received"] == 2


def test_a_hand_over_cut_off_puts_the_event_back():
    hub, sub = made("leave")
    hub.publish(left(1, "failed"))
    value(sub.offer()).lost()  # the link to the reader's host failed: it may have it, or not
    assert read(sub) == left(1, "failed")  # a duplicate rather than a loss


def test_a_full_backlog_drops_the_oldest_and_counts_it():
    hub, sub = made("join", cap=3)
    for n in range(5):
        hub.publish(joined(n))
    stat = sub.stat()
    assert (stat["len"], stat["dropped"], stat["heard"]) == (3, 2, 5)
    assert [read(sub) for _ in range(3)] == [joined(2), joined(3), joined(4)]


def test_a_select_clause_takes_and_gives_back():
    hub, sub = made("leave")
    ready = sub.wait_recv()
    assert pending(ready)
    hub.publish(left(1))
    value(ready)
    line = sub.try_recv()
    with pytest.raises(errors.WouldBlock):
        sub.try_recv()
    sub.unrecv(line)  # the select was aborted
    assert read(sub) == left(1)


def test_refusals():
    hub, sub = made()
    failure(sub.offer(), errors.Invalid)  # no topic yet
    for text in ("", "joins", "join join", "join, leave, x"):
        with pytest.raises(errors.Invalid):
            parse_topics(text)
    assert parse_topics("leave,join") == frozenset({"join", "leave"})
    sub.set_on(parse_topics("join"))
    with pytest.raises(errors.Busy):
        sub.set_on(parse_topics("leave"))
    waiting = sub.offer()
    sub.remove()
    failure(waiting, errors.NotFound)
    failure(sub.offer(), errors.NotFound)
    hub.publish(joined(1))  # no longer heard
    assert sub.stat()["heard"] == 0
