"""One TLS port, several protocols, chosen at the handshake by ALPN.

Hosts and programs speak PB to a host's port and offer no ALPN; ``circuit --url`` offers
``circuit-cmd/1`` (`circuit.control.wire.ALPN`) and then speaks the command line's frames,
which the host runs as it runs a command from its own control socket.  So a command from
a machine without a host costs a Python start and a TLS handshake there, not the loading
of Twisted (`circuit/cli/url.py`), and the operator still opens one port.

The protocol is built once the handshake is done (the name is known only then) and put in
place of the chooser under the TLS layer: what follows goes to it directly.
"""
from __future__ import annotations

from twisted.internet.interfaces import IHandshakeListener, IProtocolNegotiationFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from circuit.tls.refusal import say_refused

log = Logger("circuit")


@implementer(IProtocolNegotiationFactory)
class ByALPN(Factory):
    """``default`` for a client that names no protocol (PB); ``named`` for those that do."""

    def __init__(self, default: Factory, named: dict[bytes, Factory]):
        self.default = default
        self.named = named

    def acceptableProtocols(self) -> list[bytes]:
        return list(self.named)

    def doStart(self) -> None:
        for factory in (self.default, *self.named.values()):
            factory.doStart()

    def doStop(self) -> None:
        for factory in (self.default, *self.named.values()):
            factory.doStop()

    def buildProtocol(self, addr) -> "_Choosing":
        chooser = _Choosing(addr)
        chooser.factory = self
        return chooser


@implementer(IHandshakeListener)
class _Choosing(Protocol):
    def __init__(self, addr):
        self.addr = addr

    def connectionMade(self) -> None:
        # The handshake's last flight and the protocol's first words must not wait for
        # Nagle's algorithm (40 ms behind a delayed ACK); PB sets it again, harmlessly.
        self.transport.setTcpNoDelay(True)

    def handshakeCompleted(self) -> None:
        tls = self.transport
        factory = self.factory.named.get(tls.negotiatedProtocol, self.factory.default)
        protocol = factory.buildProtocol(self.addr)
        if protocol is None:
            tls.abortConnection()
            return
        tls.wrappedProtocol = protocol  # the TLS layer's bytes go to it from now on
        protocol.makeConnection(tls)

    def dataReceived(self, data: bytes) -> None:
        # Nothing arrives before the handshake is done, and then the chosen protocol has it.
        log.warn("bytes before a protocol was chosen; connection dropped")
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        say_refused(self.transport, reason)  # a handshake refused: no protocol was made
