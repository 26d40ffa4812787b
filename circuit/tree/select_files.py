"""The control files of ``select/NAME``, including the committed clause's read.N / write.N."""
from __future__ import annotations

from twisted.internet.defer import gatherResults, maybeDeferred, fail

from circuit import errors, jsondoc
from circuit.core.output import Output
from circuit.core.select import COMMITTED
from circuit.tree.context import ElementContext, as_json
from circuit.tree.handles import MAX_MESSAGE, LazyHandle, MessageHandle, ResultHandle, StreamHandle, TextHandle
from circuit.tree.table import ControlFile, table


def _parse(text: bytes) -> list[tuple[str, str]]:
    return _clauses(jsondoc.parse(text, "select"))


MAX_CLAUSES = 1000  # each clause waits on its file: a bound on what one select may hold


def _clauses(clauses) -> list[tuple[str, str]]:
    if not isinstance(clauses, list) or not clauses:
        raise errors.Invalid('select: want a JSON list like [{"op": "r", "file": "chan/c/recv"}]')
    if len(clauses) > MAX_CLAUSES:
        raise errors.TooBig(f"select: {len(clauses)} clauses; a select takes at most {MAX_CLAUSES}")
    parsed = []
    for i, c in enumerate(clauses):
        if not isinstance(c, dict) or set(c) != {"op", "file"}:
            raise errors.Invalid(f'select: clause {i} must be {{"op": "r" or "w", "file": PATH}}')
        if c["op"] not in ("r", "w") or not isinstance(c["file"], str):
            raise errors.Invalid(f'select: clause {i}: op must be "r" or "w" and file a string')
        parsed.append((c["op"], c["file"]))
    return parsed


def _resolve(ctx: ElementContext, clauses: list[tuple[str, str]]):
    """Deferred[list[Clause]]: every clause's file found, or the first refusal."""
    select = ctx.element
    if select.state != "idle":
        return fail(errors.Busy(f"select: already {select.state}; make a new select"))
    made = [maybeDeferred(ctx.tree.resolve_clause, f, op) for op, f in clauses]

    def refused(failure):
        first = getattr(failure.value, "subFailure", failure)
        first.raiseException()

    return gatherResults(made, consumeErrors=True).addErrback(refused)


def _arm(ctx: ElementContext, text: bytes):
    return _resolve(ctx, _parse(text)).addCallback(ctx.element.arm)


def _check(ctx: ElementContext, text: bytes):
    document = jsondoc.check_partial(text, "select")
    if document is not None:
        return _resolve(ctx, _clauses(document))
    return None


def _select(ctx, flags, caller):
    select = ctx.element
    return MessageHandle(lambda text: _arm(ctx, text), flags.truncate,
                         readable=lambda: as_json([{"op": c.op, "file": c.file} for c in select.clauses])
                         if select.clauses else b"",
                         check=lambda text: _check(ctx, text))


def _committed_file(select, outcome) -> str:
    clause = select.clauses[outcome.index]
    return ("write.%d" if clause.write is not None else "read.%d") % outcome.index


def _wait(ctx, flags, caller):
    select = ctx.element

    def answer(outcome):
        record = {"clause": outcome.index, "file": _committed_file(select, outcome)}
        if outcome.error is not None:
            record["error"] = outcome.error.message
        return as_json(record)
    return ResultHandle(lambda: select.wait().addCallback(answer))


def _abort(ctx, flags, caller):
    return MessageHandle(lambda _: ctx.element.abort(), flags.truncate)


def _stat(ctx, flags, caller):
    return TextHandle(as_json(ctx.element.stat()))


def _read_n(ctx, flags, caller):
    outcome = ctx.element.outcome
    if outcome.error is not None:
        return ResultHandle(lambda: fail(outcome.error))
    outcome.consumed = True
    value = outcome.value
    if isinstance(value, Output):
        return StreamHandle(value, ahead=True)
    if isinstance(value, bytes):
        return TextHandle(value)
    return LazyHandle(value.open(caller))  # held by another host


def _write_n(ctx, flags, caller):
    outcome = ctx.element.outcome
    clause = ctx.element.clauses[outcome.index]

    def check():
        if outcome.error is not None:
            raise outcome.error  # the committed send would fail (a closed channel)
        if outcome.consumed:
            raise errors.Busy(f"write.{outcome.index}: the committed send was already made")

    def send(message: bytes):
        check()
        outcome.consumed = True  # one send per commit, even while this one waits

        def failed(failure):
            outcome.consumed = False  # nothing was sent: it may be tried again
            return failure
        return maybeDeferred(clause.write, message, caller).addErrback(failed)
    return MessageHandle(send, flags.truncate, check_state=check, limit=MAX_MESSAGE)


SELECT = table(
    ControlFile("select", "rw", _select),
    ControlFile("wait", "r", _wait, streaming=True),
    ControlFile("abort", "w", _abort),
    ControlFile("stat", "r", _stat),
)


def select_files(select) -> dict[str, ControlFile]:
    """The fixed files, plus read.N or write.N once clause N has committed."""
    if select.state != COMMITTED or select.outcome is None:
        return SELECT
    name = _committed_file(select, select.outcome)
    if name.startswith("read."):
        extra = ControlFile(name, "r", _read_n, streaming=True)
    else:
        extra = ControlFile(name, "w", _write_n)
    return {**SELECT, name: extra}
