"""A growing byte stream that any number of readers read from its start."""
from __future__ import annotations

from twisted.internet.defer import Deferred, succeed

from circuit.core.waiters import WaiterSet


class Output:
    """What a process wrote to one of its pipes: kept whole, read by offset.

    Readers never consume: each open of ``stdout`` reads from the beginning, and
    what was written stays readable after the process exits.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self.eof = False
        self._grew = WaiterSet()
        self.drained = False  # some reader has read through to EOF

    def __len__(self) -> int:
        return len(self._data)

    def append(self, data: bytes) -> None:
        self._data += data
        self._grew.fire_all()

    def finish(self) -> None:
        self.eof = True
        self._grew.fire_all()

    def wait_readable(self, offset: int = 0) -> Deferred:
        """Fires when there is data at ``offset``, or the stream has ended."""
        if offset < len(self._data) or self.eof:
            return succeed(None)
        return self._grew.wait()

    def read(self, offset: int, size: int) -> Deferred:
        """Up to ``size`` bytes from ``offset``; b"" only at the end of the stream."""
        if offset < len(self._data):
            return succeed(bytes(self._data[offset : offset + size]))
        if self.eof:
            self.drained = True
            return succeed(b"")
        return self._grew.wait().addCallback(lambda _: self.read(offset, size))
