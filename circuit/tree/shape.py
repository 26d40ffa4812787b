"""Which attributes of a host's tree stay the same, so that a view of another host may keep them.

A host's top of tree (``/``, ``help``, ``dc``, ``dc/chan``, ``sys``, ``sys/stat``...) lives as
long as the host and never changes; the files of a channel or a process are the same for every
element of that kind (a select's files depend on its clauses).  Keeping these saves a round trip
to the owner for each lookup the kernel makes after a mkdir (of the parent) and on the way to a
control file (``cap``, ``run``, ``waitexit``).  And which control files take effect at a write
(`applies_at_write`), read from the kinds' own tables, so that a view of another host treats
such a write in flight as made without knowing what the file means.
"""
from __future__ import annotations

from typing import Optional

from circuit.tree.chan_files import CHANNEL
from circuit.tree.proc_files import PROCESS

SAME_FILES = ("chan", "proc")  # kinds whose files are the same for every element
_TABLES = {"chan": CHANNEL, "proc": PROCESS}


def lasting(path: tuple) -> bool:
    """The node at ``path`` exists, with the same attributes, as long as its host does
    (once it was seen to exist at all).  fs/ is an ordinary directory: not lasting."""
    return len(path) <= 2 and path[:1] != ("fs",)


def kind_file(path: tuple) -> Optional[tuple[str, str]]:
    """(kind, file) for a control file whose attributes are its kind's, else None."""
    if len(path) == 4 and path[0] == "dc" and path[1] in SAME_FILES:
        return path[1], path[3]
    return None


def element(path: tuple) -> Optional[tuple[str, str]]:
    """(kind, name) for an element's own directory, else None."""
    if len(path) == 3 and path[0] == "dc":
        return path[1], path[2]
    return None


def send_file(path: tuple) -> Optional[str]:
    """The channel whose ``send`` file ``path`` is, else None: what a lease is held on
    (`circuit.pb.peers`), asked by the sending host and by the owner alike."""
    if len(path) == 4 and path[:2] == ("dc", "chan") and path[3] == "send":
        return path[2]
    return None


def applies_at_write(path: tuple) -> bool:
    """Does a whole value written to the control file at ``path`` take effect at that
    write(2) (``cap``, ``run``)?  Then a writer that gives up once the write has left has
    made it, as a send in flight has (`circuit.pb.remote_tree.RemoteHandle.write`)."""
    if len(path) != 4 or path[0] != "dc" or path[1] not in _TABLES:
        return False
    file = _TABLES[path[1]].get(path[3])
    return file is not None and file.applies
