"""Noticing that a process blocked in a FUSE request wants to give up.

pyfuse3 does not pass FUSE_INTERRUPT on, and once a request has reached us the
kernel waits for our answer whatever signal arrives.  So we look: a process
with a signal pending (and not blocked) is leaving; we cancel its wait and
answer EINTR, and the message it would have taken stays in its channel.
"""
from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
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
    return bool((_field(status, b"\nSigPnd:") | _field(status, b"\nShdPnd:"))
                & ~_field(status, b"\nSigBlk:"))


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
        return self.pid == 0 or not signal_pending(self.pid)


class InterruptWatch:
    """Cancels the Deferreds of blocked requests whose process has a signal pending."""

    def __init__(self, clock, interval: float = 0.1):
        self._blocked: dict[Deferred, int] = {}
        self._interval = interval
        self._loop = LoopingCall(self._check)
        self._loop.clock = clock

    def watch(self, pid: int, d: Deferred) -> None:
        if d.called or pid == 0:
            return
        self._blocked[d] = pid

        def done(result):
            self._blocked.pop(d, None)
            return result
        d.addBoth(done)
        if not self._loop.running:
            self._loop.start(self._interval, now=False)

    def _check(self) -> None:
        if not self._blocked:
            self._loop.stop()
            return
        for d, pid in list(self._blocked.items()):
            if signal_pending(pid):
                d.cancel()

    def cancel_all(self) -> None:
        for d in list(self._blocked):
            d.cancel()
        if self._loop.running:
            self._loop.stop()

    def __len__(self) -> int:
        return len(self._blocked)
