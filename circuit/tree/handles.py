"""The few kinds of open file every control file is made of.

Views see only `IHandle`; these classes say once how a control file reads and
writes, so that ``cat recv`` means the same through FUSE, SFTP and PB.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred, succeed
from zope.interface import implementer

from circuit import errors
from circuit.core.waiters import WaiterSet
from circuit.interfaces import IHandle


@implementer(IHandle)
class Handle:
    """Base: neither readable nor writable; flush and release do nothing."""

    streaming = False

    def read(self, offset: int, size: int) -> Deferred:
        return fail(errors.ReadOnly("this file is not readable"))

    def write(self, offset: int, data: bytes) -> Deferred:
        return fail(errors.ReadOnly("this file is read-only"))

    def flush(self) -> Deferred:
        return succeed(None)

    def release(self) -> Deferred:
        return succeed(None)

    def known_size(self) -> Optional[int]:
        """The whole content's size once it is known (lets a remote reader stop early)."""
        return None


def _slice(data: bytes, offset: int, size: int) -> bytes:
    return data[offset : offset + size]


class TextHandle(Handle):
    """Content fixed when opened (help, stat, cap, ...): read by offset."""

    def __init__(self, content: bytes):
        self.content = content

    def read(self, offset: int, size: int) -> Deferred:
        return succeed(_slice(self.content, offset, size))

    def known_size(self) -> Optional[int]:
        return len(self.content)


class ResultHandle(Handle):
    """One result fetched at the first read (recv, waitexit, wait, ...), then read by offset.

    Reads that arrive while the fetch is pending all wait for it (an SFTP client
    pipelines reads at increasing offsets); cancelling every one of them
    cancels the fetch, so nothing is taken for a reader that left.
    """

    streaming = True

    def __init__(self, fetch: Callable[[], Deferred],
                 giveback: Optional[Callable[[bytes], None]] = None):
        self._fetch = fetch
        self._giveback = giveback
        self._pending: Optional[Deferred] = None
        self._result: Optional[bytes] = None
        self._error: Optional[Exception] = None
        self._readers = WaiterSet()

    def read(self, offset: int, size: int) -> Deferred:
        if self._result is not None:
            return succeed(_slice(self._result, offset, size))
        if self._error is not None:
            return fail(self._error)
        reader = self._readers.wait()
        reader.addErrback(self._reader_left)
        if self._pending is None:
            self._pending = maybeDeferred(self._fetch)
            self._pending.addCallbacks(self._fetched, self._failed)
        return reader.addCallback(lambda result: _slice(result, offset, size))

    def known_size(self) -> Optional[int]:
        return None if self._result is None else len(self._result)

    def unread(self) -> None:
        """The result was fetched for a reader that then left: give it back, fetch anew next time."""
        if self._result is not None and self._giveback is not None:
            result, self._result, self._pending = self._result, None, None
            self._giveback(result)

    def _reader_left(self, failure):
        # The last reader gave up: give up the fetch too (cancels the recv).
        if len(self._readers) == 0 and self._pending is not None and self._result is None:
            pending, self._pending = self._pending, None
            pending.cancel()
        return failure

    def _fetched(self, result: bytes) -> None:
        self._result = result
        self._readers.fire_all(result)

    def _failed(self, failure) -> None:
        self._pending = None
        if failure.check(CancelledError):
            return  # the readers have already gone
        error = failure.value if failure.check(errors.CircuitError) else \
            errors.CircuitError(f"internal error: {failure.getErrorMessage()}")
        self._error = error
        self._readers.fail_all(error)

    def release(self) -> Deferred:
        if self._pending is not None and self._result is None:
            pending, self._pending = self._pending, None
            pending.cancel()
        return succeed(None)


class LazyHandle(Handle):
    """A handle still being opened (read.N of a value held on another host)."""

    streaming = True

    def __init__(self, opening: Deferred):
        self._opening = opening

    def read(self, offset: int, size: int) -> Deferred:
        return _then(self._opening, lambda h: h.read(offset, size))

    def release(self) -> Deferred:
        return _then(self._opening, lambda h: h.release())


def _then(d: Deferred, fn) -> Deferred:
    """Run fn on d's result without consuming d's result for later callers."""
    out: Deferred = Deferred()

    def ok(result):
        maybeDeferred(fn, result).chainDeferred(out)
        return result

    def bad(failure):
        out.errback(failure)
        return None
    d.addCallbacks(ok, bad)
    return out


class StreamHandle(Handle):
    """Reads from a source with ``read(offset, size)`` that blocks for more (stdout)."""

    streaming = True

    def __init__(self, source: Any, on_release: Optional[Callable[[], None]] = None):
        self._source = source
        self._on_release = on_release

    def read(self, offset: int, size: int) -> Deferred:
        return self._source.read(offset, size)

    def release(self) -> Deferred:
        if self._on_release is not None:
            self._on_release()
        return succeed(None)


class MessageHandle(Handle):
    """Write side of a control file: each open-write-close is one delivery.

    Bytes gather until a flush that has something to deliver (the descriptor's
    close), so a blocking send blocks close(2) and its error reaches it; the
    shell's early empty flush (from its dup2 dance) delivers nothing.  A file
    opened with O_TRUNC and closed with nothing written delivers the empty
    string at release.

    ``check`` sees what has been written so far at every write(2) and may refuse
    it there: bash's builtin ``echo`` ignores close(2), so write is the only
    place it hears a refusal.  A refused write drops what was written.
    """

    def __init__(self, deliver: Callable[[bytes], Any], truncate: bool = False,
                 readable: Optional[Callable[[], bytes]] = None,
                 check: Optional[Callable[[bytes], Any]] = None):
        self._deliver = deliver
        self._check = check
        self._buffer = bytearray()
        self._truncate = truncate
        self._delivered = False
        self._readable = readable
        self._content: Optional[bytes] = None

    def read(self, offset: int, size: int) -> Deferred:
        if self._readable is None:
            return super().read(offset, size)
        if self._content is None:
            self._content = self._readable()
        return succeed(_slice(self._content, offset, size))

    def write(self, offset: int, data: bytes) -> Deferred:
        # Offsets are ignored: O_APPEND on a size-0 file writes at 0 every time.
        self._buffer += data
        if self._check is None:
            return succeed(len(data))

        def refused(failure):
            self._buffer = bytearray()
            self._delivered = True  # nothing more to deliver for this open
            return failure
        return maybeDeferred(self._check, bytes(self._buffer)).addCallbacks(
            lambda _: len(data), refused)

    def flush(self) -> Deferred:
        if not self._buffer:
            return succeed(None)
        message, self._buffer = bytes(self._buffer), bytearray()
        self._delivered = True
        return maybeDeferred(self._deliver, message)

    def release(self) -> Deferred:
        if self._buffer:
            return self.flush()
        if self._truncate and not self._delivered:
            self._delivered = True
            return maybeDeferred(self._deliver, b"")
        return succeed(None)


class StdinHandle(Handle):
    """Streams writes into a process's stdin; the last writer's release closes it."""

    def __init__(self, stdin: Any):
        self._stdin = stdin
        stdin.open_writer()
        self._open = True

    def write(self, offset: int, data: bytes) -> Deferred:
        return self._stdin.write(data).addCallback(lambda _: len(data))

    def release(self) -> Deferred:
        if self._open:
            self._open = False
            self._stdin.close_writer()
        return succeed(None)
