"""The inode table: names and numbers stay consistent whatever the kernel and the user do."""
from hypothesis import given, strategies as st

from circuit.fuse.inodes import ROOT, InodeTable

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(tuple)
OPS = st.lists(st.one_of(
    st.tuples(st.just("lookup"), PATHS),
    st.tuples(st.just("forget"), st.integers(ROOT, ROOT + 30), st.integers(1, 3)),
    st.tuples(st.just("removed"), PATHS),
    st.tuples(st.just("rename"), PATHS, PATHS),
), max_size=60)


@given(OPS)
def test_names_and_numbers_agree(ops):
    t = InodeTable()
    for op in ops:
        if op[0] == "lookup":
            t.looked_up(op[1])
        elif op[0] == "forget":
            t.forget(op[1], op[2])
        elif op[0] == "removed":
            t.removed(op[1])
        elif op[1] != op[2] and op[2][:len(op[1])] != op[1]:  # not into itself
            t.rename(op[1], op[2])
        for path, ino in t._inodes.items():
            assert t._paths[ino] == path  # a name leads to its number and back
            if path:
                assert path[-1] in t._children[path[:-1]]
        for parent, names in t._children.items():
            assert names and all(parent + (n,) in t._inodes for n in names)
        assert len(set(t._inodes.values())) == len(t._inodes)  # no number has two names


def test_a_removed_name_made_again_is_a_new_inode():
    t = InodeTable()
    old = t.looked_up(("X", "dc", "chan", "q"))
    old_file = t.looked_up(("X", "dc", "chan", "q", "recv"))
    t.removed(("X", "dc", "chan", "q"))
    new = t.looked_up(("X", "dc", "chan", "q"))
    assert new != old and t.looked_up(("X", "dc", "chan", "q", "recv")) != old_file
    assert t.path(old) == ("X", "dc", "chan", "q")  # kept until the kernel forgets it
    t.forget(old, 1)
    assert t.inode(("X", "dc", "chan", "q")) == new  # forgetting the old one leaves the new
