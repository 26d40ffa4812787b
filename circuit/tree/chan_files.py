"""The control files of ``chan/NAME``."""
from __future__ import annotations

from typing import Optional

from circuit import errors
from circuit.core.select import Clause
from circuit.tree.context import ElementContext, as_json
from circuit.tree.handles import APPLIED, MAX_MESSAGE, MessageHandle, ResultHandle, TextHandle
from circuit.tree.table import ControlFile, table
from circuit.tree.whole import CHUNK


def _parse_cap(text: bytes) -> int:
    word = text.strip()
    if not word.isdigit():
        raise errors.Invalid(f"cap: want a whole number, 0 or more; got {text[:40]!r}")
    return int(word)


def _check_cap(ch, text: bytes) -> Optional[str]:
    ch.check_cap()
    if text.strip():
        cap = _parse_cap(text)
        if text.endswith(b"\n"):  # a whole line: set now (one round trip less from afar)
            ch.set_cap(cap)
            return APPLIED
    return None


def _cap(ctx: ElementContext, flags, caller):
    ch = ctx.element
    return MessageHandle(lambda text: ch.set_cap(_parse_cap(text)), flags.truncate,
                         readable=lambda: b"" if ch.cap is None else b"%d\n" % ch.cap,
                         check=lambda text: _check_cap(ch, text))


# The caller is the hand-over's "side": a sender and a receiver that share one (one
# connection from another host) hear their answers along the same path, in order.

def _send(ctx, flags, caller):
    ch = ctx.element
    return MessageHandle(lambda m: ch.send(m, alive=caller.alive, side=caller), flags.truncate,
                         check_state=ch.check_send,
                         deliver_now=lambda m: ch.try_send(m, alive=caller.alive, side=caller),
                         ready=ch.wait_turn, turn_over=ch.turn_over, limit=MAX_MESSAGE)


def _check_trysend(ch) -> None:
    ch.check_send()
    ch.try_ready_send()


def _trysend(ctx, flags, caller):
    ch = ctx.element
    return MessageHandle(lambda m: ch.try_send(m, alive=caller.alive, side=caller), flags.truncate,
                         check_state=lambda: _check_trysend(ch), limit=MAX_MESSAGE)


def _recv(ctx, flags, caller):
    ch = ctx.element
    # A whole read from another host takes a message of up to one read's size as it
    # arrives, and its host keeps the epoch rule: it may have company (Channel.offer).
    ahead = CHUNK if flags.whole and getattr(caller, "keeps_order", False) else 0
    return ResultHandle(lambda: ch.offer(alive=caller.alive, side=caller, ahead=ahead))


def _tryrecv(ctx, flags, caller):
    ch = ctx.element
    return ResultHandle(ch.try_offer)


def _waitsend(ctx, flags, caller):
    return ResultHandle(lambda: ctx.element.wait_send().addCallback(lambda _: b""))


def _waitrecv(ctx, flags, caller):
    return ResultHandle(lambda: ctx.element.wait_recv().addCallback(lambda _: b""))


def _close(ctx, flags, caller):
    ch = ctx.element
    return MessageHandle(lambda _: ch.close(), flags.truncate, check_state=ch.check_close)


def _stat(ctx, flags, caller):
    return TextHandle(as_json(ctx.element.stat()))


# -- select clauses -------------------------------------------------------------------

def _can_send(ch) -> bytes:
    ch.check_send()  # closed: the clause commits with EPIPE, as a receive does
    ch.try_ready_send()
    return b""


def _recv_clause(ctx, op, spelled):
    ch = ctx.element
    return Clause(op, spelled, ready=ch.wait_recv, commit=ch.try_recv, undo=ch.unrecv)


def _send_clause(ctx, op, spelled):
    ch = ctx.element
    return Clause(op, spelled, ready=ch.wait_send, commit=lambda: _can_send(ch),
                  write=lambda m, caller=None: ch.send(m, alive=caller and caller.alive, side=caller))


def _waitsend_clause(ctx, op, spelled):
    ch = ctx.element
    return Clause(op, spelled, ready=ch.wait_send, commit=lambda: _ready_to_send(ch))


def _ready_to_send(ch) -> bytes:
    ch.try_ready_send()  # readiness only: a closed channel is "ready" (the send would fail)
    return b""


def _waitrecv_clause(ctx, op, spelled):
    ch = ctx.element
    return Clause(op, spelled, ready=ch.wait_recv, commit=lambda: _can_recv(ch))


def _can_recv(ch) -> bytes:
    ch.try_ready_recv()
    return b""


CHANNEL = table(
    ControlFile("cap", "rw", _cap, applies=True),
    ControlFile("send", "w", _send, clause=_send_clause),
    ControlFile("trysend", "w", _trysend, clause=_send_clause),
    ControlFile("recv", "r", _recv, streaming=True, clause=_recv_clause),
    ControlFile("tryrecv", "r", _tryrecv, streaming=True, clause=_recv_clause),
    ControlFile("waitsend", "r", _waitsend, streaming=True, clause=_waitsend_clause),
    ControlFile("waitrecv", "r", _waitrecv, streaming=True, clause=_waitrecv_clause),
    ControlFile("close", "w", _close),
    ControlFile("stat", "r", _stat),
)

# Which op each selectable file takes; the readiness files take either spelling.
CHANNEL_OPS = {"send": "w", "trysend": "w", "recv": "r", "tryrecv": "r",
               "waitsend": "rw", "waitrecv": "rw"}
