"""A growing byte stream that any number of readers read from its start."""
from __future__ import annotations

import os
import tempfile
from typing import Optional

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from circuit.core.waiters import WaiterSet

log = Logger("circuit.output")

SPILL_AFTER = 4 << 20  # bytes kept in memory; past this, the whole stream is in a file


class Output:
    """What a process wrote to one of its pipes: kept whole, read by offset.

    Readers never consume: each open of ``stdout`` reads from the beginning, and
    what was written stays readable after the process exits.  The first
    ``SPILL_AFTER`` bytes are kept in memory; a stream that grows past them moves
    to an unlinked file in the temporary directory, so a process that writes
    gigabytes costs the daemon disk (and the kernel's page cache), not its own
    memory.  The file is local and its recent pages are cached, so reading it
    from the reactor's thread is as quick as memory.
    """

    def __init__(self, spill_after: int = SPILL_AFTER, directory: Optional[str] = None) -> None:
        self._data = bytearray()
        self._file: Optional[int] = None  # the descriptor, once spilled
        self._size = 0
        self._spill_after = spill_after
        self._directory = directory
        self.lost = 0  # bytes the file could not take (a full disk): logged, never read
        self.eof = False
        self._grew = WaiterSet()
        self.drained = False  # some reader has read through to EOF

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        if self.eof:
            return  # discarded with its element
        if self._file is None and self._size + len(data) > self._spill_after:
            self._spill()
        if self._file is None:
            self._data += data
            self._size += len(data)
        elif not self.lost:
            self._write(data)
        else:
            self.lost += len(data)  # past a failed write nothing more is kept: no holes
        self._grew.fire_all()

    def _write_all(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._file, view):]

    def _spill(self) -> None:
        try:
            f = tempfile.TemporaryFile(prefix="circuit-output-", dir=self._directory)
            self._file = os.dup(f.fileno())
            f.close()
            if self._data:
                self._write_all(self._data)
        except OSError as e:  # no file: the stream stays in memory
            log.warn("process output stays in memory ({n} bytes so far): no spill file: {why}",
                     n=self._size, why=e)
            self._spill_after = float("inf")
            if self._file is not None:
                os.close(self._file)
                self._file = None
            return
        self._data = bytearray()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._file, view):]
        except OSError as e:
            self.lost = len(view)
            log.error("process output lost: {n} bytes and all that follows could not be kept "
                      "({why}); readers see the first {kept} bytes",
                      n=len(view), why=e, kept=self._size + len(data) - len(view))
        self._size += len(data) - len(view)

    def finish(self) -> None:
        self.eof = True
        self._grew.fire_all()

    def discard(self) -> None:
        """The element is gone: its file (if any) goes with it."""
        if self._file is not None:
            os.close(self._file)
            self._file = None
        self._data, self._size, self.eof = bytearray(), 0, True
        self._grew.fire_all()

    def wait_readable(self, offset: int = 0) -> Deferred:
        """Fires when there is data at ``offset``, or the stream has ended."""
        if offset < self._size or self.eof:
            return succeed(None)
        return self._grew.wait()

    def read(self, offset: int, size: int) -> Deferred:
        """Up to ``size`` bytes from ``offset``; b"" only at the end of the stream."""
        if offset < self._size:
            size = min(size, self._size - offset)
            if self._file is None:
                return succeed(bytes(self._data[offset: offset + size]))
            return succeed(os.pread(self._file, size, offset))
        if self.eof:
            self.drained = True
            return succeed(b"")
        return self._grew.wait().addCallback(lambda _: self.read(offset, size))
