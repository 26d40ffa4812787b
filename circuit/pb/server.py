"""The exporter: what a host serves to each peer connection.

One `PeerSession` per connection is the only object PB exports (so the 1024
references a connection allows are never a limit).  Its open files and waiting
calls are a `circuit.tree.session.Session`, as every view's are: files are the
peer's own integer handle numbers, blocking calls carry a call ID the peer can
cancel, and everything is released when the connection goes.
"""
from __future__ import annotations

import bisect
from collections import Counter

from itertools import count
from typing import Callable, Optional

from cryptography import x509
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from circuit import errors
from circuit.core.channel import Channel
from circuit.interfaces import ICaller, IHandle
from circuit.pb import wire
from circuit.pb.broker import Broker, strict_security
from circuit.tls.authority import host_id_of
from circuit.tree import shape, whole
from circuit.tree.session import Session

log = Logger("circuit.pb")

MAX_PENDING_CALLS = 10000
_LEASED = wire.ok(wire.LEASED)  # the answer that grants a lease, made once
MAX_OPEN_HANDLES = 100000


@implementer(pb.IPBRoot)
class PeerRoot:
    """Gives every connection its own session, and drops a departed host's sessions."""

    def __init__(self, node):
        self.node = node
        self.sessions: set[PeerSession] = set()

    def rootObject(self, broker) -> "PeerSession":
        session = PeerSession(self.node, broker)
        self.sessions.add(session)
        broker.notifyOnDisconnect(lambda: self.sessions.discard(session))
        return session

    def drop(self, peer_id: str) -> None:
        """The membership says the peer left or died: close what it had open here.

        Its connections may linger (a stopped or cut-off host sends no FIN); the
        hand-overs it had in flight are settled as lost now, not at a TCP timeout.
        """
        for session in list(self.sessions):
            if session.peer() == peer_id:
                session.disconnect()


@implementer(ICaller)
class _ConnectionCaller:
    # The peer's whole reads (RemoteHandle) hand each offer over as it arrives, in order,
    # and give back every later offer of an epoch once they give one back (Offer.tag).
    keeps_order = True

    def __init__(self, session: "PeerSession"):
        self._session = session

    def alive(self) -> bool:
        return not self._session.closed

    @property
    def client_certificate(self) -> bool:
        """A client's connection may use elements, not stop this host nor make it join
        another circuit (`IHostControl`)."""
        return self._session.peer() is None


class PeerSession(pb.Referenceable):
    def __init__(self, node, broker):
        self.node = node
        self.broker = broker
        self.closed = False
        self.peer_id: Optional[str] = None
        # The peer's open files (by the peer's own numbers) and waiting calls (by call ID).
        self.session = Session(node.circuit, max_files=MAX_OPEN_HANDLES, max_waits=MAX_PENDING_CALLS)
        self._ids = count(1)
        self._held: dict[int, bytes] = {}
        self._caller = _ConnectionCaller(self)
        self._listing: Optional[tuple] = None  # (path, names, entries): the listing being paged
        # Leases (circuit.pb.peers): the peer's listener, given with hello, and the channels
        # it may send to without our check at its first write, each with its end hook.
        self._listener: Optional[pb.RemoteReference] = None
        self._leased: dict[Channel, Callable[[], None]] = {}
        host = getattr(node, "host", None)
        self._requests = host.requests if host is not None else Counter()
        broker.notifyOnDisconnect(self._disconnected)

    def remoteMessageReceived(self, broker, message, args, kw):
        # Counted in sys/stat ("pb read": n): the round trips (and one-way messages) an
        # operation costs, measured by bench/cluster.py.
        self._requests["pb " + (message.decode() if isinstance(message, bytes) else message)] += 1
        return super().remoteMessageReceived(broker, message, args, kw)

    # -- who is calling -----------------------------------------------------------------
    def peer(self) -> Optional[str]:
        if self.peer_id is None:
            try:
                cert = self.broker.transport.getPeerCertificate()
            except (AttributeError, OSError) as e:  # no TLS transport (gone, or a test's)
                log.info("no peer certificate on this connection: {why!r}", why=e)
                cert = None
            if cert is not None:
                self.peer_id = host_id_of(cert.to_cryptography() if hasattr(cert, "to_cryptography")
                                          else x509.load_der_x509_certificate(cert))
        return self.peer_id

    def disconnect(self) -> None:
        transport = self.broker.transport
        if transport is not None:
            transport.abortConnection()
        self._disconnected()

    def _disconnected(self) -> None:
        if self.closed:
            return
        self.closed = True
        for channel, hook in self._leased.items():  # they end with the connection
            channel.forget_end(hook)
        self._leased.clear()
        self.session.close(lost=True)  # an answer that took a message may or may not have arrived

    # -- plumbing ------------------------------------------------------------------------
    def _answer(self, fn, *args) -> Deferred:
        return maybeDeferred(fn, *args).addCallbacks(wire.ok, wire.refusal)

    def _blocking(self, call_id, fn, *args) -> Deferred:
        """A call that may wait; the caller can cancel it with remote_cancel(call_id)."""
        return self.session.track(maybeDeferred(fn, *args), key=call_id).addCallbacks(wire.ok, wire.refusal)

    def remote_cancel(self, call_id):
        self.session.cancel(call_id)
        return wire.ok()

    def remote_hello(self, listener=None):
        if isinstance(listener, pb.RemoteReference):
            self._listener = listener
        return wire.ok(self.node.host_id)

    def remote_greet(self, listener, session):
        """A host's hello on a connection it dialled, offering ``session`` for our calls to
        it on the same connection (`circuit.pb.peers.Peers.adopt`); answers whether we
        make them here.  A client certificate's offer is never taken: calls go to hosts."""
        self.remote_hello(listener)
        peer, peers = self.peer(), getattr(self.node, "peers", None)
        return wire.ok(bool(peer is not None and peers is not None
                            and isinstance(session, pb.RemoteReference)
                            and peers.adopt(peer, self.broker, session)))

    # -- leases (circuit.pb.peers) ---------------------------------------------------------
    def _lease_of(self, path) -> Optional[tuple[Channel, str]]:
        """The channel whose send file ``path`` is, and its name, if a send to it may earn
        a lease."""
        if self._listener is None:
            return None
        try:
            p = wire.path_from_wire(path)
        except errors.CircuitError:
            return None
        name = shape.send_file(p)
        if name is None:
            return None
        try:
            channel = self.node.host.get("chan", name)
        except (errors.CircuitError, AttributeError):
            return None
        return (channel, name) if isinstance(channel, Channel) else None

    def _grant(self, answer, lease: tuple[Channel, str]):
        """The answer to a send's first write or put: if the send passed our check, the
        peer may answer the first write of its next sends to this channel itself, until we
        say it ended (circuit.pb.peers).  Said in the answer (`LEASED`), which the peer's
        write ignored before leases.  Not for a rendezvous: there the next send would find
        no reader yet and wait a round trip more than with its first write checked."""
        channel, name = lease
        if wire.is_refusal(answer) or self.closed or not channel.cap:
            return answer
        if channel.closed or channel.removed:
            return answer  # ended since the check
        if channel not in self._leased:
            def ended() -> None:
                # At once: a close or rmdir from the peer itself is answered after this,
                # so its next send is checked again.
                self._leased.pop(channel, None)
                self._say_ended(name)
            self._leased[channel] = ended
            channel.on_end(ended)
        return _LEASED

    def _say_ended(self, name: str) -> None:
        if self.closed or self._listener is None:
            return
        try:
            self._listener.callRemote("ended", name, pbanswer=False)
        except pb.DeadReferenceError:  # gone: the peer's leases went with the connection
            pass

    # -- membership: hosts only ----------------------------------------------------------
    def _member(self, fn) -> Deferred:
        """Membership calls come from members: a client certificate (one that names no
        host) is refused, so a client can never tell the cluster who is alive."""
        if self.peer() is None:
            log.warn("refused a membership call from a client certificate")
            return succeed(wire.refused(errors.NotPermitted.errno,
                                        "a client certificate may not make membership calls"))
        return self._answer(fn)

    def remote_ping(self, rumours):
        return self._member(lambda: self.node.membership.handle_ping(wire.from_json(rumours)))

    def remote_ping_req(self, target_id, target_url, rumours):
        return self._member(lambda: self.node.membership.handle_ping_req(
            str(target_id), str(target_url), wire.from_json(rumours)))

    def remote_sync(self, state):
        return self._member(lambda: self.node.membership.handle_sync(wire.from_json(state)))

    # -- the tree ------------------------------------------------------------------------
    @property
    def _tree(self):
        return self.node.tree

    def remote_getattr(self, path):
        return self._answer(lambda: self._tree.getattr(wire.path_from_wire(path))
                            .addCallback(wire.attr_to_wire))

    def remote_listdir(self, path, after=None):
        """A page of the listing, by name, from after ``after``: [entries, more].  A page is
        about wire.MAX_CHUNK of JSON; a directory of 100,000 elements takes some twenty.  The
        listing the first page was cut from serves the pages after it (a snapshot, as a local
        opendir takes one), so a big listing is made once, not once a page."""
        path = wire.path_from_wire(path)

        def page(listing):
            _, names, entries = self._listing = listing
            i = 0 if after is None else bisect.bisect_right(names, after)
            out, size = [], 0
            while i < len(entries) and size <= wire.MAX_CHUNK:
                out.append(entries[i])
                size += len(entries[i][0]) + 40
                i += 1
            if i == len(entries):
                self._listing = None
            return [out, i < len(entries)]

        def listing(entries):
            entries = sorted(entries, key=lambda e: e[0])
            return path, [name for name, _ in entries], [[name, wire.attr_to_wire(a)] for name, a in entries]
        if after is not None and self._listing is not None and self._listing[0] == path:
            return self._answer(page, self._listing)
        return self._answer(lambda: self._tree.listdir(path).addCallback(listing).addCallback(page))

    def remote_mkdir(self, path):
        """Answers the new directory's attributes: the caller's next question."""
        path = wire.path_from_wire(path)
        return self._answer(lambda: self._tree.mkdir(path).addCallback(
            lambda _: self._tree.getattr(path)).addCallback(wire.attr_to_wire))

    def remote_rmdir(self, path):
        return self._answer(lambda: self._tree.rmdir(wire.path_from_wire(path)))

    def remote_unlink(self, path):
        return self._answer(lambda: self._tree.unlink(wire.path_from_wire(path)))

    def remote_rename(self, path, new_path):
        return self._answer(lambda: self._tree.rename(wire.path_from_wire(path), wire.path_from_wire(new_path)))

    def remote_setattr(self, path, size, mode, mtime):
        return self._answer(lambda: self._tree.setattr(wire.path_from_wire(path), size, mode, mtime)
                            .addCallback(wire.attr_to_wire))

    def remote_open(self, path, flags, mode, hid):
        """Open with the caller's own handle number, so it can send reads and writes
        right behind the open without waiting for its answer (PB keeps the order)."""
        if not isinstance(hid, int):
            return succeed(wire.refused(errors.Invalid.errno, "a bad handle number"))
        here = (self.node.host_id,) + wire.path_from_wire(path)
        return self._answer(lambda: self.session.open(here, wire.flags_from_wire(flags), self._caller,
                                                      int(mode), number=hid)
                            .addCallback(lambda n: bool(self.session.file(n).handle.streaming)))

    def remote_opened(self, path, flags, mode, hid, method, *args):
        """Open, then do ``method`` (read, write, flush, release) on it: one message for the
        common open-then-read or open-then-write.  A refused open refuses the method."""
        if method not in ("read", "write", "flush", "release"):
            return succeed(wire.refused(errors.Invalid.errno, f"cannot open and then {method!r}"))
        self.remote_open(path, flags, mode, hid)  # local opens are done at once
        lease = self._lease_of(path) if method == "write" else None
        answer = getattr(self, "remote_" + method)(*args)  # args begin with the handle
        if lease is not None:  # the send's first write: a lease if it passed our check
            answer.addCallback(self._grant, lease)
        return answer

    def _handle(self, hid) -> IHandle:
        return self.session.file(hid).handle  # a refused open's failure, for what followed it

    def _settle(self, hid, how: str) -> None:
        """confirm or unread a handle's offer; a handle gone or refused has none."""
        try:
            handle = self._handle(hid)
        except errors.CircuitError:
            return
        getattr(handle, how)()

    def remote_read(self, hid, offset, size, call_id):
        """Answers the data with [size, offered, available]: the file's whole size when
        known, so the caller can answer the read at the end itself; whether the read
        took a message, which the caller's host then confirms or gives back (true, or
        the offer's tag when later ones may follow it: Offer.tag); and for
        a stream that reads take nothing from, how much of it is there now, so the
        caller can read that far ahead."""
        size = min(int(size), wire.MAX_CHUNK)

        def read():
            handle = self._handle(hid)
            return handle.read(int(offset), size).addCallback(
                lambda data: wire.Data([handle.known_size(), handle.offer_tag() or handle.offered(),
                                        handle.available()], data))
        return self._blocking(call_id, read)

    def remote_confirm(self, hid, release=False):
        """The caller's host handed the message to a reader still there (and, having
        read it whole, is done with the handle)."""
        self._settle(hid, "confirm")
        if release:
            self.session.release(hid)
        return wire.ok()

    def remote_write(self, hid, offset, data, call_id):
        if not isinstance(data, bytes) or len(data) > wire.MAX_CHUNK:
            return succeed(wire.refused(errors.Invalid.errno, "a write must be bytes, at most 256 KiB"))
        def write():
            handle = self._handle(hid)
            return handle.write(int(offset), data).addCallback(
                lambda n: wire.SETTLED if handle.settled else n)
        return self._blocking(call_id, write)

    def remote_flush(self, hid, call_id):
        """Deliver now or answer EAGAIN: a writer on another host never waits inside a
        channel here, because only its own host can tell, at the moment its message
        is taken, whether it is still there (it asks before every attempt)."""
        return self._blocking(call_id, lambda: self._handle(hid).try_flush())

    def remote_flush_ready(self, hid, call_id):
        """Wait, taking nothing, until a flush would not answer EAGAIN."""
        return self._blocking(call_id, lambda: self._handle(hid).flush_ready())

    # -- whole-file operations: one message each ----------------------------------------
    def _whole(self, data) -> Optional[bytes]:
        if not isinstance(data, bytes) or len(data) > wire.MAX_CHUNK:
            return wire.refused(errors.Invalid.errno, "a content must be bytes, at most 256 KiB")
        return None

    def remote_put(self, path, hid, data):
        """Open, write ``data`` and deliver it now, or answer EAGAIN with the file left open
        as ``hid`` for flush_ready and flush: as with remote_flush, a writer on another
        host never waits inside a channel here."""
        refused = self._whole(data) or (None if isinstance(hid, int) else
                                        wire.refused(errors.Invalid.errno, "a bad handle number"))
        if refused is not None:
            return succeed(refused)
        here = (self.node.host_id,) + wire.path_from_wire(path)
        lease = self._lease_of(path)

        async def put():
            await self.session.open(here, whole.PUT, self._caller, number=hid, pipelined=False)
            try:
                handle = self.session.file(hid).handle
                await handle.write(0, data)
                await handle.try_flush()
            except errors.WouldBlock:
                raise  # kept open: the caller waits with flush_ready, then flushes
            except BaseException:
                await self.session.release(hid)
                raise
            await self.session.release(hid)
        answer = self._answer(lambda: ensureDeferred(put()))
        if lease is not None:
            answer.addCallback(self._grant, lease)
        return answer

    def remote_make(self, path, content):
        """Make an element and deliver its first file (`circuit.tree.whole.make`)."""
        refused = self._whole(content)
        if refused is not None:
            return succeed(refused)
        return self._answer(lambda: self._tree.make(wire.path_from_wire(path), content, self._caller))

    def remote_make_wait(self, path, content, call_id):
        """Make a process, then answer its exit record once it has exited: a spawn and
        its wait in one round trip.  Cancelled (remote_cancel), only the wait ends."""
        refused = self._whole(content)
        if refused is not None:
            return succeed(refused)
        return self._blocking(call_id, lambda: self._tree.make(wire.path_from_wire(path), content,
                                                               self._caller, wait=True))

    def remote_release(self, hid):
        return self._answer(lambda: self.session.release(hid))

    def remote_unread(self, hid):
        """The caller's reader left after the first read was answered: give it back."""
        self._settle(hid, "unread")
        return wire.ok()

    # -- select clauses on this host ----------------------------------------------------
    def _clause(self, path, op, spelled):
        return self._tree.clause(wire.path_from_wire(path), str(op), str(spelled))

    def remote_clause_check(self, path, op, spelled):
        return self._answer(lambda: self._clause(path, op, spelled).addCallback(lambda _: None))

    def remote_clause_ready(self, path, op, spelled, call_id):
        return self._blocking(call_id, lambda: self._clause(path, op, spelled)
                              .addCallback(lambda c: c.ready()).addCallback(lambda _: None))

    def remote_clause_commit(self, path, op, spelled):
        def commit(clause):
            return maybeDeferred(clause.commit).addCallback(self._commit_to_wire, path)
        return self._answer(lambda: self._clause(path, op, spelled).addCallback(commit))

    def _commit_to_wire(self, value, path):
        """Small committed values travel whole; a large one is held here and read in
        chunks (remote_held_read); a stream is named by its path, to be opened."""
        if not isinstance(value, bytes):
            return ["stream"]
        if len(value) <= wire.MAX_CHUNK:
            return wire.Data("bytes", value)
        key = next(self._ids)
        self._held[key] = value
        return ["held", key, len(value)]

    def remote_held_read(self, key, offset, size):
        value = self._held.get(key)
        if value is None:
            return wire.refused(errors.NotFound.errno, "no such held value")
        return wire.ok(value[int(offset): int(offset) + min(int(size), wire.MAX_CHUNK)])

    def remote_held_drop(self, key):
        self._held.pop(key, None)
        return wire.ok()

    def remote_clause_undo(self, path, op, spelled, value, held_key):
        if held_key:
            value = self._held.pop(held_key, None)

        def undo(clause):
            if clause.undo is not None and isinstance(value, bytes):
                clause.undo(value)
        return self._answer(lambda: self._clause(path, op, spelled).addCallback(undo))



def listen(reactor, addr: str, credentials, root: PeerRoot, commands=None) -> Deferred:
    """Deferred[IListeningPort]: serve ``root`` to peers at ``HOST:PORT`` over mutual TLS,
    and with ``commands`` (a factory of the command line's protocol) ``circuit --url`` on
    the same port, for a client that asks for it at the handshake (`circuit.tls.alpn`)."""
    from twisted.internet import endpoints

    from circuit.control.wire import ALPN
    from circuit.tls.alpn import ByALPN
    from circuit.tls.options import server_options
    host, _, port = addr.rpartition(":")
    endpoint = endpoints.SSL4ServerEndpoint(reactor, int(port), server_options(credentials),
                                            interface=host.strip("[]"))
    factory = pb.PBServerFactory(root, security=strict_security(references=True))
    factory.protocol = Broker
    return endpoint.listen(ByALPN(factory, {ALPN: commands} if commands is not None else {}))
