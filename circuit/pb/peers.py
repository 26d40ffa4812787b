"""Connections to other hosts: one mutual-TLS PB connection per pair of hosts, made on demand.

A connection is dialled when first needed and kept; when it breaks, every call
waiting on it fails at once, and the membership is told (it probes that peer
straight away).  No call waits on a connection that is not there: dialling,
the TLS handshake and the first answer all have a deadline.

A host that dials another offers it, with its greeting, a session of its own on
that connection (`Peers.adopt`): the other host, holding no connection to it yet,
makes its calls there rather than dialling back, so a pair of hosts holds one
connection, not two (a connection costs each end some 55 KiB and a descriptor,
and probing makes every host call every member).  Two hosts that dial each other
at the same moment keep both connections, each used one way: a connection the
other side may be using is never hung up for being one too many.
"""
from __future__ import annotations

from typing import Callable, Optional
from urllib.parse import urlparse

from service_identity import VerificationError
from twisted.internet import endpoints
from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError, fail, succeed
from twisted.internet.error import ConnectError, ConnectionLost, ConnectionDone
from twisted.logger import Logger
from twisted.spread import pb

from circuit import errors
from circuit.pb import wire
from circuit.pb.broker import Broker, strict_security
from circuit.pb.deadlines import Deadlines
from circuit.tls.options import ClientTLS

log = Logger("circuit.pb")

CONNECT_TIMEOUT = 3.0


def parse_url(url: str) -> tuple[str, int, str]:
    """``circuit://HOST:PORT/XID`` -> (host, port, XID); Invalid otherwise."""
    u = urlparse(url)
    host_id = u.path.strip("/")
    if u.scheme != "circuit" or not u.hostname or not u.port or not host_id:
        raise errors.Invalid(f"not a circuit URL: {url!r} (want circuit://HOST:PORT/X...)")
    return u.hostname, u.port, host_id


class _Factory(pb.PBClientFactory):
    """Fires ``ready`` once PB has chosen its dialect: nothing may be sent before."""

    protocol = Broker

    def __init__(self, references: bool):
        # A host's connection is served both ways: the peer hands over its lease listener.
        super().__init__(security=strict_security(references=references))
        self.ready: Deferred = Deferred()

    def clientConnectionMade(self, broker) -> None:
        if not self.ready.called:
            self.ready.callback(broker)

    def lost_before_ready(self, reason, tls_refusal: str) -> None:
        if not self.ready.called:
            if tls_refusal:
                self.ready.errback(errors.NotPermitted(
                    f"the TLS handshake failed: {tls_refusal} (is that host of this cluster's CA?)"))
            else:
                self.ready.errback(reason)


class Peers:
    def __init__(self, reactor, credentials, on_lost: Optional[Callable[[str], None]] = None,
                 tls: Optional[ClientTLS] = None,
                 serve: Optional[Callable[[pb.Broker], pb.Referenceable]] = None):
        self._reactor = reactor
        self._credentials = credentials
        self._tls = tls or ClientTLS(credentials)  # one context for every connection dialled
        self._refs: dict[str, pb.RemoteReference] = {}
        self._dialling: dict[str, list[Deferred]] = {}
        self._brokers: dict[str, pb.Broker] = {}
        self._on_lost = on_lost or (lambda peer_id: None)
        # Channels each peer lets us send to without its check at the first write, on
        # the connection that granted them: peer -> {channel name: broker} (see leased).
        self._leases: dict[str, dict[str, pb.Broker]] = {}
        self._deadlines = Deadlines(reactor)
        # A host's: the session a peer may call on a connection we dialled (PeerRoot's);
        # a client's Peers has none and serves nothing.
        self._serve = serve
        # Connections we dialled that the peer makes its calls on, while ours go on another
        # (both dialled at once): kept open for it, hung up at close.
        self._spare: set[pb.Broker] = set()

    def reference(self, peer_id: Optional[str], url: str) -> Deferred:
        """Deferred[RemoteReference] to the peer's session, dialling if needed."""
        host, port, url_id = parse_url(url)
        peer_id = peer_id or url_id
        ref = self._refs.get(peer_id)
        if ref is not None:
            return succeed(ref)
        waiters = self._dialling.get(peer_id)
        if waiters is None:
            waiters = self._dialling[peer_id] = []
            self._dial(peer_id, host, port).addBoth(self._dialled, peer_id, waiters)
        waiter: Deferred = Deferred()
        waiters.append(waiter)
        return waiter

    def back(self, peer_id: str) -> None:
        """The membership says the peer is back (joined, or a cut healed): calls from now on
        dial afresh rather than wait on a dial begun while it could not be reached, whose
        SYN may be lost and not sent again before that dial's deadline.  The earlier dial
        goes on for the calls that asked before."""
        self._dialling.pop(peer_id, None)

    def _dialled(self, result, peer_id: str, waiters: list) -> None:
        if self._dialling.get(peer_id) is waiters:
            del self._dialling[peer_id]
        if isinstance(result, tuple):
            broker, ref, peer_uses_it = result
            if peer_id in self._refs:  # a later dial (see back) or the peer's own got there first
                if peer_uses_it:
                    self._spare.add(broker)
                    broker.notifyOnDisconnect(lambda: self._spare.discard(broker))
                else:
                    broker.transport.loseConnection()
                ref = self._refs[peer_id]
            else:
                self._use(peer_id, broker, ref)
            for w in waiters:
                w.callback(ref)
        else:
            for w in waiters:
                w.errback(result)

    def _dial(self, peer_id: str, host: str, port: int) -> Deferred:
        """Deferred[(broker, reference)]: connected, and the peer has answered."""
        endpoint = endpoints.SSL4ClientEndpoint(self._reactor, host, port,
                                                self._tls.to(peer_id),
                                                timeout=CONNECT_TIMEOUT)
        factory = _Factory(references=self._serve is not None)
        made: list = []  # the connection, once TCP has connected
        connected = endpoint.connect(factory).addCallback(lambda broker: made.append(broker) or factory.ready)
        connected.addTimeout(CONNECT_TIMEOUT, self._reactor)

        def check(broker):
            # With TLS 1.3 a refused certificate shows only after the handshake
            # "succeeds": ask something, with a deadline, before trusting it.
            ref = broker.remoteForName("root")
            listener = _LeaseListener(self, peer_id, broker)
            if self._serve is None:
                hello = ref.callRemote("hello", listener).addCallback(lambda _: False)
            else:  # answers whether the peer makes its calls to us here (adopt)
                hello = ref.callRemote("greet", listener, self._serve(broker)).addCallback(wire.unwrap)
            return hello.addTimeout(CONNECT_TIMEOUT, self._reactor).addCallback(
                lambda peer_uses_it: (broker, ref, bool(peer_uses_it)))

        def failed(f):  # a handshake or an answer that never came: hang up, not keep it open
            for broker in made:
                if broker.transport is not None and not broker.disconnected:
                    broker.transport.abortConnection()
            return f
        return connected.addCallback(check).addErrback(failed)

    def adopt(self, peer_id: str, broker: pb.Broker, session: pb.RemoteReference) -> bool:
        """The peer dialled us and offers ``session`` for our calls to it on that
        connection: taken (True) when we hold no connection to it, so that the pair keeps
        one.  A dial of ours under way then serves its callers with this one, and hangs
        up when it is made, unless the peer took it likewise (each dialled the other)."""
        if peer_id in self._refs or broker.disconnected:
            return False
        # Before any call of ours (PB keeps a connection's order): where the peer says
        # that a lease it grants us on this connection ended.
        session.callRemote("hello", _LeaseListener(self, peer_id, broker), pbanswer=False)
        self._use(peer_id, broker, session)
        waiters = self._dialling.pop(peer_id, None)
        if waiters:
            ready, waiters[:] = list(waiters), []  # the dial's own end then answers nobody twice
            for w in ready:
                w.callback(session)
        return True

    def _use(self, peer_id: str, broker: pb.Broker, ref: pb.RemoteReference) -> None:
        self._brokers[peer_id], self._refs[peer_id] = broker, ref
        broker.notifyOnDisconnect(lambda: self._lost(peer_id, broker))

    def _lost(self, peer_id: str, broker) -> None:
        if self._brokers.get(peer_id) is broker:
            del self._brokers[peer_id]
            self._refs.pop(peer_id, None)
            self._leases.pop(peer_id, None)
            self._on_lost(peer_id)

    # -- leases: sends without the owner's check at the first write ----------------------
    # A first write to a channel's send file waits for its owner's check (closed? removed?),
    # so that bash's builtin echo, which ignores close(2), still sees a refusal.  Once a
    # send to a buffered channel has passed that check, the owner grants this connection a
    # lease in its answer (`circuit.pb.server.PeerSession._grant`): it will say "ended" on
    # the same connection when the channel closes or goes.  Until then this host answers
    # the first write itself, and the send is one message (`put`) at the close: one round
    # trip, not two.
    def connection(self, peer_id: str) -> Optional[pb.Broker]:
        """The connection to the peer now (a token for `granted`); None while there is none."""
        return self._brokers.get(peer_id)

    def granted(self, peer_id: str, channel: str, connection) -> None:
        """The owner granted a lease on ``channel`` in its answer to a send asked on
        ``connection`` (still the connection now: a lease lives and dies with it)."""
        if connection is not None and self._brokers.get(peer_id) is connection:
            self._leases.setdefault(peer_id, {})[channel] = connection

    def leased(self, peer_id: str, channel: str) -> bool:
        connection = self._leases.get(peer_id, {}).get(channel)
        return connection is not None and connection is self._brokers.get(peer_id)

    def _ended(self, peer_id: str, connection, channel: str) -> None:
        held = self._leases.get(peer_id)
        if held is not None and held.get(channel) is connection:
            del held[channel]

    def call(self, peer_id: Optional[str], url: str, method: str, *args, timeout: Optional[float] = None
             ) -> Deferred:
        """Call ``remote_<method>`` and unwrap its answer; connection trouble is HostDown."""
        ref = self._refs.get(peer_id) if peer_id is not None else None
        if ref is not None:  # connected: the common case, spared the URL and a Deferred
            try:
                d = ref.callRemote(method, *args)
            except Exception:  # a connection gone (DeadReferenceError): _trouble says so
                d = fail()
        else:
            try:
                d = self.reference(peer_id, url)
            except errors.CircuitError as e:
                return fail(e)
            d.addCallback(lambda ref: ref.callRemote(method, *args))
        if timeout is not None:
            self._deadlines.add(d, timeout)
        return d.addCallbacks(wire.unwrap, self._trouble, errbackArgs=(peer_id or url,))

    def _trouble(self, failure, who):
        if failure.check(errors.CircuitError, CancelledError):
            return failure
        if failure.check(VerificationError):
            raise errors.NotPermitted(f"host {who}: the host at that address has another host ID "
                                      "(is the URL's ID right?)")
        if failure.check(TimeoutError):
            raise errors.HostDown(f"host {who} did not answer in time")
        if failure.check(pb.PBConnectionLost, pb.DeadReferenceError, ConnectError, ConnectionLost,
                         ConnectionDone):
            raise errors.HostDown(f"host {who} is unreachable ({failure.type.__name__})")
        log.failure("call to {who} failed", failure, who=who)
        raise errors.HostDown(f"host {who}: {failure.getErrorMessage()}")

    def tell(self, peer_id: str, url: str, method: str, *args) -> None:
        """Call ``remote_<method>`` expecting no answer (one message, not two), on the
        connection already made; with none, the owner settles what it was for when it
        notices the connection gone.  In the kernel when this returns (`Broker.sendEncoded`)."""
        ref = self._refs.get(peer_id)
        if ref is None:
            log.info("{method} to {peer} not sent: no connection", method=method, peer=peer_id)
            return
        try:
            ref.callRemote(method, *args, pbanswer=False)
        except pb.DeadReferenceError:
            log.info("{method} to {peer} not sent: the connection is gone", method=method, peer=peer_id)

    def disconnect(self, peer_id: str) -> None:
        self._dialling.pop(peer_id, None)
        broker = self._brokers.pop(peer_id, None)
        self._refs.pop(peer_id, None)
        if broker is not None and broker.transport is not None:
            broker.transport.loseConnection()

    def disconnect_all(self) -> None:
        for peer_id in list(self._brokers):
            self.disconnect(peer_id)
        for broker in list(self._spare):
            if broker.transport is not None:
                broker.transport.loseConnection()

    def close(self, timeout: float = 2.0) -> Deferred:
        """Hang up every connection and fire once each has closed: what was written to them
        and not yet sent (a confirm told without an answer) has then left, so a process may
        exit.  A connection still open after ``timeout`` seconds is aborted."""
        brokers = list(self._brokers.values()) + list(self._spare)
        closed = []
        for broker in brokers:
            d: Deferred = Deferred()
            broker.notifyOnDisconnect(lambda d=d: None if d.called else d.callback(None))
            closed.append(d)
        self.disconnect_all()

        def late(failure):
            failure.trap(TimeoutError)
            for broker in brokers:
                if broker.transport is not None:
                    broker.transport.abortConnection()
        return DeferredList(closed).addTimeout(timeout, self._reactor).addCallbacks(lambda _: None, late)

    def clock(self) -> float:
        return self._reactor.seconds()

    def is_connected(self, peer_id: str) -> bool:
        return peer_id in self._refs


class _LeaseListener(pb.Referenceable):
    """Given to a peer with the first call on a connection: it says here when a lease it
    granted on that connection ends (its channel closed or removed)."""

    def __init__(self, peers: Peers, peer_id: str, connection):
        self._peers, self._peer_id, self._connection = peers, peer_id, connection

    def remote_ended(self, channel) -> None:
        if isinstance(channel, str):
            self._peers._ended(self._peer_id, self._connection, channel)
