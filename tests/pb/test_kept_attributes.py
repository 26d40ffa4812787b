"""A view of another host keeps the attributes that stay the same (circuit.tree.shape), and
asks the owner for everything else: the round trips a mkdir and a write of cap cost."""
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock

from circuit import errors
from circuit.interfaces import Attr
from circuit.pb import wire
from circuit.pb.remote_tree import RemoteHostTree

DIR = Attr("dir", 0o755, mtime=1.0)
FILE = Attr("file", 0o644, mtime=1.0, streaming=True)


class Owner:
    """Answers getattr from a set of existing paths, counting every call."""

    def __init__(self):
        self.time = Clock()
        self.calls = []
        self.paths = {(), ("dc",), ("dc", "chan"), ("dc", "select")}

    def clock(self):
        return self.time.seconds()

    def call(self, peer_id, url, method, *args, timeout=None):
        self.calls.append((method, wire.path_from_wire(args[0]) if args else ()))
        path = wire.path_from_wire(args[0])
        if method == "mkdir":
            self.paths.add(path)
            return succeed(wire.attr_to_wire(DIR))
        if method == "getattr":
            if path in self.paths:
                return succeed(wire.attr_to_wire(DIR))
            if path[:-1] in self.paths and len(path) == 4:
                return succeed(wire.attr_to_wire(FILE))
            return fail(errors.NotFound("no such file"))
        raise AssertionError(method)


def getattrs(tree, *paths):
    got = []
    for p in paths:
        tree.getattr(p).addBoth(got.append)
    return got


def test_after_the_first_time_a_mkdir_and_the_lookups_around_it_cost_one_round_trip():
    owner = Owner()
    tree = RemoteHostTree(owner, "X1", "circuit://x")
    getattrs(tree, ("dc", "chan"), ("dc", "chan", "first", "cap"))  # learnt once
    tree.mkdir(("dc", "chan", "first"))
    getattrs(tree, ("dc", "chan", "first"), ("dc", "chan", "first", "cap"))
    owner.calls.clear()
    tree.mkdir(("dc", "chan", "c"))
    got = getattrs(tree, ("dc", "chan", "c"), ("dc", "chan"), ("dc", "chan", "c", "cap"))
    assert got == [DIR, DIR, FILE]
    assert [m for m, _ in owner.calls] == ["mkdir"]


def test_an_element_not_seen_lately_is_asked_about_again():
    owner = Owner()
    tree = RemoteHostTree(owner, "X1", "circuit://x")
    tree.mkdir(("dc", "chan", "c"))
    getattrs(tree, ("dc", "chan", "c"), ("dc", "chan", "c", "cap"))
    owner.paths.discard(("dc", "chan", "c"))  # removed by someone else
    owner.time.advance(1.5)
    owner.calls.clear()
    got = getattrs(tree, ("dc", "chan", "c", "cap"))
    assert isinstance(got[0].value, errors.NotFound)
    assert owner.calls == [("getattr", ("dc", "chan", "c", "cap"))]


def test_a_selects_files_and_the_elements_themselves_are_always_asked_about():
    owner = Owner()
    tree = RemoteHostTree(owner, "X1", "circuit://x")
    tree.mkdir(("dc", "select", "s"))
    for _ in range(2):
        getattrs(tree, ("dc", "select", "s", "read.0"))
    getattrs(tree, ("dc", "chan", "gone"), ("dc", "chan", "gone"))
    assert [p for m, p in owner.calls if m == "getattr"] == [
        ("dc", "select", "s", "read.0")] * 2 + [("dc", "chan", "gone")] * 2
