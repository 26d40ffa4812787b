"""The host's end of the control socket: each connection runs one command of
`circuit.commands` for the ``circuit`` command line, and is its caller.

The socket is the starting user's alone (mode 0600 in a directory of theirs), as
the mount is, and acts with the host's authority.  The same protocol serves
``circuit --url`` from other machines on the host's TLS port (`circuit.tls.alpn`):
there the cluster CA vouches for the caller, and a client certificate may use
elements but not stop the host nor make it join (``client_certificate``), as over
PB.  A client that goes (Ctrl-C, kill -9) closes the connection: its
command is cancelled, so nothing is taken for it and nothing it had not finished
writing is delivered.  Output is paced by the socket: a command reads on only
while the client keeps up.
"""
from __future__ import annotations

import os
from typing import Optional

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from circuit.commands import verbs
from circuit.control import wire
from circuit.interfaces import ICaller, ICircuit
from circuit.tree.callers import peer_gone
from circuit.tree.session import Session

log = Logger("circuit")

MAX_FILES = 1024  # a command opens one file at a time; this only bounds a misbehaving client


@implementer(ICaller, IPushProducer)
class ControlProtocol(Protocol):
    def __init__(self, circuit: ICircuit, clock):
        self.circuit = circuit
        self.clock = clock
        self.session = Session(circuit, max_files=MAX_FILES)
        self.stdin = verbs.Stdin(wanted=self._want_input, pause=lambda: self.transport.pauseProducing(),
                                 resume=lambda: self.transport.resumeProducing())
        self.running: Optional[Deferred] = None
        self.gone = False
        self._buffer = bytearray()
        self._paused: Optional[list] = None

    client_certificate = False  # the local socket: the host's own user

    def alive(self) -> bool:
        return not self.gone and not peer_gone(self.transport)

    # -- from the client ------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.client_certificate = _by_client_certificate(self.transport)
        self.transport.registerProducer(self, True)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        try:
            for kind, payload in wire.frames(self._buffer):
                self._frame(kind, payload)
        except ValueError as e:
            log.warn("control socket: {why}; connection dropped", why=str(e))
            self.transport.abortConnection()

    def _frame(self, kind: bytes, payload: bytes) -> None:
        if kind == wire.ARGV and self.running is None:
            self._start(wire.words_from_wire(payload))
        elif kind == wire.INPUT:
            self.stdin.data(payload)
        elif kind == wire.END:
            self.stdin.eof()
        else:
            raise ValueError(f"an unexpected frame {kind!r}")

    def _start(self, argv: list) -> None:
        ctx = verbs.Context(self.circuit, self.session, self, out=self._out, err=self._err,
                            stdin=self.stdin, writable=self._writable, clock=self.clock)
        self.running = verbs.run_argv(ctx, argv)
        self.running.addCallbacks(self._exit, lambda f: f.trap(CancelledError))

    # -- to the client --------------------------------------------------------------------
    def _want_input(self) -> None:
        self.transport.write(wire.frame(wire.WANT))

    def _out(self, data: bytes) -> None:
        for i in range(0, len(data), wire.MAX_FRAME):
            self.transport.write(wire.frame(wire.OUT, data[i:i + wire.MAX_FRAME]))

    def _err(self, data: bytes) -> None:
        self.transport.write(wire.frame(wire.ERR, data))

    def _exit(self, code: int) -> None:
        if not self.gone:
            self.transport.write(wire.frame(wire.EXIT, code.to_bytes(4, "big")))
            self.transport.loseConnection()

    def _writable(self) -> Deferred:
        if self._paused is None:
            return succeed(None)
        d: Deferred = Deferred()
        self._paused.append(d)
        return d

    def pauseProducing(self) -> None:
        if self._paused is None:
            self._paused = []

    def resumeProducing(self) -> None:
        paused, self._paused = self._paused, None
        for d in paused or ():
            d.callback(None)

    def stopProducing(self) -> None:
        pass  # connectionLost follows

    def connectionLost(self, reason) -> None:
        self.gone = True
        if self.running is not None and not self.running.called:
            self.running.cancel()
        self.session.close()


def _by_client_certificate(transport) -> bool:
    """Over TLS: whether the caller's certificate is a client's (not a member's)."""
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return False  # a Unix socket
    from circuit.tls.authority import role_of
    cert = get()
    return cert is None or role_of(cert.to_cryptography()) != "host"


class ControlFactory(Factory):
    def __init__(self, circuit: ICircuit, clock):
        self.circuit = circuit
        self.clock = clock

    def buildProtocol(self, addr) -> ControlProtocol:
        return ControlProtocol(self.circuit, self.clock)


def listen(reactor, data_dir: str, circuit: ICircuit) -> Deferred:
    """Deferred[IListeningPort]: the control socket for DATA, the starting user's alone."""
    path = wire.socket_path(data_dir)
    directory = os.path.dirname(path)
    if directory == wire.private_dir():
        os.makedirs(directory, mode=0o700, exist_ok=True)
        wire.check_private(directory)
    # wantPID: a lock beside the socket, so a socket left by a daemon that died is
    # replaced, and one in use by a live daemon is not.
    endpoint = UNIXServerEndpoint(reactor, path, mode=0o600, wantPID=True)
    return endpoint.listen(ControlFactory(circuit, reactor))
