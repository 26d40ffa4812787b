"""The commands ``ssh HOST COMMAND`` runs: a few file tools over the circuit tree.

There is no shell and nothing runs on the host itself (processes are made through
``dc/proc``): a command line is split as a shell would split words, its one
optional ``> FILE`` (or ``>> FILE``) noted, and one of the commands below runs
against the whole circuit through the connection's `Session`, like the mount's
own requests.  ``cat`` of a blocking file reads one message; a command whose
channel closes is cancelled, so nothing is taken for it and nothing it had not
finished writing is delivered.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed

from circuit import errors
from circuit.interfaces import Attr, ICaller, ICircuit, OpenFlags
from circuit.ssh.names import as_circuit_error, error_line, ls_line, shown, tree_path
from circuit.tree.handles import hand_over
from circuit.tree.session import Session

CHUNK = 256 * 1024  # what one read asks for; the channel's window paces the reads

HELP = """\
This is a circuit host's SSH server.  Commands (no shell; paths are circuit tree paths):
  ls [-l] [PATH...]      cat PATH...          cat > FILE   (standard input, one message)
  echo [-n] WORDS > FILE mkdir [-p] PATH...   rmdir PATH...   rm [-f] [-r] PATH...
  stat PATH...           true                 help
sftp and scp (SFTP mode) see the same tree.  Processes run through /X.../dc/proc.
"""

class Usage(Exception):
    """A command line this server does not run: exit status 2 and one line."""


@dataclass
class Line:
    argv: list
    redirect: Optional[tuple] = None  # (">" or ">>", target)


def _words(text: str) -> list:
    """Words as a shell splits them, with its operators (``;``, ``|``, ``>`` ...) apart."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def parse(command: bytes) -> Line:
    try:
        words = _words(command.decode("utf-8", "surrogateescape"))
    except ValueError as e:
        raise Usage(f"cannot split the command line: {e}")
    argv, redirect = [], None
    i = 0
    while i < len(words):
        w = words[i]
        if w in (">", ">>"):
            if i + 1 == len(words) or _operator(words[i + 1]):
                raise Usage(f"{w} wants a file")
            if redirect is not None:
                raise Usage("one > FILE at most")
            redirect = (w, words[i + 1])
            i += 2
            continue
        if _operator(w) or w.startswith(("$(", "`")):
            raise Usage(f"no shell here: {w!r} is not supported; run one command (try: help)")
        argv.append(w)
        i += 1
    if not argv:
        raise Usage("no command given; try: help")
    return Line(argv, redirect)


def _operator(word: str) -> bool:
    return bool(word) and all(c in "();<>|&" for c in word)


class Stdin:
    """What the client sends, chunk by chunk, until its EOF (b"")."""

    def __init__(self):
        self._chunks: list = []
        self._ended = False
        self._waiting: Optional[Deferred] = None

    def data(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def eof(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.callback(None)

    async def read(self) -> bytes:
        while not self._chunks and not self._ended:
            self._waiting = Deferred()
            await self._waiting
        return self._chunks.pop(0) if self._chunks else b""


@dataclass
class Context:
    circuit: ICircuit
    session: Session
    caller: ICaller
    out: Callable[[bytes], None]
    err: Callable[[bytes], None]
    stdin: Stdin
    writable: Callable[[], Deferred] = lambda: succeed(None)  # the channel has room
    failed: list = field(default_factory=list)

    def path(self, text: str) -> tuple:
        return tree_path(self.circuit, text)

    def refused(self, what: str, error: errors.CircuitError) -> None:
        self.failed.append(error)
        self.err(f"{what}: {error_line(error)}\n".encode("utf-8", "surrogateescape"))

    async def each(self, name: str, paths: list, fn) -> None:
        """``fn(path)`` for every path, reporting each refusal and going on (as coreutils do)."""
        for text in paths:
            try:
                await fn(self.path(text))
            except errors.CircuitError as e:
                self.refused(f"{name}: {text}", e)

    def call(self, d: Deferred) -> Deferred:
        return self.session.track(d)


def _options(args: list, allowed: str) -> tuple:
    flags, rest = set(), []
    for a in args:
        if a.startswith("-") and len(a) > 1 and not rest:
            for c in a[1:]:
                if c not in allowed:
                    raise Usage(f"unknown option -{c}")
                flags.add(c)
        else:
            rest.append(a)
    return flags, rest


# -- reading and writing files -------------------------------------------------------------
async def read_file(ctx: Context, path: tuple) -> None:
    number = await ctx.session.open(path, OpenFlags(read=True), ctx.caller)
    try:
        handle = ctx.session.file(number).handle
        offset = 0
        while True:
            await ctx.writable()  # memory stays bounded however big the file
            data = await ctx.call(handle.read(offset, CHUNK))
            hand_over(handle, ctx.caller)  # ctx.out writes it into the channel at once
            if not data:
                return
            ctx.out(data)
            offset += len(data)
    finally:
        await ctx.session.release(number)


async def write_file(ctx: Context, path: tuple, append: bool, chunks) -> None:
    """Open, write every chunk, flush (the delivery: a message, a command), close."""
    flags = OpenFlags(read=False, write=True, truncate=not append, append=append, create=True)
    number = await ctx.session.open(path, flags, ctx.caller)
    try:
        handle = ctx.session.file(number).handle
        offset = 0
        async for data in chunks:
            await ctx.call(handle.write(offset, data))
            offset += len(data)
        await ctx.call(handle.flush())
    finally:
        await ctx.session.release(number)


async def _stdin_chunks(ctx: Context):
    while True:
        data = await ctx.stdin.read()
        if not data:
            return
        yield data


async def _one(data: bytes):
    yield data


# -- the commands ----------------------------------------------------------------------------
async def _ls(ctx: Context, args: list) -> None:
    flags, paths = _options(args, "la1")
    many = len(paths) > 1

    def line(name: str, attr: Attr) -> str:
        return ls_line(name, attr) if "l" in flags else name

    async def ls(path: tuple) -> None:
        attr = await ctx.call(ctx.circuit.getattr(path))
        if attr.kind != "dir":
            ctx.out((line(shown(path), attr) + "\n").encode("utf-8", "surrogateescape"))
            return
        entries = await ctx.call(ctx.circuit.listdir(path))
        text = "".join(line(name, a) + "\n" for name, a in entries)
        if many:
            text = f"{shown(path)}:\n{text}\n"
        ctx.out(text.encode("utf-8", "surrogateescape"))
    await ctx.each("ls", paths or ["/"], ls)


async def _cat(ctx: Context, args: list, redirect) -> None:
    _, paths = _options(args, "")
    if redirect is not None:
        if paths and paths != ["-"]:
            raise Usage("cat > FILE copies standard input only (cat FILE > FILE2 is not offered)")
        op, target = redirect
        await ctx.each("cat", [target], lambda p: write_file(ctx, p, op == ">>", _stdin_chunks(ctx)))
        return
    if not paths:
        raise Usage("cat wants a file (or > FILE to write standard input into one)")
    await ctx.each("cat", paths, lambda p: read_file(ctx, p))


async def _echo(ctx: Context, args: list, redirect) -> None:
    newline = True
    if args[:1] == ["-n"]:
        newline, args = False, args[1:]
    text = (" ".join(args) + ("\n" if newline else "")).encode("utf-8", "surrogateescape")
    if redirect is None:
        ctx.out(text)
        return
    op, target = redirect
    await ctx.each("echo", [target], lambda p: write_file(ctx, p, op == ">>", _one(text)))


async def _mkdir(ctx: Context, args: list) -> None:
    flags, paths = _options(args, "p")

    async def mkdir(path: tuple) -> None:
        try:
            await ctx.call(ctx.circuit.mkdir(path))
        except errors.Exists:
            if "p" not in flags:
                raise
    if not paths:
        raise Usage("mkdir wants a path")
    await ctx.each("mkdir", paths, mkdir)


async def _rmdir(ctx: Context, args: list) -> None:
    _, paths = _options(args, "")
    if not paths:
        raise Usage("rmdir wants a path")
    await ctx.each("rmdir", paths, lambda p: ctx.call(ctx.circuit.rmdir(p)))


async def _rm(ctx: Context, args: list) -> None:
    flags, paths = _options(args, "frR")

    async def rm(path: tuple) -> None:
        try:
            attr = await ctx.call(ctx.circuit.getattr(path))
            if attr.kind == "dir":
                if not flags & {"r", "R"}:
                    raise errors.IsDirectory(f"{shown(path)} is a directory (rm -r removes an element)")
                await ctx.call(ctx.circuit.rmdir(path))
            else:
                await ctx.call(ctx.circuit.unlink(path))
        except errors.NotFound:
            if "f" not in flags:
                raise
    if not paths:
        raise Usage("rm wants a path")
    await ctx.each("rm", paths, rm)


async def _stat(ctx: Context, args: list) -> None:
    _, paths = _options(args, "")

    async def stat(path: tuple) -> None:
        a = await ctx.call(ctx.circuit.getattr(path))
        kind = "directory" if a.kind == "dir" else "regular file"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.mtime))
        ctx.out((f"  File: {shown(path)}\n  Size: {a.size}\tType: {kind}\n"
                 f"Access: ({a.mode:04o})\nModify: {when}\n").encode("utf-8", "surrogateescape"))
    if not paths:
        raise Usage("stat wants a path")
    await ctx.each("stat", paths, stat)


async def _true(ctx: Context, args: list) -> None:
    pass


async def _help(ctx: Context, args: list) -> None:
    ctx.out(HELP.encode())


_PLAIN = {"ls": _ls, "mkdir": _mkdir, "rmdir": _rmdir, "rm": _rm, "stat": _stat, "true": _true,
          "help": _help}
_WRITING = {"cat": _cat, "echo": _echo}


async def _run(ctx: Context, line: Line) -> int:
    name, args = line.argv[0], line.argv[1:]
    if name in _WRITING:
        await _WRITING[name](ctx, args, line.redirect)
    elif name in _PLAIN:
        if line.redirect is not None:
            raise Usage(f"{name} cannot write into a file; only cat and echo take > FILE")
        await _PLAIN[name](ctx, args)
    else:
        raise Usage(f"{name}: no such command here (no shell; try: help)")
    return 1 if ctx.failed else 0


def run(ctx: Context, command: bytes) -> Deferred:
    """Deferred[int]: the exit status.  Cancel it when the channel goes."""
    async def main() -> int:
        try:
            return await _run(ctx, parse(command))
        except Usage as e:
            ctx.err(f"circuit: {e}\n".encode("utf-8", "surrogateescape"))
            return 2
        except errors.CircuitError as e:
            ctx.refused("circuit", e)
            return 1
    d = ensureDeferred(main())

    def bug(failure):
        failure.trap(Exception)
        if failure.check(CancelledError):
            return failure
        ctx.err(f"circuit: {error_line(as_circuit_error(failure))}\n".encode())
        return 1
    return d.addErrback(bug)
