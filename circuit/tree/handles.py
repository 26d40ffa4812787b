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
    plain = False
    settled = False  # everything written took effect at its write: a flush has nothing to do

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

    def available(self) -> Optional[int]:
        """Bytes of a stream readable now without waiting, if reading takes nothing."""
        return None

    # A read that took something (a message) hands it over in two steps: the view,
    # at its last moment before its caller has the bytes, confirms or gives it back.
    def offered(self) -> bool:
        """True while a read's answer took something not yet confirmed."""
        return False

    def offer_tag(self) -> Optional[list]:
        return None

    def confirm(self) -> None:
        """The caller has the answer of the read that took it."""

    def unread(self) -> None:
        """The caller left before it had that answer: give back what was taken."""

    def lost(self) -> None:
        """The link to the caller failed while that answer was on its way."""

    def try_flush(self) -> Deferred:
        """As flush, but fail WouldBlock (keeping the message) instead of waiting."""
        return self.flush()

    def flush_ready(self) -> Deferred:
        """Fires when try_flush would not wait; takes nothing."""
        return succeed(None)


def hand_over(handle: IHandle, caller) -> None:
    """The last step of every read, in every view, just before the caller gets the bytes.

    If the read took something (a message), ask the caller whether it is still
    there: if so the hand-over is confirmed, else what was taken goes back and the
    read fails with EINTR.  This is the one place "a reader that left takes
    nothing" is decided; its window is the time from here to the caller having the
    answer (the kernel copying it, the SSH channel writing it).
    """
    if handle.offered():
        if caller.alive():
            handle.confirm()
        else:
            handle.unread()
            raise errors.Interrupted("the reader went away; the message stays in its channel")


# What a check answers when what was written is whole and has taken effect at that
# write (a line of `cap`, a JSON document of `run`): nothing is left for the close.
APPLIED = "applied"


# What one open-write-close may carry: a message (send, a select's write.N), and
# any other control file (cap, run, select, signal, close).  More is refused with
# E2BIG at the write that passes the bound and drops what was written, so a
# client streaming without end cannot fill the host's memory.
MAX_MESSAGE = 256 * 1024 * 1024
MAX_CONTROL = 1024 * 1024


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
    cancels the fetch, so nothing is taken for a reader that left.  A fetch may
    answer with an offer (a message taken tentatively, `circuit.core.channel.Offer`):
    the view confirms it once its reader has the bytes, or gives it back.
    """

    streaming = True

    def __init__(self, fetch: Callable[[], Any]):
        self._fetch = fetch
        self._pending: Optional[Deferred] = None
        self._result: Optional[bytes] = None
        self._offer: Any = None
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

    def offered(self) -> bool:
        return self._offer is not None

    def offer_tag(self) -> Optional[list]:
        offer = self._offer
        return offer.tag if offer is not None and getattr(offer, "ahead", 0) else None

    def confirm(self) -> None:
        offer, self._offer = self._offer, None
        if offer is not None:
            offer.confirm()

    def unread(self) -> None:
        """The result was taken for a reader that then left: give it back, fetch anew next time."""
        offer, self._offer = self._offer, None
        if offer is not None:
            self._result, self._pending = None, None
            offer.decline()

    def lost(self) -> None:
        offer, self._offer = self._offer, None
        if offer is not None:
            self._result, self._pending = None, None
            offer.lost()

    def _reader_left(self, failure):
        # The last reader gave up: give up the fetch too (cancels the recv).
        if len(self._readers) == 0 and self._pending is not None and self._result is None:
            pending, self._pending = self._pending, None
            pending.cancel()
        return failure

    def _fetched(self, result: Any) -> None:
        if not isinstance(result, bytes):  # an offer
            self._offer, result = result, result.message
        self._result = result
        if len(self._readers) == 0:
            self.unread()  # settled just as the last reader left: it goes back
            return
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
        self.unread()  # never confirmed: no reader had it
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
    """Reads from a source with ``read(offset, size)`` that blocks for more (stdout).

    With ``ahead``, reading takes nothing and ``len(source)`` bytes are there to read
    (a process's output): a reader on another host may read ahead of its reads."""

    streaming = True

    def __init__(self, source: Any, on_release: Optional[Callable[[], None]] = None,
                 ahead: bool = False):
        self._source = source
        self._on_release = on_release
        self._ahead = ahead

    def read(self, offset: int, size: int) -> Deferred:
        return self._source.read(offset, size)

    def available(self) -> Optional[int]:
        return len(self._source) if self._ahead else None

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
    string at release; what a writer wrote and never flushed is dropped there.

    ``check`` sees what has been written so far at every write(2) and may refuse
    it there: bash's builtin ``echo`` ignores close(2), so write is the only
    place it hears a refusal.  A refused write drops what was written, and the
    writes after it until the flush are refused too (see `_refuse`).
    ``check_state`` is the same for a file whose refusals do not depend on what is
    written (send, close): what was written is then never joined until the flush,
    so a 64 MiB message in hundreds of writes is copied once.  A ``check`` that finds
    a whole value (a line of ``cap``, a JSON document of ``run``) applies it there
    and answers `APPLIED`: the close has nothing left to do, and across hosts needs
    no round trip (`settled`); only the end of the line may follow it.

    ``deliver_now`` and ``ready`` serve a writer on another host, whose own host
    asks it "still there?" before every attempt: `try_flush` delivers only if that
    needs no wait (else WouldBlock, the message kept for the next attempt), and
    `flush_ready` waits, taking nothing, until an attempt would not wait.
    """

    def __init__(self, deliver: Callable[[bytes], Any], truncate: bool = False,
                 readable: Optional[Callable[[], bytes]] = None,
                 check: Optional[Callable[[bytes], Any]] = None,
                 check_state: Optional[Callable[[], Any]] = None,
                 deliver_now: Optional[Callable[[bytes], Any]] = None,
                 ready: Optional[Callable[[], Deferred]] = None,
                 turn_over: Optional[Callable[[], None]] = None,
                 limit: int = MAX_CONTROL):
        self._deliver = deliver
        self._limit = limit
        self._size = 0  # bytes in _pieces
        self._refusal: Optional[errors.CircuitError] = None  # a write refused since the last flush
        self._wrote = False  # a write since the last flush (an empty one counts)
        self._deliver_now = deliver_now or deliver
        self._ready = ready
        self._turn_over = turn_over  # ready gave this writer a turn: say when it is used
        self._turn = False
        # No closure over self here: a handle in a reference cycle outlives its element
        # until the cycle collector runs (a select's clauses with it: 1 KB each).
        self._check_content = check
        self._check_state = check_state
        self._pieces: list[bytes] = []  # what was written since the last flush
        self._checks = 0  # checks of writes still waiting for their answer
        self._after_checks: list[Deferred] = []  # flushes waiting for them
        self._kept: Optional[bytes] = None  # an attempt that would have waited
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
        if self._refusal is not None:
            return fail(self._refusal)  # the rest of a refused text is refused too
        if self.settled and not data.strip():
            return succeed(len(data))  # the line's end after a value that took effect
        self.settled = False
        if self._size + len(data) > self._limit:
            return fail(self._refuse(errors.TooBig(
                f"this file takes at most {self._limit} bytes at a time; nothing was delivered")))
        if data:
            self._pieces.append(data)
            self._size += len(data)
        self._wrote = True  # even nothing: an empty write(...) then flush sends the empty message
        if self._check_content is None and self._check_state is None:
            return succeed(len(data))

        def refused(failure):
            if failure.check(errors.CircuitError):
                self._refuse(failure.value)
            return failure
        checked = maybeDeferred(self._check).addCallbacks(self._checked, refused, (len(data),))
        if not checked.called:  # a check that waits (run: until the process starts)
            self._checks += 1
            checked.addBoth(self._check_done)
        return checked

    def _check_done(self, result: Any) -> Any:
        self._checks -= 1
        if not self._checks:
            waiting, self._after_checks = self._after_checks, []
            for waiter in waiting:
                waiter.callback(None)
        return result

    def _after_check(self, then: Callable[[], Deferred]) -> Deferred:
        """A flush waits for the checks of the writes before it: a writer on another host
        that gave up on its write closes while the owner still checks it, and the close must
        find the value applied (settled), not deliver it a second time."""
        waiter = Deferred()
        self._after_checks.append(waiter)
        return waiter.addCallback(lambda _: then())

    def _checked(self, result: Any, written: int) -> int:
        if result == APPLIED:  # whole, and in effect: the close delivers nothing more
            self._pieces, self._size, self._wrote = [], 0, False
            self._delivered = self.settled = True
        return written

    def _check(self) -> Any:
        if self._check_content is not None:
            return self._check_content(self._written())
        return self._check_state()

    def _refuse(self, error: errors.CircuitError) -> errors.CircuitError:
        """Drop what was written, and refuse what follows until the flush: a write that
        fails in the middle of a text (E2BIG, or a kernel splitting one write(2) into
        several) must not leave the text's tail to be delivered as if it were whole."""
        self._pieces, self._size, self._wrote = [], 0, False
        self._delivered = True  # no ": > file" empty message at release either
        self._refusal = error
        return error

    def _refused_flush(self) -> Optional[Deferred]:
        """The flush after a refusal delivers nothing and reports it (close(2) sees it)."""
        if self._refusal is None:
            return None
        refusal, self._refusal = self._refusal, None
        self._pieces, self._size, self._wrote = [], 0, False
        return fail(refusal)

    def _written(self) -> bytes:
        if len(self._pieces) > 1:
            self._pieces = [b"".join(self._pieces)]
        return self._pieces[0] if self._pieces else b""

    def _message(self) -> Optional[bytes]:
        """What the next flush delivers: a kept attempt, else what was written."""
        if self._kept is not None:
            message, self._kept = self._kept, None
            return message
        if not self._pieces and not self._wrote:
            return None
        self._wrote = False
        message, self._pieces, self._size = self._written(), [], 0
        self._delivered = True
        return message

    def flush(self) -> Deferred:
        if self._checks:
            return self._after_check(self.flush)
        refused = self._refused_flush()
        if refused is not None:
            return refused
        message = self._message()
        if message is None:
            return succeed(None)
        return maybeDeferred(self._deliver, message)

    def try_flush(self) -> Deferred:
        if self._checks:
            return self._after_check(self.try_flush)
        try:
            return self._try_flush()
        finally:
            self._end_turn()  # the attempt is made (taken, or refused): a turn used

    def _try_flush(self) -> Deferred:
        refused = self._refused_flush()
        if refused is not None:
            return refused
        message = self._message()
        if message is None:
            return succeed(None)

        def would_wait(failure):
            failure.trap(errors.WouldBlock)
            self._kept = message
            return failure
        return maybeDeferred(self._deliver_now, message).addErrback(would_wait)

    def flush_ready(self) -> Deferred:
        if self._ready is None:
            return succeed(None)

        def turn(result):
            self._turn = self._turn_over is not None
            return result
        return self._ready().addCallback(turn)

    def _end_turn(self) -> None:
        if self._turn:
            self._turn = False
            self._turn_over()

    def release(self) -> Deferred:
        # Only a flush delivers (every close(2) through a mount is one).  What is still
        # here was never flushed, or its attempt never went: its writer gave up.
        left = self._kept is not None or bool(self._pieces) or self._wrote
        self._kept, self._pieces, self._size = None, [], 0
        self._end_turn()  # woken, then gone without trying: the turn goes to the next
        if self._truncate and not self._delivered and not left:
            self._delivered = True  # ": > file": the empty message
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
