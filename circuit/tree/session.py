"""What one connection of a view has open: a mount, an SSH connection, a peer's PB link.

Views keep their callers' open files here, by number, each with the caller that
opened it and its path from ``/``, and what the connection waits on.  When the
connection goes, `close` cancels every wait (nothing is taken for a caller that
left) and releases every file still open, so a message taken for a read that
was never confirmed goes back to its channel, and a message written but never
flushed is dropped.

Numbers are the session's own, or the client's (a peer names its handles so it
can send a read right behind the open without waiting for the answer): an open
refused under a client's number is remembered, and what follows it on that
number fails the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from typing import Any, Hashable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from circuit import errors
from circuit.interfaces import ICaller, ICircuit, IHandle, OpenFlags

log = Logger("circuit")


@dataclass(eq=False)
class OpenFile:
    handle: IHandle
    caller: Any  # ICaller: who opened it, asked "still there?" at each hand-over
    path: tuple


class Session:
    """``max_files`` bounds what one connection may hold open (EMFILE past it), and
    ``max_waits`` the calls it may have waiting (EBUSY), so that a client opening
    or waiting without end cannot exhaust the host."""

    def __init__(self, circuit: ICircuit, max_files: int = 1_000_000, max_waits: int = 1_000_000):
        self.circuit = circuit
        self.max_files = max_files
        self.max_waits = max_waits
        self.closed = False
        self._files: dict[int, Any] = {}  # OpenFile, or the Failure of a refused open
        self._numbers = count(1)
        self._waiting: dict[Deferred, Optional[Hashable]] = {}
        self._keys: dict[Hashable, Deferred] = {}

    def __len__(self) -> int:
        return len(self._files)

    def open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666,
             number: Optional[int] = None, pipelined: bool = True) -> Deferred:
        """Deferred[int]: the new open file's number (``number``, when the client chose it).

        A refused open with a chosen number is remembered for what the client sent
        behind it, unless it sent nothing (not ``pipelined``)."""
        if number is not None and number in self._files:
            return fail(errors.Invalid(f"file number {number} is already in use"))
        if len(self._files) >= self.max_files:
            return fail(errors.TooMany(f"{self.max_files} files are open on this connection; "
                                       "close some first"))
        chosen = number is not None
        if not chosen:
            number = next(self._numbers)

        def opened(handle: IHandle) -> int:
            if self.closed:  # the connection went while the open was on its way
                handle.release()
                raise errors.HostDown("the connection closed while the file was being opened")
            self._files[number] = OpenFile(handle, caller, path)
            return number

        def refused(failure: Failure) -> Failure:
            if chosen and pipelined and not self.closed:
                self._files[number] = failure  # what the client sent behind the open gets
            return failure
        return self.circuit.open(path, flags, caller, mode).addCallbacks(opened, refused)

    def file(self, number: int) -> OpenFile:
        f = self._files.get(number)
        if f is None:
            raise errors.BadFile(f"no open file {number} (it was released)")
        if isinstance(f, Failure):
            f.raiseException()
        return f

    def release(self, number: int) -> Deferred:
        f = self._files.pop(number, None)
        return succeed(None) if f is None or isinstance(f, Failure) else f.handle.release()

    def track(self, d: Deferred, key: Optional[Hashable] = None) -> Deferred:
        """A call the connection waits on: cancelled if the connection goes first, or
        by ``cancel(key)``.  Past ``max_waits`` the call is cancelled and refused."""
        if d.called:
            return d
        if len(self._waiting) >= self.max_waits:
            d.addErrback(lambda _: None)
            d.cancel()
            return fail(errors.Busy(f"{self.max_waits} calls are waiting on this connection"))
        self._waiting[d] = key
        if key is not None:
            self._keys[key] = d

        def done(result):
            if d in self._waiting:
                del self._waiting[d]
                if key is not None and self._keys.get(key) is d:
                    del self._keys[key]
            return result
        return d.addBoth(done)

    def cancel(self, key: Hashable) -> None:
        d = self._keys.pop(key, None)
        if d is not None:
            d.cancel()

    def close(self, lost: bool = False) -> None:
        """The connection is gone: cancel what it waits on, release what it left open.

        ``lost``: the link failed rather than closed, so a read's answer that took a
        message may or may not have reached the client (`IHandle.lost`).
        """
        self.closed = True
        waiting, self._waiting, self._keys = list(self._waiting), {}, {}
        for d in waiting:
            d.cancel()
        files, self._files = self._files, {}
        for f in files.values():
            if isinstance(f, Failure):
                continue
            if lost:
                f.handle.lost()
            # Nobody is left to tell; the element's error file already has a refusal.
            f.handle.release().addErrback(lambda failure, f=f: log.info(
                "releasing {path} as its connection closed: {why}", path="/" + "/".join(f.path),
                why=failure.getErrorMessage()))
