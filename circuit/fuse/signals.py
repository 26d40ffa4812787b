"""Noticing that a process blocked in a FUSE request wants to give up.

pyfuse3 does not pass FUSE_INTERRUPT on, and once a request has reached us the
kernel waits for our answer whatever signal arrives.  So we look: a process
with a signal pending (and not blocked) is leaving; we cancel its wait and
answer EINTR, and the message it would have taken stays in its channel.
"""
from __future__ import annotations

import os
import signal

from twisted.internet.defer import Deferred
from zope.interface import implementer

from circuit.interfaces import ICaller


def signal_pending(pid: int) -> bool:
    """True if the thread or process has an unblocked signal pending."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        try:
            status = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        # Gone: then whoever reads is another process that inherited the descriptor
        # (a process waiting in a request cannot vanish before we answer it).
        return False
    if b"\nState:\tZ" in status or b"\nState:\tX" in status:
        # A zombie keeps the SIGKILL that ended it pending for good, and waits on
        # nobody: a shell or test runner that has not reaped a killed child yet must
        # not have every read it makes through the mount answered EINTR.
        return False
    return bool((_field(status, b"\nSigPnd:") | _field(status, b"\nShdPnd:"))
                & ~_field(status, b"\nSigBlk:") & ~_NOT_LEAVING)


# Signals that ask nobody to give up.  A SIGCHLD stays pending in a busy process until it
# is next scheduled: a circuit daemon started by the caller's own shell (or test runner),
# one of the family `leaving` looks at, has one for every child that exits.
_NOT_LEAVING = sum(1 << (s - 1) for s in (signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH))


MAX_FAMILY = 32  # processes looked at for one opener: itself and its descendants


def leaving(pid: int) -> bool:
    """True if the process or one of its descendants has an unblocked signal pending.

    The opener is not always the process that waits: in ``timeout 5 cat > send`` the
    shell opens the file for ``timeout``, whose child writes and closes it, and
    ``timeout`` signals the child.  pyfuse3 tells us only the opener, so its family is
    asked too.  A signal stays pending only while its process cannot take it (as when
    it waits on us), so a pending one in the family is, in practice, the caller's.
    """
    todo, seen = [pid], 0
    while todo and seen < MAX_FAMILY:
        p = todo.pop()
        seen += 1
        if signal_pending(p):
            return True
        todo.extend(_children(p))
    return False


def _children(pid: int) -> list[int]:
    """The children of the process's main thread (shells and ``timeout`` fork from it)."""
    try:
        fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY)
        try:
            return [int(c) for c in os.read(fd, 4096).split()]
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return []  # gone meanwhile, or a kernel without the children file


def _field(status: bytes, name: bytes) -> int:
    start = status.find(name)
    if start < 0:
        return 0
    start += len(name)
    end = status.find(b"\n", start)
    return int(status[start:end], 16)


@implementer(ICaller)
class ProcessCaller:
    """The process that opened a file through the mount."""

    def __init__(self, pid: int):
        self.pid = pid

    def alive(self) -> bool:
        return self.pid == 0 or not leaving(self.pid)


class InterruptWatch:
    """Cancels the Deferreds of blocked requests whose process has a signal pending.

    Looks every 0.1 s while some request has been blocked for under 2 s (a Ctrl-C
    right after starting to wait is the common case), then every 0.5 s: a reader
    blocked for hours costs next to nothing.
    """

    FAST, SLOW, YOUNG = 0.1, 0.5, 2.0

    def __init__(self, clock):
        self._clock = clock
        self._blocked: dict[Deferred, tuple[int, float]] = {}
        self._next = None

    def watch(self, pid: int, d: Deferred) -> None:
        if d.called or pid == 0:
            return
        self._blocked[d] = (pid, self._clock.seconds())

        def done(result):
            self._blocked.pop(d, None)
            return result
        d.addBoth(done)
        self._schedule(self.FAST)

    def _schedule(self, delay: float) -> None:
        if self._next is not None and self._next.active():
            if self._next.getTime() <= self._clock.seconds() + delay:
                return
            self._next.cancel()
        self._next = self._clock.callLater(delay, self._check)

    def _check(self) -> None:
        self._next = None
        now = self._clock.seconds()
        young = False
        for d, (pid, since) in list(self._blocked.items()):
            if leaving(pid):
                d.cancel()
            elif now - since < self.YOUNG:
                young = True
        if self._blocked:
            self._schedule(self.FAST if young else self.SLOW)

    def cancel_all(self) -> None:
        for d in list(self._blocked):
            d.cancel()
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def __len__(self) -> int:
        return len(self._blocked)
