"""One host's elements by kind and name, its identity and its membership events (SPEC 3, sys/)."""
from __future__ import annotations

import errno
import json

import pytest

from circuit import errors
from circuit.core.channel import Channel
from circuit.core.events import EventHub
from circuit.core.host import Host, check_name, is_host_id, new_host_id
from circuit.core.process import Process
from circuit.core.select import ABORTED, Clause, Select
from core_model import failure, pending, value


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def host(**kw) -> Host:
    return Host(reactor=None, environ={"PATH": "/bin"}, clock=Clock(), **kw)


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "A", "0", "charlie", "c-2", "c_2", "a.b", "a..", "-x", "_x",
                                  "x" * 64, "Z9._-"])
def test_good_names(name):
    check_name(name)
    assert isinstance(host().make("chan", name), Channel)


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "x" * 65, "a b", "a/b", "a\n", "\na",
                                  "é", "a:b", "a*", "a\x00", "日本"])
def test_bad_names_are_einval(name):
    h = host()
    with pytest.raises(errors.Invalid) as e:
        h.make("chan", name)
    assert e.value.errno == errno.EINVAL
    assert h.elements["chan"] == {}


# -- making, finding, removing -------------------------------------------------------------------

def test_make_gives_each_kind_its_element():
    h = host()
    assert isinstance(h.make("chan", "c"), Channel)
    assert isinstance(h.make("proc", "p"), Process)
    assert isinstance(h.make("select", "s"), Select)
    assert h.get("chan", "c") is h.elements["chan"]["c"]
    assert h.make("proc", "p2").inherited_env == {"PATH": "/bin"}


def test_a_name_is_made_once_per_kind():
    h = host()
    c = h.make("chan", "x")
    with pytest.raises(errors.Exists) as e:
        h.make("chan", "x")
    assert e.value.errno == errno.EEXIST
    assert h.get("chan", "x") is c
    h.make("proc", "x")  # another kind: another table
    h.make("select", "x")


def test_unknown_kinds_and_names_are_enoent():
    h = host()
    for op in (lambda: h.make("valve", "x"), lambda: h.get("valve", "x"), lambda: h.get("chan", "x"),
               lambda: h.remove("chan", "x")):
        with pytest.raises(errors.NotFound) as e:
            op()
        assert e.value.errno == errno.ENOENT


def test_removing_a_channel_fails_its_waiters_and_frees_the_name():
    h = host()
    seen = []
    h.on_removed.append(lambda kind, name: seen.append((kind, name)))
    ch = h.make("chan", "c")
    ch.set_cap(0)
    r = ch.recv()
    h.remove("chan", "c")
    assert failure(r, errors.NotFound).errno == errno.ENOENT
    assert seen == [("chan", "c")]
    with pytest.raises(errors.NotFound):
        h.get("chan", "c")
    assert h.make("chan", "c") is not ch


def test_removing_a_select_aborts_it():
    h = host()
    sel = h.make("select", "s")
    ch = Channel()
    ch.set_cap(1)
    sel.arm([Clause("r", "c/recv", ready=ch.wait_recv, commit=ch.try_recv, undo=ch.unrecv)])
    w = sel.wait()
    h.remove("select", "s")
    assert sel.state == ABORTED
    failure(w, errors.Aborted)
    ch.try_send(b"x")
    assert ch.try_recv() == b"x"  # the removed select took nothing


def test_removing_a_process_that_never_ran():
    h = host()
    p = h.make("proc", "p")
    w = p.wait_exit()
    h.remove("proc", "p")
    failure(w, errors.NotFound)
    assert h.stat()["elements"]["proc"] == 0


# -- identity and stat ----------------------------------------------------------------------------

def test_host_ids():
    for _ in range(20):
        assert is_host_id(new_host_id())
    assert len({new_host_id() for _ in range(20)}) == 20
    for bad in ("", "X", "x0123456789abcdef", "X0123456789ABCDEF", "X0123456789abcde",
                "X0123456789abcdef0", "X0123456789abcdef\n"):
        assert not is_host_id(bad)
    assert is_host_id("X0123456789abcdef")


def test_a_host_keeps_the_id_it_is_given():
    assert host(host_id="X0123456789abcdef").id == "X0123456789abcdef"
    assert is_host_id(host().id)


def test_stat_counts_elements_and_measures_uptime():
    clock = Clock()
    h = Host(reactor=None, host_id="X0123456789abcdef", url="tcp://h:1", clock=clock, environ={})
    h.make("chan", "a")
    h.make("chan", "b")
    h.make("select", "s")
    clock.now += 12.3456
    st = h.stat()
    assert st["id"] == "X0123456789abcdef" and st["url"] == "tcp://h:1"
    assert st["uptime"] == 12.346
    assert st["elements"] == {"proc": 0, "chan": 2, "select": 1, "dns": 0, "subs": 0}
    assert st["load"] is None or len(st["load"]) == 3
    json.dumps(st)


# -- events ------------------------------------------------------------------------------------

def test_events_reach_subscribers_from_the_moment_they_subscribed():
    hub = EventHub()
    hub.publish({"joined": "Xearly"})
    sub = hub.subscribe()
    r = sub.read(0, 1000)
    assert pending(r)
    hub.publish({"joined": "X1"})
    line = value(r)
    assert json.loads(line) == {"joined": "X1"} and line.endswith(b"\n")
    hub.publish({"left": "X1", "reason": "gone"})
    rest = value(sub.read(len(line), 1000))
    assert json.loads(rest) == {"left": "X1", "reason": "gone"}
    assert value(sub.read(0, 5)) == line[:5]


def test_each_subscriber_reads_its_own_stream_and_a_closed_one_hears_no_more():
    hub = EventHub()
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish({"joined": "X1"})
    b.close()
    hub.publish({"joined": "X2"})
    assert value(a.read(0, 1000)).count(b"\n") == 2
    assert value(b.read(0, 1000)).count(b"\n") == 1
    assert pending(b.read(1000, 10))
