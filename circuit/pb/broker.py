"""What both ends of a peer connection share: the jelly security and the tuned broker."""
from __future__ import annotations

from twisted.internet.abstract import FileDescriptor
from twisted.spread import jelly, pb

from circuit.pb.banana import LinearDecoding
from circuit.tls.refusal import say_refused


def strict_security(references: bool = False) -> jelly.SecurityOptions:
    """Plain data only: lists, tuples, dicts, strings, bytes, numbers, None; and with
    ``references``, a reference to an object of the other end to call back (the lease
    listener a host hands over with `hello`: it runs nothing here, and every remote_*
    method checks the type of what it is given).

    Our own object rather than PB's global one, which any import may widen with
    setUnjellyableForClass; circuit registers no classes at all.
    """
    security = jelly.SecurityOptions()
    security.allowBasicTypes()
    if references:
        security.allowTypes("remote")
    return security


def write_now(broker) -> None:
    """Write what the connection holds to its socket now, not at the reactor's next turn
    (`Broker.sendEncoded` does it for every message).  A confirm must be in the kernel
    before the reader it is for has the bytes: a view answers its reader as soon as
    hand_over returns, and a process (or host) that dies after that and before the
    reactor's next turn would take the confirm with it, and the owner would give the
    message to the next reader too.  Once in the kernel it leaves even if we die.  And
    every round trip is shorter by the two loop turns of each side's write."""
    transport = broker.transport  # TLS, over TCP
    while transport is not None and not isinstance(transport, FileDescriptor):
        # Twisted's TLS transport gathers small writes until the reactor's next turn
        # (BufferingTLSTransport); tests/cluster/test_edges.py fails if this stops working.
        aggregator = vars(transport).get("_aggregator")
        if aggregator is not None:
            aggregator.flush()
        transport = vars(transport).get("transport")
    if transport is not None and transport.connected and not transport.disconnecting:
        # What the reactor would do on its next turn; a failure here is seen there too
        # (the socket stays registered for writing), so it is left to it.  Not while
        # closing: there doWrite's last call tells the reactor to finish the close.
        transport.doWrite()


class Broker(LinearDecoding, pb.Broker):
    """Small request/answer messages: no Nagle delay (40 ms with delayed ACKs), each written
    to the socket as it is sent (`write_now`), and keepalive; Banana decoded in linear time
    (circuit/pb/banana.py).

    A connection lost to a refused TLS handshake (a certificate from another CA, none, an
    expired one) is said so on both sides: logged here, and told to a dialling factory
    that waits for the connection (`lost_before_ready`), instead of a silent timeout."""

    ready = False

    def connectionMade(self):
        super().connectionMade()
        self.transport.setTcpNoDelay(True)
        self.transport.setTcpKeepAlive(True)

    def connectionReady(self):
        self.ready = True
        super().connectionReady()

    def sendEncoded(self, obj):
        super().sendEncoded(obj)
        if self.ready:  # before: the handshake's own writes, which Twisted orders itself
            write_now(self)

    def connectionLost(self, reason):
        refusal = say_refused(self.transport, reason) if not self.ready else ""
        lost = getattr(self.factory, "lost_before_ready", None)
        if lost is not None and not self.ready:
            lost(reason, refusal)
        super().connectionLost(reason)
