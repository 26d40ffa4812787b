"""The control files of ``dns/NAME``."""
from __future__ import annotations

from circuit import errors
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


def _check_set(srv, data: bytes) -> None:
    srv._check_alive()
    lines = _whole_lines(data)
    if lines.strip():
        srv.check_set(_text(lines, "set"))


def _set(ctx, flags, caller):
    srv = ctx.element
    return MessageHandle(lambda data: srv.set(_text(data, "set")), flags.truncate,
                         check=lambda data: _check_set(srv, data))


def _unset(ctx, flags, caller):
    srv = ctx.element
    return MessageHandle(lambda data: srv.unset(_text(data, "unset")), flags.truncate,
                         check=lambda data: srv._check_alive())


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
