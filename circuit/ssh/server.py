"""``--sftp HOST:PORT``: the whole circuit to OpenSSH clients, through twisted.conch.

One `CircuitUser` per SSH connection (public keys only, from an authorized_keys
file) holds that connection's `Session`: every file it opens through sftp or
exec is there, and is released, and every wait cancelled, when it logs out.
A session channel serves either the ``sftp`` subsystem (`circuit.ssh.sftp`) or
one exec command (`circuit.commands`); there is no shell and no pty.
"""
from __future__ import annotations

import os
import struct
from functools import cached_property
from typing import Optional

from twisted.conch.avatar import ConchUser
from twisted.conch.checkers import SSHPublicKeyChecker
from twisted.conch.interfaces import IConchUser, ISession, ISFTPServer
from twisted.conch.ssh.connection import SSHConnection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.session import SSHSession
from twisted.conch.ssh.transport import DISCONNECT_BY_APPLICATION, SSHServerTransport
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from circuit import errors
from circuit.interfaces import ICaller, ICircuit
from circuit.commands import verbs
from circuit.ssh.keys import AuthorizedKeysFile, fingerprint, host_key
from circuit.ssh.sftp import CONCH_LOG, SFTPServer, SFTPSubsystem
from circuit.tree.callers import peer_gone
from circuit.tree.session import Session

log = Logger("circuit.ssh")

MAX_FILES = 1024  # open files per SSH connection (sftp handles and exec commands together)


# conch's narration from our subclasses keeps conch's namespace, so that a log
# filter for conch (circuit start keeps its warnings only) covers it too.  (A
# Logger class attribute would take the subclass's name.)
conch_log = property(lambda self: CONCH_LOG)


class CircuitUser(ConchUser):
    """The avatar: one logged-in SSH connection."""

    _log = conch_log

    def __init__(self, circuit: ICircuit, name: bytes, max_files: int = MAX_FILES, clock=None):
        super().__init__()
        self.circuit = circuit
        self.clock = clock
        self.name = name
        self.session = Session(circuit, max_files=max_files)
        self.connected = True
        self.channelLookup[b"session"] = SessionChannel
        self.subsystemLookup[b"sftp"] = SFTPSubsystem

    def __conform__(self, interface):
        # conch's SFTP protocol asks ISFTPServer(avatar): one server per sftp channel,
        # without registering global adapters.
        if interface is ISFTPServer:
            return SFTPServer(self)
        return None

    def here(self) -> bool:
        """Logged in, and the client's end of the TCP connection still open: asked of the
        socket itself, since the reactor may not have read that end yet."""
        if not self.connected:
            return False
        conn = getattr(self, "conn", None)  # conch's connection service sets avatar.conn
        tcp = getattr(getattr(conn, "transport", None), "transport", None)
        return tcp is None or not peer_gone(tcp)

    def logout(self) -> None:
        self.connected = False
        self.session.close()  # cancels what it waits on, releases what it left open


@implementer(IRealm)
class CircuitRealm:
    def __init__(self, circuit: ICircuit, max_files: int = MAX_FILES, clock=None):
        self.circuit = circuit
        self.max_files = max_files
        self.clock = clock

    def requestAvatar(self, avatarId, mind, *interfaces):
        if IConchUser not in interfaces:
            raise NotImplementedError("only SSH users here")
        user = CircuitUser(self.circuit, avatarId, self.max_files, self.clock)
        return IConchUser, user, user.logout


class SessionChannel(SSHSession):
    """A session channel: the sftp subsystem, or one exec command."""

    _log = conch_log

    _subsystem = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._full: list = []  # commands waiting for the client's window
        self.held = False  # the command holds enough of the client's input (see _Connection)

    def hold(self) -> None:
        self.held = True

    def let_go(self) -> None:
        self.held = False
        owed = self.localWindowSize - self.localWindowLeft
        if owed > 0:
            self.conn.adjustWindow(self, owed)

    @cached_property
    def _session(self) -> ISession:
        session = self.session = CommandSession(self)
        return session

    def request_subsystem(self, data: bytes) -> int:
        self._subsystem = bool(super().request_subsystem(data))
        return self._subsystem

    def request_pty_req(self, data: bytes) -> int:
        return 0  # no terminals: commands only (ssh says "PTY allocation request failed")

    def eofReceived(self) -> None:
        if self._subsystem:
            # OpenSSH's SendEnv makes conch create a session object even for sftp,
            # and EOF would then go to it and the channel never close (sftp hangs
            # at exit): a subsystem's EOF closes its channel, with status 0 as
            # sshd's sftp-server exits (scp fails on ssh's -1 without it).
            self.conn.sendRequest(self, b"exit-status", struct.pack(">L", 0))
            self.conn.sendClose(self)
            return
        super().eofReceived()

    # Flow control for exec output: a command reads on only once what it wrote has
    # gone out (conch buffers what the client's window cannot take, and copies
    # that buffer at every window adjust: it must stay one read's worth).
    def addWindowBytes(self, data) -> None:
        super().addWindowBytes(data)
        if not self.buf and self._full:
            full, self._full = self._full, []
            for d in full:
                d.callback(None)

    def writable(self) -> Deferred:
        if not self.buf:
            return succeed(None)
        d: Deferred = Deferred()
        self._full.append(d)
        return d


class _Connection(SSHConnection):
    """conch's connection, except that a channel holding back its input (`SessionChannel.hold`)
    is given no more window until it lets go: the client then waits, not the host's memory."""

    _log = conch_log

    def adjustWindow(self, channel, bytesToAdd):
        if getattr(channel, "held", False):
            return  # given back whole by SessionChannel.let_go
        super().adjustWindow(channel, bytesToAdd)


class _Stdin:
    """The transport conch writes the client's standard input to."""

    def __init__(self, stdin: verbs.Stdin):
        self._stdin = stdin

    def write(self, data: bytes) -> None:
        self._stdin.data(data)

    def writeSequence(self, seq) -> None:
        self._stdin.data(b"".join(seq))

    def loseConnection(self) -> None:
        pass  # the channel is closing: CommandSession.closed cancels the command


@implementer(ISession, ICaller)
class CommandSession:
    """One exec request on a channel; also its caller, there until the channel closes."""

    def __init__(self, channel: SessionChannel):
        self.channel = channel
        self.user: CircuitUser = channel.avatar
        self.stdin = verbs.Stdin(pause=channel.hold, resume=channel.let_go)
        self.running: Optional[Deferred] = None
        self.gone = False

    def alive(self) -> bool:
        return not self.gone and self.user.here()

    def getPty(self, term, windowSize, modes):
        raise errors.NotPermitted("no terminals here")

    def windowChanged(self, newWindowSize):
        pass

    def openShell(self, proto):
        proto.makeConnection(_Stdin(self.stdin))
        proto.errReceived(b"circuit: no shell here; give one command (ssh HOST help lists them)\n")
        proto.processEnded(Failure(ProcessTerminated(exitCode=2)))

    def execCommand(self, proto, command: bytes):
        # Connected first: conch passes input, and sends output, only once it is.
        proto.makeConnection(_Stdin(self.stdin))
        ctx = verbs.Context(self.user.circuit, self.user.session, self,
                            out=proto.outReceived, err=proto.errReceived, stdin=self.stdin,
                            writable=self.channel.writable, clock=self.user.clock)
        self.running = verbs.run(ctx, command)

        def ended(code: int) -> None:
            self.running = None
            if not self.gone:
                proto.processEnded(Failure(ProcessDone(0) if code == 0 else ProcessTerminated(exitCode=code)))

        def cancelled(failure):
            failure.trap(CancelledError)  # the channel went first
        self.running.addCallbacks(ended, cancelled)

    def eofReceived(self):
        self.stdin.eof()

    def closed(self):
        self.gone = True
        if self.running is not None:
            self.running.cancel()  # nothing is taken for it, nothing half-written is delivered


class _Transport(SSHServerTransport):
    def connectionMade(self):
        # Commands answer in a few small packets (data, exit-status, close): without
        # this, Nagle holds each behind the client's ACK of the one before.
        self.transport.setTcpNoDelay(True)
        super().connectionMade()

    def receiveError(self, reasonCode, description):
        # Every OpenSSH client says goodbye with "disconnected by application": that is
        # the end of a session, not an error worth an operator's attention.
        if reasonCode == DISCONNECT_BY_APPLICATION:
            self._log.debug("the client hung up: {description}", description=description)
            return
        super().receiveError(reasonCode, description)


def factory(circuit: ICircuit, data_dir: str, authorized_keys: str, max_files: int = MAX_FILES,
            clock=None) -> SSHFactory:
    key = host_key(data_dir)
    f = SSHFactory()
    f.protocol = _Transport
    f.services = {**SSHFactory.services, b"ssh-connection": _Connection}
    f.portal = Portal(CircuitRealm(circuit, max_files, clock),
                      [SSHPublicKeyChecker(AuthorizedKeysFile(authorized_keys))])
    f.publicKeys = {b"ssh-ed25519": key.public()}
    f.privateKeys = {b"ssh-ed25519": key}
    f.fingerprint = fingerprint(key)
    return f


@inlineCallbacks
def listen(reactor, address: str, circuit: ICircuit, data_dir: str, authorized_keys: str,
           max_files: int = MAX_FILES):
    """Deferred[IListeningPort]: SSH served at HOST:PORT (port 0 picks one)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    f = factory(circuit, data_dir, authorized_keys, max_files, clock=reactor)
    endpoint = serverFromString(reactor, f"tcp:{int(port)}:interface={host.replace(':', chr(92) + ':')}")
    listening = yield endpoint.listen(f)
    bound = listening.getHost()
    log.info("serving the circuit over SSH at {host}:{port} (host key {fp}; keys from {keys})",
             host=bound.host, port=bound.port, fp=f.fingerprint, keys=authorized_keys)
    addr_file = os.path.join(data_dir, "ssh")
    with open(addr_file + ".new", "w") as out:
        out.write(f"{bound.host}:{bound.port}\n")
    os.replace(addr_file + ".new", addr_file)
    return listening
