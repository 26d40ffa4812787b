"""What one connection of a view has open: a mount, an SSH connection, a PB client.

Views keep their callers' open files here, by number, each with the caller that
opened it and its path from ``/``, and what the connection waits on.  When the
connection goes, `close` cancels every wait (nothing is taken for a caller that
left) and releases every file still open, so a message taken for a read that
was never confirmed goes back to its channel, and a message written but never
flushed is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from circuit import errors
from circuit.interfaces import ICaller, ICircuit, IHandle, OpenFlags

log = Logger("circuit")


@dataclass(eq=False)
class OpenFile:
    handle: IHandle
    caller: Any  # ICaller: who opened it, asked "still there?" at each hand-over
    path: tuple


class Session:
    """``max_files`` bounds what one connection may hold open (EMFILE past it), so
    a client opening without end cannot exhaust the host."""

    def __init__(self, circuit: ICircuit, max_files: int = 1_000_000):
        self.circuit = circuit
        self.max_files = max_files
        self.closed = False
        self._files: dict[int, OpenFile] = {}
        self._numbers = count(1)
        self._waiting: set[Deferred] = set()

    def __len__(self) -> int:
        return len(self._files)

    def open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666) -> Deferred:
        """Deferred[int]: the new open file's number."""
        if len(self._files) >= self.max_files:
            return fail(errors.TooMany(f"{self.max_files} files are open on this connection; "
                                       "close some first"))

        def opened(handle: IHandle) -> int:
            if self.closed:  # the connection went while the open was on its way
                handle.release()
                raise errors.HostDown("the connection closed while the file was being opened")
            number = next(self._numbers)
            self._files[number] = OpenFile(handle, caller, path)
            return number
        return self.circuit.open(path, flags, caller, mode).addCallback(opened)

    def file(self, number: int) -> OpenFile:
        try:
            return self._files[number]
        except KeyError:
            raise errors.BadFile(f"no open file {number}") from None

    def release(self, number: int) -> Deferred:
        f = self._files.pop(number, None)
        return succeed(None) if f is None else f.handle.release()

    def track(self, d: Deferred) -> Deferred:
        """A call the connection waits on: cancelled if the connection goes first."""
        if not d.called:
            self._waiting.add(d)

            def done(result):
                self._waiting.discard(d)
                return result
            d.addBoth(done)
        return d

    def close(self) -> None:
        """The connection is gone: cancel what it waits on, release what it left open."""
        self.closed = True
        for d in list(self._waiting):
            d.cancel()
        files, self._files = self._files, {}
        for f in files.values():
            # Nobody is left to tell; the element's error file already has a refusal.
            f.handle.release().addErrback(lambda failure, f=f: log.info(
                "releasing {path} as its connection closed: {why}", path="/" + "/".join(f.path),
                why=failure.getErrorMessage()))
