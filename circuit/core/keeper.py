"""A host's processes are started by its keeper, and do not outlive the host, however it dies.

The host starts one keeper process (`circuit.core.keeper_process`), small and with few
open descriptors, and asks it over a Unix socket to start each process, passing the
ends of the process's three pipes; the keeper answers with the PID and a pidfd, reaps
the process and reports its exit status.  Why not spawn in the host: Twisted's
``spawnProcess`` asks every open descriptor of the host whether it closes on exec, and
a host in a big cluster holds one connection a member (about 1.5 us a descriptor, 9 ms
a spawn at 5,000 hosts, with the host's loop waiting).  The keeper's spawn costs the
same at any size, and the host's loop only writes a line.

When the host dies the kernel closes the socket, and the keeper kills its processes.
When the keeper dies (someone killed it), the host kills its processes through their
pidfds (their exits could no longer be known), reports them killed, and starts another
keeper for those started after.  The keeper shares the host's process group:
``kill -9 -PGID`` takes everything down at once anyway.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
from collections import deque
from typing import Optional

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IFileDescriptorReceiver
from twisted.internet.process import ProcessReader, ProcessWriter
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from circuit.core import keeper_process

log = Logger("circuit")


class Keeper:
    """Starts the host's processes (``spawn``) through the keeper process."""

    def __init__(self, reactor):
        self._reactor = reactor
        self._line: Optional[_KeeperLine] = None  # the socket to the keeper, while it is there
        self._process: Optional[_KeeperProcess] = None
        self._next = 0
        self._starting: dict[int, _Start] = {}  # asked, not yet answered
        self._waiting: list[_Start] = []  # asked while no keeper was there
        self._running: dict[int, KeptProcess] = {}
        self._stopping = False
        self._since = 0.0
        self._later = None

    def start(self) -> None:
        self._since = self._reactor.seconds()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        script = os.path.abspath(keeper_process.__file__)
        self._process = _KeeperProcess(self)
        try:
            # -I: nothing from the environment or the working directory changes what runs.
            self._reactor.spawnProcess(self._process, sys.executable, [sys.executable, "-I", script],
                                       env={}, childFDs={0: theirs.fileno(), 1: "r", 2: "r"})
            ours.setblocking(False)
            self._reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _LineFactory(self))
        finally:
            ours.close()  # each is the keeper's or the adopted connection's own copy now
            theirs.close()

    def stop(self) -> None:
        """The host stops: the keeper kills what is left (nothing, after a clean stop) and exits."""
        self._stopping = True
        if self._later is not None and self._later.active():
            self._later.cancel()
        waiting, self._waiting = self._waiting, []
        for start in waiting:
            start.close_all()
            start.done.errback(_stopping())
        if self._line is not None:
            self._line.transport.loseConnection()

    # -- starting processes -------------------------------------------------------------
    def spawn(self, protocol: ProcessProtocol, executable: str, args: list, env: dict,
              path: Optional[str]) -> Deferred:
        """Start a process: fires once ``protocol`` is connected to it, or with the
        OSError the start failed with (nothing started then)."""
        if self._stopping:
            return fail(_stopping())
        self._next += 1
        try:
            start = _Start(self._next, protocol, {
                "start": self._next, "path": os.path.abspath(executable), "args": args, "env": env,
                "dir": os.path.abspath(path) if path is not None else os.getcwd()})
        except OSError as e:  # EMFILE: no room for the pipes
            return fail(e)
        if self._line is None:
            self._waiting.append(start)
        else:
            self._ask(start)
        return start.done

    def _ask(self, start: _Start) -> None:
        self._starting[start.id] = start
        for fd in start.theirs:  # sent with the line's first bytes
            self._line.transport.sendFileDescriptor(fd)
        self._line.sendLine(json.dumps(start.request).encode())
        start.request = None  # the environment and arguments: kept by nobody once sent

    def kill(self, ident: int, number: int) -> None:
        if self._line is not None:
            self._line.sendLine(json.dumps({"kill": ident, "signal": number}).encode())

    def _answer(self, answer: dict, fds: deque) -> None:
        if "started" in answer:
            start = self._starting.pop(answer["started"])
            start.close_theirs()
            kept = KeptProcess(self._reactor, self, start.id, answer["pid"], fds.popleft(), start)
            self._running[start.id] = kept
            kept.begin()
            start.done.callback(None)
        elif "failed" in answer:
            start = self._starting.pop(answer["failed"])
            start.close_all()
            start.done.errback(OSError(answer["errno"], answer["error"]))
        elif "exited" in answer:
            self._running.pop(answer["exited"]).exited(answer["status"])

    # -- the keeper process, and its loss ------------------------------------------------
    def _connected(self, line: _KeeperLine) -> None:
        self._line = line
        waiting, self._waiting = self._waiting, []
        for start in waiting:
            self._ask(start)

    def _lost(self) -> None:
        """The socket closed: the keeper is gone, or going."""
        self._line = None
        starting, self._starting = self._starting, {}
        for start in starting.values():
            start.close_all()
            start.done.errback(OSError(errno.EAGAIN, "the process keeper ended before it answered"))
        running, self._running = self._running, {}
        if running and not self._stopping:
            log.error("the process keeper ended: its {n} running processes are killed, since "
                      "their exits could no longer be known", n=len(running))
        for kept in running.values():
            kept.lost()
        self._maybe_again()

    def _ended(self, reason) -> None:
        self._process = None
        if not self._stopping:
            log.error("the process keeper exited ({why}); starting another",
                      why=reason.getErrorMessage())
        self._maybe_again()

    def _maybe_again(self) -> None:
        """Once both the keeper and its socket are gone, start another: at most one start a
        second, should it fail at once every time."""
        if self._stopping or self._line is not None or self._process is not None \
                or self._later is not None:
            return
        self._later = self._reactor.callLater(max(0.0, self._since + 1.0 - self._reactor.seconds()),
                                              self._again)

    def _again(self) -> None:
        self._later = None
        if not self._stopping:
            self.start()


def _stopping() -> OSError:
    return OSError(errno.ESHUTDOWN, "the host is stopping")


class _Start:
    """One start asked of the keeper: the process's three pipes, until it answers."""

    def __init__(self, ident: int, protocol: ProcessProtocol, request: dict):
        self.id = ident
        self.protocol = protocol
        self.request = request
        self.done = Deferred()
        made: list[int] = []
        try:
            for _ in range(3):
                made += os.pipe()
        except OSError:
            for fd in made:
                os.close(fd)
            raise
        stdin, self.stdin, self.stdout, stdout, self.stderr, stderr = made
        self.theirs = [stdin, stdout, stderr]  # the child's ends, the keeper's once it answers

    def close_theirs(self) -> None:
        for fd in self.theirs:
            os.close(fd)
        self.theirs = []

    def close_all(self) -> None:
        self.close_theirs()
        for fd in (self.stdin, self.stdout, self.stderr):
            os.close(fd)


class KeptProcess:
    """A process the keeper started, as Twisted's process transport is to its protocol:
    ``pid``, ``pipes``, ``write``, ``closeStdin``, ``signalProcess``."""

    def __init__(self, reactor, keeper: Keeper, ident: int, pid: int, pidfd: int, start: _Start):
        self._reactor = reactor
        self._keeper = keeper
        self._id = ident
        self._pidfd: Optional[int] = pidfd
        self._ends = (start.stdin, start.stdout, start.stderr)
        self.proto = start.protocol
        self.pid: Optional[int] = pid  # cleared once reaped, as Twisted does
        self.pipes: dict = {}
        self._status: Optional[int] = None  # the wait status, once reaped

    def begin(self) -> None:
        stdin, stdout, stderr = self._ends
        self.pipes = {0: ProcessWriter(self._reactor, self, 0, stdin),
                      1: ProcessReader(self._reactor, self, 1, stdout),
                      2: ProcessReader(self._reactor, self, 2, stderr)}
        self.proto.makeConnection(self)

    # the transport
    def write(self, data: bytes) -> None:
        if 0 in self.pipes:
            self.pipes[0].write(data)

    def closeStdin(self) -> None:
        if 0 in self.pipes:
            self.pipes[0].loseConnection()

    def signalProcess(self, number) -> None:
        if isinstance(number, str):
            number = getattr(signal, "SIG" + number)
        if self.pid is None:
            raise ProcessExitedAlready()
        self._keeper.kill(self._id, number)

    # from the pipes (ProcessReader and ProcessWriter call these)
    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.proto.childDataReceived(fd, data)

    def childConnectionLost(self, fd: int, reason) -> None:
        os.close(self.pipes.pop(fd).fileno())
        self.proto.childConnectionLost(fd)
        self._maybe_ended()

    # from the keeper
    def exited(self, status: int) -> None:
        self.pid = None
        os.close(self._pidfd)
        self._pidfd = None
        self._status = status
        self.proto.processExited(self._reason())
        self._maybe_ended()

    def _reason(self) -> Failure:
        """As Twisted says it (not kept: a finished process is kept long, a Failure is 1 KB)."""
        status = self._status
        if os.WIFSIGNALED(status):
            return Failure(ProcessTerminated(None, os.WTERMSIG(status), status))
        if os.WEXITSTATUS(status):
            return Failure(ProcessTerminated(os.WEXITSTATUS(status), None, status))
        return Failure(ProcessDone(status))

    def lost(self) -> None:
        """The keeper is gone: kill the process (its exit can no longer be known)."""
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except OSError:
            pass  # it had exited already
        self.exited(signal.SIGKILL)  # a wait status that says: killed by SIGKILL

    def _maybe_ended(self) -> None:
        if self._status is not None and not self.pipes:
            self.proto.processEnded(self._reason())


@implementer(IFileDescriptorReceiver)
class _KeeperLine(LineOnlyReceiver):
    delimiter = b"\n"  # the keeper's answers are short: the default MAX_LENGTH holds them

    def __init__(self, keeper: Keeper):
        self.keeper = keeper
        self.fds: deque[int] = deque()  # a pidfd arrives with the first bytes of its line

    def connectionMade(self) -> None:
        self.keeper._connected(self)

    def fileDescriptorReceived(self, fd: int) -> None:
        os.set_inheritable(fd, False)
        self.fds.append(fd)

    def lineReceived(self, line: bytes) -> None:
        self.keeper._answer(json.loads(line), self.fds)

    def connectionLost(self, reason) -> None:
        while self.fds:
            os.close(self.fds.popleft())
        self.keeper._lost()


class _LineFactory(Factory):
    def __init__(self, keeper: Keeper):
        self.keeper = keeper

    def buildProtocol(self, addr):
        return _KeeperLine(self.keeper)


class _KeeperProcess(ProcessProtocol):
    def __init__(self, keeper: Keeper):
        self.keeper = keeper

    def childDataReceived(self, fd: int, data: bytes) -> None:
        log.warn("the process keeper says: {text}", text=data.decode(errors="replace").strip())

    def processEnded(self, reason) -> None:
        self.keeper._ended(reason)
