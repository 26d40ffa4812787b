"""The proxy: another host's tree, reached over PB, behind the same IHostTree.

A view cannot tell it from the local tree.  Blocking calls carry a call ID:
cancelling one (Ctrl-C at the other end of a FUSE mount) cancels it on the
owner too.  The caller is asked "still there?" here, on its own host: a read
that took a message is confirmed to the owner, or given back (`unread`), by
the view at its last moment; a send is attempted only after asking, and never
waits inside the owner's channel (`_Sending`).  A whole read (`whole.get`) is
handed over as its answer arrives, so several may have a message on the way at
once; once one is given back, so is every later one of that channel's epoch
(`Offer.tag`).  When the owner leaves the circuit every call still waiting fails
with EHOSTDOWN.
"""
from __future__ import annotations

from collections import OrderedDict
from itertools import count
from typing import Any, Optional

from twisted.internet.defer import CancelledError, Deferred, fail, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from circuit import errors
from circuit.core.select import Clause
from circuit.interfaces import ICaller, IHandle, IHostTree, OpenFlags
from circuit.core.waiters import WaiterSet, made_once_asked
from circuit.pb import wire
from circuit.tree import shape, whole
from circuit.tree.callers import MEMBERS_ONLY, members_only
from circuit.tree.handles import Handle, TextHandle

log = Logger("circuit.pb")

_call_ids = count(1)
AHEAD = 8    # chunks read ahead of a reader of a result whose size is known (2 MiB)
BEHIND = 8   # chunks written behind a writer, not yet answered (2 MiB)
_FRESH = 1.0  # seconds an attribute answer stays good for the question that follows it


@implementer(IHostTree)
class RemoteHostTree:
    def __init__(self, peers, host_id: str, url: str):
        self.peers = peers
        self.host_id = host_id
        self.url = url
        self.gone = False
        self._waiting: set[Deferred] = set()
        self._handles = count(1)
        self._fresh: dict[tuple, tuple[float, Any]] = {}  # path -> (when, Attr) from mkdir
        # Attributes that stay the same (circuit.tree.shape): the top of the tree, and the
        # files of each kind, which are answered here for an element seen within _FRESH
        # seconds (the time the kernel itself trusts an answer for).
        self._lasting: dict[tuple, Any] = {}
        self._kind_files: dict[tuple[str, str], Any] = {}
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # element -> last seen
        self._gave_back: OrderedDict[int, int] = OrderedDict()  # channel -> epoch (Offer.tag)

    # -- calls -------------------------------------------------------------------------
    def call(self, method: str, *args, timeout: float | None = 30.0) -> Deferred:
        if self.gone:
            return fail(errors.HostDown(f"host {self.host_id} has left the circuit"))
        return self._track(self.peers.call(self.host_id, self.url, method, *args, timeout=timeout))

    def blocking(self, method: str, *args, late=None) -> Deferred:
        """A call that may wait as long as it likes; cancelling it cancels it on the owner.
        An answer that comes after all goes to ``late``."""
        if self.gone:
            return fail(errors.HostDown(f"host {self.host_id} has left the circuit"))
        call_id = next(_call_ids)
        inner = self.peers.call(self.host_id, self.url, method, *args, call_id, timeout=None)
        outer = Deferred(lambda _: self._cancel(call_id))

        def answered(result):
            if not outer.called:
                outer.callback(result)
            elif late is not None:  # the caller left; RemoteHandle gives a first read back
                late(result)

        def failed(failure):
            if not outer.called:
                outer.errback(failure)
        inner.addCallbacks(answered, failed)
        return self._track(outer)

    def tell(self, method: str, *args) -> None:
        """A message needing no answer (confirm, unread): one trip, not two."""
        if not self.gone:
            self.peers.tell(self.host_id, self.url, method, *args)

    # The epoch rule of offers sent ahead (circuit.core.channel.Offer.tag).
    def gave_back(self, tag) -> None:
        """An offer tagged ``tag`` was given back: so must every later one of its epoch."""
        if isinstance(tag, list) and len(tag) == 2:
            self._gave_back[tag[0]] = tag[1]
            self._gave_back.move_to_end(tag[0])
            while len(self._gave_back) > 4096:  # old epochs: their offers have long arrived
                self._gave_back.popitem(last=False)

    def must_give_back(self, tag) -> bool:
        return isinstance(tag, list) and len(tag) == 2 and self._gave_back.get(tag[0]) == tag[1]

    def _cancel(self, call_id: int) -> None:
        def failed(failure) -> None:  # recovered: a read's late answer is given back (_left)
            log.info("cancelling call {call} on {host} failed ({why}); the owner ends it when the "
                     "connection goes", call=call_id, host=self.host_id, why=failure.getErrorMessage())
        self.peers.call(self.host_id, self.url, "cancel", call_id, timeout=5).addErrback(failed)

    def _track(self, d: Deferred) -> Deferred:
        self._waiting.add(d)

        def done(result):
            self._waiting.discard(d)
            return result
        return d.addBoth(done)

    def host_left(self) -> None:
        """The owner left or died: nothing waits on it any more."""
        self.gone = True
        for d in list(self._waiting):
            if not d.called:
                d.errback(errors.HostDown(f"host {self.host_id} has left the circuit"))

    # -- IHostTree ---------------------------------------------------------------------
    def getattr(self, path: tuple) -> Deferred:
        now = self.peers.clock()
        fresh = self._fresh.pop(path, None)
        if fresh is not None and now - fresh[0] < _FRESH:
            return succeed(fresh[1])
        kept = self._kept(path, now)
        if kept is not None:
            return succeed(kept)
        return self.call("getattr", wire.path_to_wire(path)).addCallback(
            wire.attr_from_wire).addCallback(self._keep, path)

    def _kept(self, path: tuple, now: float) -> Any:
        if shape.lasting(path):
            return self._lasting.get(path)
        of_kind = shape.kind_file(path)
        if of_kind is not None and now - self._seen.get(path[1:3], -_FRESH) < _FRESH:
            return self._kind_files.get(of_kind)
        return None

    def _keep(self, attr, path: tuple):
        if shape.lasting(path):
            self._lasting[path] = attr
        elif shape.kind_file(path) is not None:
            self._kind_files[shape.kind_file(path)] = attr
        elif shape.element(path) is not None:
            self._saw(shape.element(path))
        return attr

    def _saw(self, element: tuple) -> None:
        """Oldest first: what the kernel no longer trusts either is forgotten from the front."""
        now = self.peers.clock()
        self._seen[element] = now
        self._seen.move_to_end(element)
        while now - next(iter(self._seen.values())) >= _FRESH:
            self._seen.popitem(last=False)

    def listdir(self, path: tuple) -> Deferred:
        """The listing, page by page (each one answer of remote_listdir)."""
        entries: list = []

        def listed(answer):
            page, more = answer
            for name, a in page:
                if shape.element(path + (name,)) is not None:
                    self._saw(shape.element(path + (name,)))
                entries.append((name, wire.attr_from_wire(a)))
            if more and page:
                return self.call("listdir", wire.path_to_wire(path), page[-1][0]).addCallback(listed)
            return entries
        return self.call("listdir", wire.path_to_wire(path)).addCallback(listed)

    def mkdir(self, path: tuple) -> Deferred:
        def made(answer):
            # A view asks for the attributes next: keep them for that one question.
            self._fresh[path] = (self.peers.clock(), wire.attr_from_wire(answer))
            if shape.element(path) is not None:
                self._saw(shape.element(path))
        return self.call("mkdir", wire.path_to_wire(path)).addCallback(made)

    def rmdir(self, path: tuple) -> Deferred:
        self._seen.pop(shape.element(path), None)
        return self.call("rmdir", wire.path_to_wire(path))

    def unlink(self, path: tuple) -> Deferred:
        return self.call("unlink", wire.path_to_wire(path))

    def rename(self, path: tuple, new_path: tuple) -> Deferred:
        return self.call("rename", wire.path_to_wire(path), wire.path_to_wire(new_path))

    def setattr(self, path: tuple, size=None, mode=None, mtime=None) -> Deferred:
        return self.call("setattr", wire.path_to_wire(path), size, mode, mtime).addCallback(wire.attr_from_wire)

    def open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666) -> Deferred:
        refused = _members_only(path, caller)
        if refused is not None:
            return refused
        hid = next(self._handles)
        request = (wire.path_to_wire(path), wire.flags_to_wire(flags), mode, hid)
        if path[:1] == ("fs",):
            # Ordinary files: wait, so open(2) itself reports ENOENT, EISDIR and the like.
            return self.call("open", *request).addCallback(
                lambda streaming: RemoteHandle(self, hid, streaming, flags, caller, plain=True))
        # Control files: the open travels with the first read or write (one message
        # instead of two); a refused open shows there.  A handle never used costs nothing.
        return succeed(RemoteHandle(self, hid, True, flags, caller, opening=request,
                                    lease=_lease(path, flags), applies=shape.applies_at_write(path)))

    # Leases (circuit.pb.peers): a send to a channel that passed the owner's check lets
    # the next ones answer their first write here, until the owner says the channel ended.
    def leased(self, channel: str) -> bool:
        return self.peers.leased(self.host_id, channel)

    def lease_asked(self) -> Any:
        """Taken when a send that may earn a lease leaves: the connection it goes on."""
        return self.peers.connection(self.host_id)

    def granted(self, channel: str, asked: Any) -> None:
        """The owner's answer to that send granted a lease (`PeerSession._grant`)."""
        self.peers.granted(self.host_id, channel, asked)

    def put(self, path: tuple, data: bytes, caller: ICaller) -> Deferred:
        refused = _members_only(path, caller)
        if refused is not None:
            return refused
        if len(data) > wire.MAX_CHUNK:
            return whole.put(self, path, data, caller)  # open, then in chunks
        hid = next(self._handles)
        handle = RemoteHandle(self, hid, True, whole.PUT, caller, lease=_lease(path, whole.PUT))
        handle._sending = _Sending(handle, putting=(wire.path_to_wire(path), hid, data))
        return handle._sending.start().addBoth(lambda result: (handle.release(), result)[1])

    def make(self, path: tuple, content: bytes, caller: ICaller, wait: bool = False) -> Deferred:
        if len(content) > wire.MAX_CHUNK:
            return whole.make(self, path, content, caller, wait)
        if wait:  # one call that may last as long as the process: cancelling it ends only the wait
            return self.blocking("make_wait", wire.path_to_wire(path), content)
        return self.call("make", wire.path_to_wire(path), content)

    def clause(self, path: tuple, op: str, spelled: str) -> Deferred:
        # Check now that the owner accepts this clause (EINVAL at write time, as locally).
        return self.call("clause_check", wire.path_to_wire(path), op, spelled).addCallback(
            lambda _: _remote_clause(self, path, op, spelled))


def _members_only(path: tuple, caller: ICaller) -> Optional[Deferred]:
    """The owner would refuse a client this file; we call it with a member's authority,
    so we refuse it here for a caller a client certificate vouches for (`members_only`)."""
    what = MEMBERS_ONLY.get(path)
    if what is None:
        return None
    try:
        members_only(caller, what)
    except errors.NotPermitted as e:
        return fail(e)
    return None


def _lease(path: tuple, flags: OpenFlags) -> Optional[str]:
    """The channel a send through ``path`` may hold a lease on (`RemoteHostTree.leased`)."""
    return shape.send_file(path) if flags.write else None


def _remote_clause(tree: RemoteHostTree, path: tuple, op: str, spelled: str) -> Clause:
    wire_path = wire.path_to_wire(path)

    def commit():
        return tree.call("clause_commit", wire_path, op, spelled).addCallback(
            lambda value: RemoteValue(tree, path, value))

    def undo(value: "RemoteValue") -> None:
        def failed(failure) -> None:
            # Nothing to retry against: the owner is gone or not answering, and its channel
            # with it if it is gone.  Say what was lost.
            what = f"{len(value.data)} bytes" if value.key is None else "a large message"
            log.error("{what} that a select took from {host}:{path} could not be given back "
                      "({why}): lost, unless its host is gone and the channel with it",
                      what=what, host=tree.host_id, path="/".join(path), why=failure.getErrorMessage())
        tree.call("clause_undo", wire_path, op, spelled, value.data, value.key or 0).addErrback(failed)

    def write(message: bytes, caller: Optional[ICaller] = None) -> Deferred:
        return tree.put(path, message, caller or _NoCaller())

    send_like = path[-1] in ("send", "trysend")
    return Clause(op, spelled, ready=lambda: tree.blocking("clause_ready", wire_path, op, spelled),
                  commit=commit, undo=undo, write=write if send_like else None)


class RemoteValue:
    """What a remote clause committed: bytes, bytes held by the owner, or a stream to open."""

    def __init__(self, tree: RemoteHostTree, path: tuple, answer: Any):
        self.tree, self.path = tree, path
        self.data, self.key = b"", None
        if isinstance(answer, tuple):        # ("bytes", data)
            self.kind, self.data = answer
        else:                                # ["held", key, size] or ["stream"]
            self.kind = answer[0]
            self.key = answer[1] if self.kind == "held" else None

    def open(self, caller: ICaller) -> Deferred:
        """Deferred[IHandle] reading the value (read.N)."""
        if self.kind == "bytes":
            return succeed(TextHandle(self.data))
        if self.kind == "held":
            return succeed(_HeldHandle(self.tree, self.key))
        return self.tree.open(self.path, OpenFlags(read=True), caller)


class _HeldHandle(Handle):
    streaming = True

    def __init__(self, tree: RemoteHostTree, key: int):
        self._tree, self._key = tree, key

    def read(self, offset: int, size: int) -> Deferred:
        return self._tree.call("held_read", self._key, offset, size)

    def release(self) -> Deferred:
        def failed(failure) -> None:  # the owner drops it with the connection instead
            log.info("dropping a held value on {host} failed: {why}", host=self._tree.host_id,
                     why=failure.getErrorMessage())
        return self._tree.call("held_drop", self._key).addErrback(failed)


@implementer(IHandle)
class RemoteHandle(Handle):
    """An open file on another host, read and written in chunks."""

    def __init__(self, tree: RemoteHostTree, hid: int, streaming: bool, flags: OpenFlags,
                 caller: ICaller, opening: Optional[tuple] = None, plain: bool = False,
                 lease: Optional[str] = None, applies: bool = False):
        self._tree = tree
        self._hid = hid
        self._lease = lease  # the channel, for a channel's send file: see write
        self._applies = applies  # a whole value written takes effect on arrival (cap, run)
        self._request = opening  # to open it again after a put (_again)
        self._held: Optional[bytearray] = None  # written under a lease, not yet sent
        self._put = False  # the last flush was a put (the owner closes its file after) ...
        self._kept_open = False  # ... unless the channel was full: then it keeps it for us
        self.streaming = streaming
        self.plain = plain
        self._flags = flags
        self._caller = caller
        self._opening = opening  # the open not sent yet: it goes with the first operation
        self._released = False
        self._size: Any = None  # the content's whole size, once the owner has told us
        self._offered = False  # the first read took a message: confirm or give it back
        self._tag: Any = None  # that offer's tag, if it may have later ones beside it
        self._whole: Optional[bytes] = None  # a result read whole at the first read
        self._written = False  # bytes written since the last flush
        self._wrote_once = False
        self._behind: list[Deferred] = []  # writes on their way, answered here already
        self._behind_error: Optional[Exception] = None
        self._landed = WaiterSet()
        self._chunks: dict[int, _Chunk] = {}  # read ahead, by chunk number
        self._available: Optional[int] = None  # of a stream read ahead: bytes there to read
        self._sending: Optional[_Sending] = None

    def known_size(self):
        return self._size

    def _ask(self, method: str, *args, blocking: bool = True, answer: bool = True, late=None) -> Deferred:
        if self._opening is not None:
            args, method = self._opening + (method,) + args, "opened"
            self._opening = None
        if not answer:
            self._tree.tell(method, *args)
            return succeed(None)
        if blocking:
            return self._tree.blocking(method, *args, late=late)
        return self._tree.call(method, *args)

    def read(self, offset: int, size: int) -> Deferred:
        if self._whole is not None:
            return succeed(self._whole[offset:offset + size])
        if self._size is not None:
            if offset >= self._size:
                return succeed(b"")  # the end, known already: spare the round trip
            return self._read_ahead(offset, size)
        if self._available is not None and (offset // wire.MAX_CHUNK + 1) * wire.MAX_CHUNK <= self._available:
            return self._stream_ahead(offset, size)
        first = offset == 0 and self.streaming
        # The first read asks for a whole chunk: a small result (a message) then arrives
        # whole, and the rest is read here.
        d = self._ask("read", self._hid, offset, wire.MAX_CHUNK if first else min(size, wire.MAX_CHUNK),
                      late=self._late if first else None)
        d.addCallback(self._got, offset, size)
        if first:
            # If our reader leaves while the answer is on its way, give the answer back.
            d.addErrback(self._left)
        return d

    def _got(self, answer, offset: int, size: int):
        (known, offered, *more), data = answer
        if self._tree.must_give_back(offered):
            # An earlier message of its channel, sent beside it, was given back: so is
            # this one, and the read asks again (the channel keeps its order).
            self._tree.tell("unread", self._hid)
            return self.read(offset, size)
        self._tag = offered if isinstance(offered, list) else None
        self._note_available(more)
        if known is not None:
            self._size = known
            if offset == 0 and len(data) == known:
                self._whole = data
            elif offset % wire.MAX_CHUNK == 0 and len(data) == wire.MAX_CHUNK:
                self._chunks[offset // wire.MAX_CHUNK] = _Chunk(succeed(data))
        self._offered = self._offered or bool(offered)
        return data[:size]

    def _read_ahead(self, offset: int, size: int) -> Deferred:
        """A result of known size (a big message) is read in whole chunks, AHEAD of the
        reader, so its reads do not wait a round trip each; what it has passed is dropped."""
        i = offset // wire.MAX_CHUNK
        last = (self._size - 1) // wire.MAX_CHUNK
        for j in [j for j in self._chunks if j < i]:
            del self._chunks[j]
        for j in range(i, min(i + AHEAD, last) + 1):
            if j not in self._chunks:
                self._chunks[j] = _Chunk(self._tree.call("read", self._hid, j * wire.MAX_CHUNK,
                                                         wire.MAX_CHUNK, 0).addCallback(lambda a: a[1]))
        start = offset - i * wire.MAX_CHUNK
        return self._chunks[i].get().addCallback(lambda data: data[start:start + size])

    def _note_available(self, more: list) -> None:
        if more and isinstance(more[0], int):
            self._available = max(self._available or 0, more[0])

    def _stream_ahead(self, offset: int, size: int) -> Deferred:
        """A stream that reads take nothing from (a process's output) is read in whole
        chunks ahead of the reader, as far as it is already there: those reads are
        answered at once, so a fast writer's output crosses at the link's speed rather
        than a round trip per read; past what is there, reads go one at a time."""
        i = offset // wire.MAX_CHUNK
        for j in [j for j in self._chunks if j < i]:
            del self._chunks[j]
        for j in range(i, i + AHEAD):
            if (j + 1) * wire.MAX_CHUNK > self._available:
                break
            if j not in self._chunks:
                self._chunks[j] = _Chunk(self._tree.call("read", self._hid, j * wire.MAX_CHUNK,
                                                         wire.MAX_CHUNK, 0).addCallback(self._chunk))
        start = offset - i * wire.MAX_CHUNK
        return self._chunks[i].get().addCallback(lambda data: data[start:start + size])

    def _chunk(self, answer) -> bytes:
        (_, _, *more), data = answer
        self._note_available(more)
        return data

    def _left(self, failure):
        if failure.check(CancelledError):
            self._tree.tell("unread", self._hid)
        return failure

    def _late(self, answer) -> None:
        """The first read's answer came after its reader left (``_left`` gave it back)."""
        (_, offered, *_), _ = answer
        self._tree.gave_back(offered)

    # The view decides, at its last moment, for the caller on this host.
    def offered(self) -> bool:
        return self._offered

    def confirm(self) -> None:
        if self._offered:
            self._offered = False
            # Read whole: the owner may forget the handle too (one message instead of two).
            done = self._whole is not None and not self._released
            self._released = self._released or done
            # In the kernel before our reader has the bytes (broker.write_now).
            self._tree.tell("confirm", self._hid, done)

    def unread(self) -> None:
        if self._offered:
            self._offered = False
            self._tree.gave_back(self._tag)
            self._tree.tell("unread", self._hid)

    def write(self, offset: int, data: bytes) -> Deferred:
        if self._put:
            if not self._sending.finished.called:  # a write beside a close: after it
                after: Deferred = Deferred()
                self._sending.finished.addBoth(lambda result: (after.callback(None), result)[1])
                return after.addCallback(lambda _: self.write(offset, data))
            self._again()
        self._written = True
        held = self._held
        if held is not None:
            if offset == len(held) and len(held) + len(data) <= wire.MAX_CHUNK:
                held += data
                return succeed(len(data))
            self._send_held()
        elif not self._wrote_once and offset == 0 and len(data) <= wire.MAX_CHUNK \
                and self._opening is not None and self._lease is not None \
                and self._tree.leased(self._lease):
            # Under a lease the owner has checked this channel and will say if it ends:
            # keep what is written, and send it whole at the close (`put`: one round trip).
            self._wrote_once = True
            self._held = bytearray(data)
            return succeed(len(data))
        # An empty write travels too: it says "the empty message" to the owner's flush.
        pieces = [data[i: i + wire.MAX_CHUNK] for i in range(0, len(data), wire.MAX_CHUNK)] or [b""]
        if not self._wrote_once:
            # The first write(2) waits for the owner's check, so that a refusal reaches it
            # (bash's builtin echo ignores close(2)); later ones go behind, up to BEHIND
            # unanswered, and a refusal among them reaches the next write or the close.
            self._wrote_once = True
            asked = self._tree.lease_asked() if self._lease is not None else None
            writes = [self._ask("write", self._hid, offset + i * wire.MAX_CHUNK, p)
                      for i, p in enumerate(pieces)]
            answered = gatherResults(writes, consumeErrors=True).addCallbacks(
                lambda answers: self._passed(asked, answers, len(data)), lambda f: f.value.subFailure)
            return self._made_once_sent(answered, len(data)) if self._applies else answered
        if self._behind_error is not None:
            return fail(self._behind_error)
        for i, p in enumerate(pieces):
            d = self._ask("write", self._hid, offset + i * wire.MAX_CHUNK, p)
            self._behind.append(d)
            d.addBoth(self._write_landed, d)
        return self._all_but(BEHIND).addCallback(lambda _: len(data))

    def _made_once_sent(self, answered: Deferred, written: int) -> Deferred:
        """A write that may take effect on arrival (`cap`, `run`), once it has left: a
        writer that gives up meanwhile has made it and hears so, as a send in flight does
        (`_Sending`), rather than EINTR for a process that starts anyway."""
        return made_once_asked(answered, written, lambda failure: log.info(
            "a write to handle {hid} on {host}, made for a writer that gave up while it was on "
            "its way, was refused: {why}", hid=self._hid, host=self._tree.host_id,
            why=failure.getErrorMessage()))

    def _passed(self, asked, answers: list, result):
        if self._lease is not None and answers[0] == wire.LEASED:  # the open's answer
            self._tree.granted(self._lease, asked)
        elif answers[-1] == wire.SETTLED:
            self._written = False  # it took effect at the write: the close need not ask again
        return result

    def _send_held(self) -> None:
        """More than a chunk under a lease: what was held goes as the first write, behind
        the writer (it was told it was written); a refusal reaches the next write or the close."""
        data, self._held = bytes(self._held), None
        d = self._ask("write", self._hid, 0, data)
        self._behind.append(d)
        d.addBoth(self._write_landed, d)

    def _again(self) -> None:
        """Written to again after a put closed the owner's file: a new file there, opened
        with the next write, as at the first."""
        self._hid = next(self._tree._handles)
        path, flags, mode, _ = self._request
        self._opening = self._request = (path, flags, mode, self._hid)
        self._put = self._kept_open = self._released = self._wrote_once = False

    def _write_landed(self, result, d: Deferred) -> None:
        self._behind.remove(d)
        if isinstance(result, Failure) and self._behind_error is None:
            self._behind_error = result.value if result.check(errors.CircuitError) else \
                errors.CircuitError(result.getErrorMessage())
        self._landed.fire_all()

    def _all_but(self, n: int) -> Deferred:
        """Fires once at most n writes are on their way; fails with a refusal among them."""
        if self._behind_error is not None:
            return fail(self._behind_error)
        if len(self._behind) <= n:
            return succeed(None)
        return self._landed.wait().addCallback(lambda _: self._all_but(n))

    def flush(self) -> Deferred:
        if not (self._flags.write and self._written):
            return succeed(None)  # nothing to deliver (the shell's early flush): spare the trip
        self._written = False
        if self._held is not None:
            # Open, write and deliver in one message; the owner closes its file after.
            data, self._held = bytes(self._held), None
            path, _, _, hid = self._opening
            self._opening, self._put = None, True
            self._sending = _Sending(self, putting=(path, hid, data))
        else:
            self._sending = _Sending(self)
        return self._sending.start()

    def release(self) -> Deferred:
        if self._released or self._tree.gone:
            return succeed(None)
        self._released = True
        if self._opening is not None and not (self._flags.write and self._flags.truncate):
            return succeed(None)  # never opened over there, and nothing to deliver
        if self._sending is not None and not self._sending.finished.called:
            # A send committed for a writer that has since gone: release once it is done.
            return self._sending.finished.addBoth(lambda _: self._release())
        return self._release()

    def _release(self) -> Deferred:
        if self._put and not self._kept_open:
            return succeed(None)  # the put closed it over there, or never left
        # Nobody waits for it (close(2) has returned): one message, no answer.
        return self._ask("release", self._hid, answer=False)


class _Chunk:
    """One chunk read ahead: any number of readers wait for it (each may leave alone)."""

    def __init__(self, d: Deferred):
        self.data: Optional[bytes] = None
        self.error: Any = None
        self._waiting = WaiterSet()
        d.addCallbacks(self._got, self._failed)

    def _got(self, data: bytes) -> None:
        self.data = data
        self._waiting.fire_all(data)

    def _failed(self, failure) -> None:
        self.error = failure
        self._waiting.fail_all(failure.value)

    def get(self) -> Deferred:
        if self.data is not None:
            return succeed(self.data)
        if self.error is not None:
            return fail(self.error)
        return self._waiting.wait()


class _Sending:
    """One send from a writer on this host to a channel on the owner's.

    Before every attempt the writer is asked whether it is still there; an
    attempt is delivered at once by the owner or answered EAGAIN, and then we
    wait (taking nothing) until the channel could take it, and ask again.  So no
    message is taken from a writer that has gone, with a window of one trip to
    the owner.  A writer that gives up while an attempt is on its way was asked
    just before: its send counts as made (close returns 0) and we see it through.
    """

    def __init__(self, handle: RemoteHandle, putting: Optional[tuple] = None):
        self.handle = handle
        self._putting = putting  # (path, hid, content): the first attempt opens and writes too
        self.done: Deferred = Deferred(self._cancelled)  # what the writer waits for
        self.finished: Deferred = Deferred()  # when nothing of it is in flight any more
        self.in_flight = False
        self.orphan = False  # its writer gave up during an attempt and was told "sent"
        self._waiting: Optional[Deferred] = None

    def start(self) -> Deferred:
        landed = self.handle._all_but(0)  # every write has reached the owner, unrefused
        if landed.called:
            landed.addCallbacks(lambda _: self._attempt(), self._refused)
        else:
            self._waiting = landed
            landed.addCallbacks(self._landed, self._wait_failed)
        return self.done

    def _landed(self, _) -> None:
        self._waiting = None
        self._attempt()

    def _attempt(self) -> None:
        h = self.handle
        if not self.orphan and not h._caller.alive():
            return self._end(errors.Interrupted("the writer went away; nothing was sent"))
        self.in_flight = True
        if self._putting is not None:
            asked = h._tree.lease_asked() if h._lease is not None else None
            attempt = h._tree.call("put", *self._putting)
            self._putting = None
            attempt.addBoth(self._put_answered, asked)
        else:
            attempt = h._ask("flush", h._hid)
        attempt.addCallbacks(self._sent, self._refused)

    def _put_answered(self, result, asked):
        full = isinstance(result, Failure) and result.check(errors.WouldBlock)
        if full:
            self.handle._kept_open = True
        else:
            self.handle._released = True  # the owner closed it; on EAGAIN it keeps it open
        if self.handle._lease is not None and result == wire.LEASED:
            self.handle._tree.granted(self.handle._lease, asked)
        return result

    def _sent(self, _) -> None:
        self.in_flight = False
        self._end(None)

    def _refused(self, failure) -> None:
        self.in_flight = False
        if failure.check(errors.WouldBlock):
            h = self.handle
            self._waiting = h._tree.blocking("flush_ready", h._hid)
            self._waiting.addCallbacks(lambda _: self._attempt(), self._wait_failed)
            return None
        return self._end(failure.value if failure.check(errors.CircuitError) else
                         errors.CircuitError(failure.getErrorMessage()))

    def _wait_failed(self, failure) -> None:
        self._waiting = None
        if failure.check(CancelledError):
            return self._end(errors.Interrupted("the writer went away; nothing was sent"))
        return self._end(failure.value if failure.check(errors.CircuitError) else
                         errors.CircuitError(failure.getErrorMessage()))

    def _cancelled(self, d: Deferred) -> None:
        if self.in_flight:
            # Asked just before this attempt left: handed over before it gave up.
            self.orphan = True
            d.callback(None)
        elif self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.cancel()  # cancels the wait on the owner too; nothing was taken

    def _end(self, error) -> None:
        if self.orphan and error is not None:
            log.warn("a message to {host} (handle {hid}) was lost: its writer, interrupted while "
                     "the message was on its way, had been told it was sent; then: {why}",
                     hid=self.handle._hid, host=self.handle._tree.host_id, why=error)
        if not self.done.called:
            if error is None:
                self.done.callback(None)
            else:
                self.done.errback(error)
        if not self.finished.called:
            self.finished.callback(None)


@implementer(ICaller)
class _NoCaller:
    def alive(self) -> bool:
        return True
