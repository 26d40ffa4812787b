"""Memory comes back when elements go: nothing keeps a removed element (or what it waited on)
alive, whatever was open or armed on it when it was removed."""
from __future__ import annotations

import gc
import json
import sys
import weakref
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from core_model import failure, pending, value  # noqa: E402

from circuit import errors  # noqa: E402
from circuit.core.host import Host  # noqa: E402
from circuit.interfaces import OpenFlags  # noqa: E402
from circuit.tree.circuit import Circuit  # noqa: E402
from circuit.tree.local import LocalHostTree  # noqa: E402
from circuit.tree.session import Session  # noqa: E402
from circuit.tree.select_files import MAX_CLAUSES  # noqa: E402


class Caller:
    def alive(self) -> bool:
        return True


@pytest.fixture
def host(tmp_path):
    c = Circuit(started=1.0)
    tree = LocalHostTree(Host(reactor=None, environ={"PATH": "/bin"}), str(tmp_path / "fs"), c)
    c.add_host(tree, local=True)
    return c, tree


def _read(c, path: tuple):
    session = Session(c)
    fh = value(session.open(path, OpenFlags(read=True), Caller()))
    return session.file(fh).handle.read(0, 1 << 20)


def _dead(refs: list) -> int:
    gc.collect()
    return sum(r() is None for r in refs)


def test_removed_selects_channels_and_processes_are_freed(host):
    c, tree = host
    me, session, caller = tree.host_id, Session(c), Caller()
    chans = [f"c{i}" for i in range(10)]
    for name in chans:
        value(c.make((me, "dc", "chan", name), b"2\n", caller))
        for _ in range(2):  # full: a write clause on it waits
            value(c.put((me, "dc", "chan", name, "send"), b"x" * 1000, caller))
    # Selects with the most clauses a select takes, armed on channels that stay.
    clauses = json.dumps([{"op": "w", "file": f"chan/{chans[i % 10]}/send"} for i in range(MAX_CLAUSES)])
    selects = []
    for i in range(20):
        value(c.make((me, "dc", "select", f"s{i}"), clauses.encode(), caller))
        selects.append(weakref.ref(tree.host.get("select", f"s{i}")))
    assert json.loads(value(_read(c, (me, "dc", "select", "s0", "stat"))))["state"] == "armed"
    # A reader waiting on an empty channel, a writer waiting on a full one, and a process.
    value(c.make((me, "dc", "chan", "empty"), b"0\n", caller))
    fh = value(session.open((me, "dc", "chan", "empty", "recv"), OpenFlags(read=True), caller))
    waiting = session.file(fh).handle.read(0, 4096)
    writing = c.put((me, "dc", "chan", "c0", "send"), b"y" * 1000, caller)  # c0: 2 of 2 buffered
    value(c.mkdir((me, "dc", "proc", "p")))
    others = [weakref.ref(tree.host.get("chan", "empty")), weakref.ref(tree.host.get("proc", "p"))]
    assert pending(waiting) and pending(writing)

    for i in range(20):
        value(c.rmdir((me, "dc", "select", f"s{i}")))
    assert _dead(selects) == 20  # the channels they were armed on hold nothing of them

    value(c.rmdir((me, "dc", "chan", "empty")))
    value(c.rmdir((me, "dc", "proc", "p")))
    failure(waiting, errors.NotFound)
    value(session.release(fh))
    kept = [weakref.ref(tree.host.get("chan", name)) for name in chans]
    for name in chans:
        value(c.rmdir((me, "dc", "chan", name)))
    failure(writing, errors.NotFound)
    assert _dead(others + kept) == len(others) + len(kept)
    assert tree._errors == {}  # the error lines of removed elements went with them
