"""What crosses the wire: one byte string per answer, never a pickled object.

Every remote method answers with bytes: ``J`` + JSON for a value, ``B`` + the
bytes themselves, ``M`` + JSON + newline + bytes for bytes with a little about
them, ``E`` + JSON ``[errno, why]`` for a refusal.  Arguments are strings,
numbers and bytes.  So PB's serializer handles a few flat values per call (it
costs far more per nested item than JSON does), a refusal travels as data with
the very errno and line the owning host's error file shows, and PB's failure
machinery (tracebacks, class names) is never involved.
"""
from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import CancelledError, TimeoutError
from twisted.logger import Logger

from circuit import errors
from circuit.interfaces import Attr, OpenFlags

log = Logger("circuit.pb")

# The most a single read or write may carry: under Banana's 640 KiB string limit.
MAX_CHUNK = 256 * 1024
# Banana refuses to send a string over 640 KiB (the call would never be answered), so a
# longer answer goes as a list of pieces of at most MAX_CHUNK (`pieces`), and a longer
# argument too (a full membership state of thousands of hosts).  A listing is sent in pages
# of about MAX_CHUNK (remote_listdir) rather than held whole.
MAX_ANSWER = 600 * 1024
MAX_WHOLE = 64 * 1024 * 1024  # the most an answer in pieces may be

_BY_ERRNO = {cls.errno: cls for cls in errors.CircuitError.__subclasses__()}


class Data:
    """Bytes with a small JSON-able note about them (a read's total size, a value's kind)."""

    def __init__(self, note: Any, payload: bytes):
        self.note, self.payload = note, payload


def ok(value: Any = None) -> bytes:
    if isinstance(value, bytes):
        answer = b"B" + value
    elif isinstance(value, Data):
        answer = b"M" + json.dumps(value.note).encode() + b"\n" + value.payload
    else:
        answer = b"J" + json.dumps(value).encode()
    if len(answer) > MAX_ANSWER:
        if len(answer) > MAX_WHOLE:
            log.error("an answer of {n} bytes is more than a connection carries: refused instead",
                      n=len(answer))
            return refused(errors.TooBig.errno, f"the answer ({len(answer)} bytes) is too big to send")
        return pieces(answer)
    return answer


def pieces(text):
    """``text`` (bytes or str) as it may cross the wire: itself if Banana sends it whole,
    else a list of pieces of at most MAX_CHUNK (`whole` joins them again)."""
    if len(text) <= MAX_ANSWER:
        return text
    return [text[i:i + MAX_CHUNK] for i in range(0, len(text), MAX_CHUNK)]


def whole(w: Any, kind: type) -> Any:
    """What `pieces` made, whole again, if it is a ``kind`` (bytes or str) or a list of them;
    anything else as it came (the caller refuses it)."""
    if type(w) is list and w and all(type(p) is kind for p in w):
        return kind().join(w)
    return w


def refused(code: int, why: str) -> bytes:
    return b"E" + json.dumps([code, why]).encode()


LEASED = "leased"  # a send's answer: the next sends to its channel may skip the check
SETTLED = "settled"  # a write's answer: it took effect there (handles.APPLIED), no flush needed


def is_refusal(answer: Any) -> bool:
    """Is this answer a refusal (as `refused` makes it)?"""
    return isinstance(answer, bytes) and answer[:1] == b"E"


def refusal(failure) -> bytes:
    """An errback that turns any failure into data: no traceback ever crosses the wire."""
    if failure.check(errors.CircuitError):
        return refused(failure.value.errno, failure.value.message)
    if failure.check(CancelledError):
        return refused(errors.Interrupted.errno, "cancelled by the caller")
    if failure.check(TimeoutError):
        return refused(errors.HostDown.errno, "no answer in time")
    log.failure("serving a peer", failure)
    return refused(errors.CircuitError.errno, f"internal error: {failure.getErrorMessage()}")


def unwrap(answer: Any) -> Any:
    """The value in an answer (Data arrives as a (note, payload) tuple); raise a refusal."""
    answer = whole(answer, bytes)
    if isinstance(answer, bytes) and answer:
        tag, body = answer[:1], answer[1:]
        if tag == b"J":
            return json.loads(body)
        if tag == b"B":
            return body
        if tag == b"M":
            note, _, payload = body.partition(b"\n")
            return json.loads(note), payload
        if tag == b"E":
            code, why = json.loads(body)
            raise error_of(code, why)
    raise errors.CircuitError(f"a peer answered something unexpected: {str(answer)[:80]}")


def error_of(code: int, message: str) -> errors.CircuitError:
    cls = _BY_ERRNO.get(code)
    if cls is not None:
        return cls(message)
    e = errors.CircuitError(message)
    e.errno = code
    return e


def attr_to_wire(a: Attr) -> list:
    return [a.kind, a.mode, a.size, a.mtime, a.streaming]


def attr_from_wire(w: list) -> Attr:
    kind, mode, size, mtime, streaming = w
    return Attr(str(kind), int(mode), int(size), float(mtime), bool(streaming))


_FLAG_BITS = ("read", "write", "truncate", "append", "create", "exclusive", "whole")


def flags_to_wire(f: OpenFlags) -> int:
    return sum(1 << i for i, name in enumerate(_FLAG_BITS) if getattr(f, name))


def flags_from_wire(w: Any) -> OpenFlags:
    if not isinstance(w, int):
        raise errors.Invalid("open flags must be a number")
    return OpenFlags(**{name: bool(w >> i & 1) for i, name in enumerate(_FLAG_BITS)})


def path_to_wire(path: tuple) -> str:
    return "/".join(path)


def path_from_wire(w: Any) -> tuple:
    if not isinstance(w, str):
        raise errors.Invalid("a path must be a string")
    path = tuple(w.split("/")) if w else ()
    if any(p in ("", ".", "..") for p in path):
        raise errors.Invalid("a path must be names joined by /")
    return path


def from_json(w: Any) -> Any:
    w = whole(w, str)  # a full state of thousands of hosts comes in pieces
    if not isinstance(w, str):
        raise errors.Invalid("expected JSON text")
    try:
        return json.loads(w)
    except ValueError:
        raise errors.Invalid("malformed JSON from a peer")
