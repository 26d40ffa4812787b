"""What crosses the wire: plain lists, strings, numbers and bytes, never pickled objects.

Every remote method answers ``["ok", value]`` or ``["err", errno, why]``: a
refusal travels as data, so the caller gets back the very errno and line the
owning host's error file shows, and PB's failure machinery (tracebacks, class
names) is never involved.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, TimeoutError
from twisted.logger import Logger

from circuit import errors
from circuit.interfaces import Attr, OpenFlags

log = Logger("circuit.pb")

# The most a single read or write may carry: under Banana's 640 KiB string limit.
MAX_CHUNK = 256 * 1024

_BY_ERRNO = {cls.errno: cls for cls in errors.CircuitError.__subclasses__()}


def ok(value: Any = None) -> list:
    return ["ok", value]


def refusal(failure) -> list:
    """An errback that turns any failure into data: no traceback ever crosses the wire."""
    if failure.check(errors.CircuitError):
        return ["err", failure.value.errno, failure.value.message]
    if failure.check(CancelledError):
        return ["err", errors.Interrupted.errno, "cancelled by the caller"]
    if failure.check(TimeoutError):
        return ["err", errors.HostDown.errno, "no answer in time"]
    log.failure("serving a peer", failure)
    return ["err", errors.CircuitError.errno, f"internal error: {failure.getErrorMessage()}"]


def unwrap(answer: Any) -> Any:
    if isinstance(answer, list) and answer and answer[0] == "ok" and len(answer) == 2:
        return answer[1]
    if isinstance(answer, list) and len(answer) == 3 and answer[0] == "err":
        raise error_of(answer[1], answer[2])
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


def flags_to_wire(f: OpenFlags) -> list:
    return [f.read, f.write, f.truncate, f.append, f.create, f.exclusive]


def flags_from_wire(w: list) -> OpenFlags:
    return OpenFlags(*[bool(x) for x in w[:6]])


def path_from_wire(w: Any) -> tuple:
    if not isinstance(w, (list, tuple)) or not all(isinstance(p, str) and p and "/" not in p for p in w):
        raise errors.Invalid("a path must be a list of names")
    return tuple(w)
