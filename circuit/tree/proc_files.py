"""The control files of ``proc/NAME``."""
from __future__ import annotations

import json
from typing import Optional

from twisted.internet.defer import Deferred

from circuit import errors, jsondoc
from circuit.core.command import Command
from circuit.core.process import parse_signal
from circuit.core.select import Clause
from circuit.tree.context import ElementContext, as_json
from circuit.tree.handles import APPLIED, MessageHandle, ResultHandle, StdinHandle, StreamHandle, TextHandle
from circuit.tree.table import ControlFile, table


def _start(ctx: ElementContext, text: bytes) -> Deferred:
    return _start_command(ctx, ctx.tree.localize(Command.parse(text)))


def _start_command(ctx: ElementContext, command: Command) -> Deferred:
    """Fires once the process runs (the write of ``run`` waits for it)."""
    proc = ctx.element
    started = proc.run(command)
    if command.scrub:
        proc.wait_exit().addCallbacks(lambda _: _maybe_scrub(ctx), lambda _: None)
    return started


def _check_run(ctx: ElementContext, text: bytes) -> Optional[str]:
    """A whole JSON document starts the process at that write: parsed and checked once,
    and from another host one round trip less; a document still arriving waits."""
    document = jsondoc.check_partial(text, "run")
    if document is None:
        return None
    return _start_command(ctx, ctx.tree.localize(Command.from_json(document))).addCallback(
        lambda _: APPLIED)


def _maybe_scrub(ctx: ElementContext) -> None:
    proc = ctx.element
    if proc.command is not None and proc.command.scrub and proc.output_read() and not proc.removed:
        ctx.tree.remove_element(ctx.kind, ctx.name)


def _run(ctx, flags, caller):
    proc = ctx.element
    return MessageHandle(lambda text: _start(ctx, text), flags.truncate,
                         readable=lambda: b"" if proc.command is None
                         else (json.dumps(proc.command.to_json()) + "\n").encode(),
                         check=lambda text: _check_run(ctx, text))


def _stdin(ctx, flags, caller):
    if ctx.element.phase == "created":
        raise errors.NoProcess("stdin: the process has not been started: write run first")
    return StdinHandle(ctx.element.stdin)


def _output(which: str):
    def open_(ctx, flags, caller):
        return StreamHandle(getattr(ctx.element, which), on_release=lambda: _maybe_scrub(ctx),
                            ahead=True)
    return open_


def _waitexit(ctx, flags, caller):
    return ResultHandle(lambda: ctx.element.wait_exit().addCallback(as_json))


def _signal_number(text: bytes) -> int:
    return parse_signal(text.decode(errors="replace"))


def _check_signal(proc, text: bytes) -> None:
    proc.check_signal()
    _signal_number(text)


def _signal(ctx, flags, caller):
    proc = ctx.element
    return MessageHandle(lambda text: proc.signal(_signal_number(text)), flags.truncate,
                         check=lambda text: _check_signal(proc, text))


def _stat(ctx, flags, caller):
    return TextHandle(as_json(ctx.element.stat()))


def _env(ctx, flags, caller):
    return TextHandle(as_json([f"{k}={v}" for k, v in ctx.element.inherited_env.items()]))


def _exit_clause(ctx, op, spelled):
    proc = ctx.element
    return Clause(op, spelled, ready=proc.wait_exit, commit=lambda: as_json(proc.exit_record()))


def _output_clause(which: str):
    def make(ctx, op, spelled):
        output = getattr(ctx.element, which)
        # read.N streams the output from its start, as opening the file does.
        return Clause(op, spelled, ready=output.wait_readable, commit=lambda: output)
    return make


PROCESS = table(
    ControlFile("run", "rw", _run, applies=True),
    ControlFile("stdin", "w", _stdin),
    ControlFile("stdout", "r", _output("stdout"), streaming=True, clause=_output_clause("stdout")),
    ControlFile("stderr", "r", _output("stderr"), streaming=True, clause=_output_clause("stderr")),
    ControlFile("waitexit", "r", _waitexit, streaming=True, clause=_exit_clause),
    ControlFile("signal", "w", _signal),
    ControlFile("stat", "r", _stat),
    ControlFile("env", "r", _env),
)

PROCESS_OPS = {"stdout": "r", "stderr": "r", "waitexit": "rw"}
