"""The contract between the tree and its views (FUSE, SSH/SFTP, PB).

A view turns its requests into calls on an `ICircuit`; every call returns a
Deferred and fails only with a `circuit.errors.CircuitError` (or with
`CancelledError` when the view itself cancelled it).  Views never reach past
these interfaces into the element core.
"""
from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Attribute, Interface


@dataclass(frozen=True)
class Attr:
    """What a view needs to show one node."""
    kind: str             # "dir" or "file"
    mode: int             # permission bits, e.g. 0o444
    size: int = 0
    mtime: float = 0.0
    streaming: bool = False   # size unknown or reads block: no page cache, no seeking


@dataclass(frozen=True)
class OpenFlags:
    read: bool = True
    write: bool = False
    truncate: bool = False
    append: bool = False
    create: bool = False
    exclusive: bool = False
    # Read whole, each message handed over as it arrives (`circuit.tree.whole.get`): a
    # channel may send such readers of one caller several messages at once.
    whole: bool = False


class ICaller(Interface):
    """Who is on the other end of an open file: a process at a mount, an SSH
    channel, a PB client, or (on the owning host) another host's connection."""

    def alive() -> bool:
        """False once the caller has given up (Ctrl-C, timeout, a closed connection).

        Asked at the moment a message would be handed over (taken from a writer,
        or given to a reader), so that a message never goes to a reader that has
        left nor comes from a writer that has.  Must be cheap and must not block.
        "Gone" is known on the caller's own host: there its view asks before
        each step (`circuit.tree.handles.hand_over` for reads; before every send
        attempt for writes); on the owning host a caller on another host is alive
        while its connection is.
        """

    # Optional: ``client_certificate``, true for another host's connection made with a
    # client certificate, which may use elements but not stop the host nor make it
    # join another circuit (`IHostControl`).  Absent: a member, or this host's own view.
    # Optional: ``keeps_order``, true for another host's connection, whose whole reads hand
    # each offer over as it arrives and keep the epoch rule (`Offer.tag`), so a channel may
    # send them several at once.  Absent: one hand-over at a time.


class IHandle(Interface):
    """An open file.  Reads and writes may block (their Deferreds fire later).

    Cancelling a pending read or flush leaves the element as it was: a message
    not yet handed over stays in its channel, a send not yet taken is withdrawn.
    """

    streaming = Attribute("True if reads may block or the size is unknown")
    plain = Attribute("True for an ordinary file (under fs/): its size is real and it may be cached")
    settled = Attribute("True while everything written took effect at its write (cap's line, "
                        "run's document): a flush now delivers nothing")

    def read(offset: int, size: int):
        """Deferred[bytes]: up to size bytes at offset; b"" means end of file."""

    def write(offset: int, data: bytes):
        """Deferred[int]: accept bytes (control files take them in arrival order)."""

    def flush():
        """Deferred: one writer closed its descriptor: deliver what it wrote."""

    def release():
        """Deferred: the last descriptor is closed; give back whatever was not taken."""

    def known_size():
        """The content's whole size once known (a fetched message, a fixed text), else None."""

    def available():
        """For a stream that reads take nothing from (a process's output): how many bytes
        from its start can be read now without waiting, else None.  A reader on another
        host reads that far ahead of its reads."""

    def offered() -> bool:
        """True while a read's answer took something (a message) not yet confirmed.

        The view that answers the caller then calls `confirm` or `unread` at its
        last moment (see `circuit.tree.handles.hand_over`); until then the
        channel hands no later message to anyone, so a message given back keeps
        its place (except to other whole reads of the same caller: see `offer_tag`).
        """

    def offer_tag():
        """For an offer that may have later ones of its channel on their way to the same
        caller beside it (a read opened ``whole``): [channel, epoch], else None.  The
        caller's host gives back every later offer of that channel and epoch once it
        has given one back (`circuit.core.channel.Offer.tag`)."""

    def confirm():
        """The caller has the answer of the read that took something."""

    def unread():
        """The caller left before it had that answer: give back what was taken."""

    def lost():
        """The link to the caller failed while that answer was on its way (two
        generals: a message acknowledged to its sender goes back; a rendezvous
        sender still waiting is told EHOSTDOWN)."""

    def try_flush():
        """Deferred: as flush, but fail WouldBlock, keeping the message, rather than wait.

        For a writer on another host, whose host asks it "still there?" before
        every attempt: no remote writer ever waits inside the owner's channel."""

    def flush_ready():
        """Deferred: fires when try_flush would not wait; takes nothing."""


class IHostTree(Interface):
    """One host's tree, ``/X.../`` and below; paths are tuples of names under it.

    The local host implements it over the element core; a remote host (through
    PB) implements the same interface, so a view cannot tell them apart.
    """

    host_id = Attribute("the host's ID, X followed by 16 hex digits")

    def getattr(path: tuple):
        """Deferred[Attr]."""

    def listdir(path: tuple):
        """Deferred[list[tuple[str, Attr]]]."""

    def mkdir(path: tuple):
        """Deferred: make an element (``dc/KIND/NAME``) or a directory under ``fs/``."""

    def rmdir(path: tuple):
        """Deferred: remove an element (killing a running process) or an ``fs/`` directory."""

    def open(path: tuple, flags: OpenFlags, caller: ICaller):
        """Deferred[IHandle]: open (or under ``fs/`` create) a file."""

    def unlink(path: tuple):
        """Deferred: remove a file under ``fs/``."""

    def rename(path: tuple, new_path: tuple):
        """Deferred: rename within ``fs/``."""

    def setattr(path: tuple, size=None, mode=None, mtime=None):
        """Deferred[Attr]: truncate, chmod or touch a file under ``fs/``; ignored elsewhere."""

    def clause(path: tuple, op: str, spelled: str):
        """Deferred[circuit.core.select.Clause] for a select clause naming this file."""

    def put(path: tuple, data: bytes, caller: ICaller):
        """Deferred: write ``data`` whole into a file and deliver it, as open, write and
        close would (a message into ``send``, a signal, a command into ``run``).
        One operation, so another host's tree asks for it in one message."""

    def make(path: tuple, content: bytes, caller: ICaller, wait: bool = False):
        """Deferred: make the element ``dc/KIND/NAME`` and put ``content`` into its first
        file (a channel's cap, a process's run, a select's select); refused, the
        element is removed again.  With ``wait``, for a process: Deferred[bytes], its
        exit record once it has exited (one operation, so one message to another host)."""


class ICircuit(Interface):
    """The whole tree: ``/`` lists the live hosts, ``/X.../`` and below is each host's tree.

    Views call the path operations with paths from ``/`` as tuples of names; what
    only the whole circuit knows (the root, which host a path is on, that a host's
    own directory cannot be made, removed or opened, that a rename cannot cross
    hosts) is decided here, once for every view.
    """

    def host(host_id: str) -> IHostTree:
        """The host's tree; raises NotFound (unknown) or HostDown (left)."""

    def host_ids() -> list:
        """The IDs of the live hosts, this host first."""

    def getattr(path: tuple):
        """Deferred[Attr]."""

    def listdir(path: tuple):
        """Deferred[list[tuple[str, Attr]]]: the root lists the live hosts."""

    def mkdir(path: tuple):
        """Deferred; EACCES at the root and for a host itself."""

    def rmdir(path: tuple):
        """Deferred; EACCES at the root and for a host itself."""

    def unlink(path: tuple):
        """Deferred; EACCES at the root and for a host itself."""

    def rename(path: tuple, new_path: tuple):
        """Deferred; EXDEV across hosts."""

    def setattr(path: tuple, size=None, mode=None, mtime=None):
        """Deferred[Attr]; EPERM at the root."""

    def open(path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666):
        """Deferred[IHandle]; EISDIR for the root or a host (EACCES when creating)."""

    def put(path: tuple, data: bytes, caller: ICaller):
        """Deferred: `IHostTree.put` on the host ``path`` is in."""

    def make(path: tuple, content: bytes, caller: ICaller, wait: bool = False):
        """Deferred: `IHostTree.make` on the host ``path`` is in."""

    def resolve(text: str, cwd: tuple = ()) -> tuple:
        """A user's path (absolute, or relative to ``cwd``; ``..`` stops at ``/``) as a
        tuple of names from ``/``.  Only names: what they lead to is not looked up."""

    def tree_path(text: str, relative_to: tuple) -> tuple:
        """A path a user wrote inside a file (a select clause, a run command): a tree
        path, one relative to ``relative_to``, or one through any host's mount (it
        starts at its first host ID).  Raises Invalid outside the circuit."""

    def watch_hosts(watcher):
        """Tell ``watcher(event, host_id)`` as hosts join and leave; returns the
        call that stops telling it."""


class IHostControl(Interface):
    """What a host's own ``sys/stop`` and ``sys/join`` ask of the host itself, beyond its
    tree: to stop, or to join another circuit.  The service gives it to the local tree.

    Only members may ask: a caller with a true ``client_certificate`` attribute (another
    host's connection made with a client certificate) is refused before these are called.
    """

    def stop() -> None:
        """Leave the circuit gracefully, take down the host's processes, unmount, exit 0.

        Called from a delivery: must return at once (the answer goes out first), the
        shutdown happening on later turns."""

    def check_join(url: str):
        """Deferred: the circuit URL is well formed, not this host's, and its host answers
        over mutual TLS (a host of another CA fails the handshake: EPERM)."""

    def join(url: str):
        """Deferred: this host has exchanged full states with the host at ``url``: the two
        circuits are one (the other hosts learn it by gossip within a few rounds)."""
