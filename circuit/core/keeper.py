"""A host's processes do not outlive it, however it dies (even ``kill -9``).

The host starts one keeper process (`circuit.core.keeper_process`) and tells it,
through a pipe, each process it starts and each it reaps.  When the host dies the
kernel closes the pipe, and the keeper kills what is still listed.  That costs a
pipe write per process; the alternative, starting each process under ``setpriv
--pdeathsig KILL``, cost an exec of its own (about 1 ms, half of a spawn here).
The keeper shares the host's process group: ``kill -9 -PGID`` takes everything
down at once anyway.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from circuit.core import keeper_process

log = Logger("circuit")


class Keeper(ProcessProtocol):
    def __init__(self, reactor):
        self._reactor = reactor
        self._kept: dict[int, int] = {}  # pid -> start time
        self._stopping = False
        self._since = 0.0
        self._later = None
        self.pid: Optional[int] = None

    def start(self) -> None:
        self._since = self._reactor.seconds()
        script = os.path.abspath(keeper_process.__file__)
        # -I: nothing from the environment or the working directory changes what runs.
        self._reactor.spawnProcess(self, sys.executable, [sys.executable, "-I", script], env={},
                                   childFDs={0: "w", 1: "r", 2: "r"})

    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        for pid, started in self._kept.items():  # a keeper started again: tell it everything
            self.transport.write(b"+%d %d\n" % (pid, started))

    def keep(self, pid: int) -> None:
        """A process the host started (and has not reaped: its PID is still its own)."""
        started = keeper_process.start_time(pid)
        if started is None:
            return  # not there: it cannot outlive anyone
        self._kept[pid] = started
        if self.transport is not None:
            self.transport.write(b"+%d %d\n" % (pid, started))

    def forget(self, pid: int) -> None:
        """A process the host has reaped."""
        if self._kept.pop(pid, None) is not None and self.transport is not None:
            self.transport.write(b"-%d\n" % pid)

    def stop(self) -> None:
        """The host stops: the keeper kills what is left (nothing, after a clean stop) and exits."""
        self._stopping = True
        if self._later is not None and self._later.active():
            self._later.cancel()
        if self.transport is not None:
            self.transport.closeStdin()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        log.warn("the process keeper says: {text}", text=data.decode(errors="replace").strip())

    def processEnded(self, reason) -> None:
        self.transport = None
        if self._stopping:
            return
        log.error("the process keeper exited ({why}); starting another, so that this host's "
                  "{n} processes still die with it", why=reason.getErrorMessage(), n=len(self._kept))
        # At most one start a second, should it fail at once every time.
        self._later = self._reactor.callLater(max(0.0, self._since + 1.0 - self._reactor.seconds()),
                                              self._again)

    def _again(self) -> None:
        self._later = None
        if not self._stopping:
            self.start()
