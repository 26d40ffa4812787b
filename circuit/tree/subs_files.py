"""The control files of ``subs/NAME``."""
from __future__ import annotations

from circuit.core.select import Clause
from circuit.core.subscription import parse_topics
from circuit.tree.context import ElementContext, as_json
from circuit.tree.handles import MessageHandle, ResultHandle, TextHandle
from circuit.tree.table import ControlFile, table


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _check_on(sub, data: bytes) -> None:
    sub.check_on()
    if data.endswith(b"\n"):
        parse_topics(_text(data))


def _on(ctx: ElementContext, flags, caller):
    sub = ctx.element
    return MessageHandle(lambda data: sub.set_on(parse_topics(_text(data))), flags.truncate,
                         readable=lambda: b"" if sub.topics is None
                         else " ".join(sorted(sub.topics)).encode() + b"\n",
                         check=lambda data: _check_on(sub, data))


def _recv(ctx, flags, caller):
    sub = ctx.element
    return ResultHandle(lambda: sub.offer(alive=caller.alive, side=caller))


def _stat(ctx, flags, caller):
    return TextHandle(as_json(ctx.element.stat()))


def _recv_clause(ctx, op, spelled):
    sub = ctx.element
    return Clause(op, spelled, ready=sub.wait_recv, commit=sub.try_recv, undo=sub.unrecv)


SUBSCRIPTION = table(
    ControlFile("on", "rw", _on),
    ControlFile("recv", "r", _recv, streaming=True, clause=_recv_clause),
    ControlFile("stat", "r", _stat),
)

SUBSCRIPTION_OPS = {"recv": "r"}
