"""The whole tree from / (tree/circuit.py) and a connection's open files (tree/session.py),
over a real LocalHostTree, with no view: what every view gets without writing it again."""
from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
from twisted.internet.defer import CancelledError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from core_model import failure, pending, value  # noqa: E402

from circuit import errors  # noqa: E402
from circuit.core.host import Host  # noqa: E402
from circuit.interfaces import OpenFlags  # noqa: E402
from circuit.tree.circuit import Circuit  # noqa: E402
from circuit.tree.handles import hand_over  # noqa: E402
from circuit.tree.local import LocalHostTree  # noqa: E402
from circuit.tree.session import Session  # noqa: E402

READ, WRITE = OpenFlags(read=True), OpenFlags(read=False, write=True, truncate=True)


class Caller:
    def __init__(self):
        self.here = True

    def alive(self) -> bool:
        return self.here


@pytest.fixture
def circuit(tmp_path):
    c = Circuit(started=1.0)
    tree = LocalHostTree(Host(reactor=None, environ={"PATH": "/bin"}), str(tmp_path / "fs"), c)
    c.add_host(tree, local=True)
    value(c.mkdir((tree.host_id, "dc", "chan", "c")))
    return c


def _me(c: Circuit) -> str:
    return c.host_ids()[0]


def _send(c, session, text: bytes):
    fh = value(session.open((_me(c), "dc", "chan", "c", "send"), WRITE, Caller()))
    h = session.file(fh).handle
    value(h.write(0, text))
    return h.flush(), fh


def test_the_root_lists_hosts_and_refuses_to_make_or_unmake_them(circuit):
    me = _me(circuit)
    assert [name for name, _ in value(circuit.listdir(()))] == [me]
    assert value(circuit.getattr(())).kind == "dir"
    for d, code in [(circuit.mkdir(("X0123456789abcdef",)), errno.EACCES),
                    (circuit.rmdir((me,)), errno.EACCES),
                    (circuit.unlink((me,)), errno.EACCES),
                    (circuit.open((me,), READ, Caller()), errno.EISDIR),
                    (circuit.open(("made",), OpenFlags(create=True), Caller()), errno.EACCES),
                    (circuit.rename((me, "fs", "a"), ("X0123456789abcdef", "fs", "a")), errno.EXDEV),
                    (circuit.setattr(()), errno.EPERM),
                    (circuit.getattr(("X0123456789abcdef",)), errno.ENOENT)]:
        assert failure(d, errors.CircuitError).errno == code
    assert circuit.resolve("../../x/./y", ("a", "b")) == ("x", "y")
    assert circuit.resolve("/..", ()) == ()


def test_a_session_reads_through_the_one_hand_over_rule(circuit):
    session = Session(circuit)
    value(circuit.open((_me(circuit), "dc", "chan", "c", "cap"), WRITE, Caller()).addCallback(
        lambda h: h.write(0, b"1").addCallback(lambda _: h.flush())))
    reader, gone = Caller(), Caller()
    for who in (gone, reader):
        fh = value(session.open((_me(circuit), "dc", "chan", "c", "recv"), READ, who))
        f = session.file(fh)
        got = f.handle.read(0, 100)
        if who is gone:
            sent, _ = _send(circuit, session, b"hello")
            assert value(sent) is None and value(got) == b"hello"
            gone.here = False  # it leaves as the bytes would reach it
            with pytest.raises(errors.Interrupted):
                hand_over(f.handle, f.caller)
        else:
            assert value(got) == b"hello"  # given back, and first in line again
            hand_over(f.handle, f.caller)
        value(session.release(fh))
    with pytest.raises(errors.BadFile):
        session.file(fh)


def test_closing_a_session_cancels_its_waits_and_gives_back_what_it_held(circuit):
    me = _me(circuit)
    recv = (me, "dc", "chan", "c", "recv")
    value(circuit.open((me, "dc", "chan", "c", "cap"), WRITE, Caller()).addCallback(
        lambda h: h.write(0, b"1").addCallback(lambda _: h.flush())))
    session, other = Session(circuit), Session(circuit)
    value(_send(circuit, other, b"kept")[0])
    held = session.file(value(session.open(recv, READ, Caller()))).handle.read(0, 10)
    assert value(held) == b"kept"  # taken, but its reader never had it (no hand-over yet)
    waiting = session.track(session.file(value(session.open(recv, READ, Caller()))).handle.read(0, 10))
    assert pending(waiting)
    session.close()
    failure(waiting, CancelledError)
    fh = value(other.open(recv, READ, Caller()))
    assert value(other.file(fh).handle.read(0, 10)) == b"kept"  # given back when the session went


def test_paths_users_write_through_any_hosts_mount(circuit):
    """A select clause or run path may name a file through any host's mount: the tree
    path starts at its first host ID, wherever the writer's view is mounted."""
    me = _me(circuit)
    for text, relative_to in [(f"/mnt/elsewhere/{me}/dc/chan/c/recv", ()),
                              (f"/{me}/dc/chan/c/recv", ()), ("chan/c/recv", (me, "dc")),
                              (f"../../{me}/dc/chan/c/recv", (me, "dc"))]:
        assert circuit.tree_path(text, relative_to) == (me, "dc", "chan", "c", "recv")
    with pytest.raises(errors.Invalid):
        circuit.tree_path("/usr/bin/ls", ())


def test_a_session_holds_a_bounded_number_of_files(circuit):
    session = Session(circuit, max_files=2)
    path = (_me(circuit), "dc", "chan", "c", "stat")
    first = value(session.open(path, READ, Caller()))
    value(session.open(path, READ, Caller()))
    assert failure(session.open(path, READ, Caller()), errors.TooMany).errno == errno.EMFILE
    value(session.release(first))
    value(session.open(path, READ, Caller()))  # room again


def test_a_write_past_the_bound_is_refused_and_delivers_nothing(circuit):
    from circuit.tree.handles import MAX_CONTROL
    session = Session(circuit)
    me = _me(circuit)
    fh = value(session.open((me, "dc", "chan", "c", "cap"), WRITE, Caller()))
    h = session.file(fh).handle
    value(h.write(0, b"1"))
    assert failure(h.write(1, b" " * MAX_CONTROL), errors.TooBig).errno == errno.E2BIG
    failure(h.write(2, b"2"), errors.TooBig)  # the text's tail is refused too
    failure(h.flush(), errors.TooBig)  # close(2) hears it; nothing is delivered
    value(session.release(fh))
    assert value(value(circuit.open((me, "dc", "chan", "c", "cap"), READ, Caller())).read(0, 100)) == b""
    assert "(E2BIG)" in circuit.host(me).last_error("chan", "c")


def test_a_refused_open_holds_nothing_unless_the_client_numbered_it(circuit):
    session = Session(circuit)
    missing = (_me(circuit), "dc", "chan", "nobody", "recv")
    failure(session.open(missing, READ, Caller()), errors.NotFound)
    assert len(session) == 0
    failure(session.open(missing, READ, Caller(), number=7), errors.NotFound)
    with pytest.raises(errors.NotFound):  # what a peer pipelined behind the open gets
        session.file(7)
    value(session.release(7))
    assert len(session) == 0
