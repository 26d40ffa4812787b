"""The control files of ``dns/NAME``."""
from __future__ import annotations

from circuit import errors
from circuit.core.zone import parse_lines
from circuit.tree.context import ElementContext, as_json
from circuit.tree.handles import MessageHandle, TextHandle
from circuit.tree.table import ControlFile, table


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.Invalid(f"{what}: not UTF-8 text")


def _whole_lines(data: bytes) -> bytes:
    """What a check at write(2) may judge: the lines ended so far (a line may arrive in
    pieces; the flush judges the rest)."""
    return data[: data.rfind(b"\n") + 1]


def _addr(ctx: ElementContext, flags, caller):
    srv = ctx.element
    return MessageHandle(lambda data: srv.listen(_text(data, "addr")), flags.truncate,
                         readable=lambda: b"" if srv.addr is None else srv.addr.encode() + b"\n",
                         check=lambda data: _check_addr(srv, data))


def _check_addr(srv, data: bytes) -> None:
    srv._check_alive()
    if data.endswith(b"\n"):
        srv.check_listen(_text(data, "addr"))


class _LineCheck:
    """The check of ``set`` at every write(2): each line read once, as it is completed.
    What was written so far comes whole at every write, so reading it all each time would
    cost a zone of many small writes the square of its size, in the reactor."""

    def __init__(self, srv):
        self._srv = srv
        self._checked = b""  # the lines already read, and good
        self._records: list = []  # theirs

    def __call__(self, data: bytes) -> None:
        self._srv._check_alive()
        if not data.startswith(self._checked):
            self._checked, self._records = b"", []  # a new message after a flush
        lines = _whole_lines(data)
        fresh = lines[len(self._checked):]
        if not fresh.strip():
            return
        first = self._checked.count(b"\n") + 1
        records = self._records + parse_lines(_text(fresh, "set"), first, empty_ok=True)
        self._srv.check_set(records)  # with those held: a CNAME's company, the bound
        self._checked, self._records = lines, records


def _set(ctx, flags, caller):
    srv = ctx.element
    return MessageHandle(lambda data: srv.set(_text(data, "set")), flags.truncate, check=_LineCheck(srv))


def _unset(ctx, flags, caller):
    srv = ctx.element
    return MessageHandle(lambda data: srv.unset(_text(data, "unset")), flags.truncate,
                         check=lambda data: _check_unset(srv, data))


def _check_unset(srv, data: bytes) -> None:
    srv._check_alive()
    if data.endswith(b"\n"):
        srv.check_unset(_text(data, "unset"))


def _records(ctx, flags, caller):
    return TextHandle(ctx.element.zone_text().encode())


def _stat(ctx, flags, caller):
    return TextHandle(as_json(ctx.element.stat()))


DNS = table(
    ControlFile("addr", "rw", _addr),
    ControlFile("set", "w", _set),
    ControlFile("unset", "w", _unset),
    ControlFile("records", "r", _records),
    ControlFile("stat", "r", _stat),
)
