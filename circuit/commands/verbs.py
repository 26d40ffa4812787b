"""The commands themselves: file tools (``ls``, ``cat``, ``echo >`` ...) and element verbs
in the manner of gocircuit's command line (``mkchan``, ``send``, ``recv``, ``mkproc``, ``wait``,
``peek`` ...), run against the whole circuit through a view's `Session`.

There is no shell and nothing runs on the host itself (processes are made through
``dc/proc``).  ``ssh HOST COMMAND`` hands a command line (`run`): it is split as a
shell splits words and its one optional ``> FILE`` (or ``>> FILE``) noted.  The
``circuit`` command line hands argv (`run_argv`).  A blocking file read gives
one message; a command cancelled (its channel or connection gone, its --timeout
passed) takes nothing, and delivers nothing it had not finished writing.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twisted.internet.defer import CancelledError, Deferred, DeferredList, ensureDeferred, succeed

from circuit import errors
from circuit.commands.text import as_circuit_error, error_line, ls_line, mode_string, shown, tree_path
from circuit.commands.usage import VERBS, WAITING, overview, usage
from circuit.interfaces import Attr, ICaller, ICircuit, OpenFlags
from circuit.tree.handles import hand_over
from circuit.tree import whole
from circuit.tree.session import Session

CHUNK = 256 * 1024  # what one read asks for; the client's window paces the reads
KINDS = ("proc", "chan", "select", "dns", "subs")


class Usage(Exception):
    """A command line this host does not run: exit status 2 and one line."""


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
    """What the client sends, chunk by chunk, until its EOF (b"").  ``wanted`` is called
    the first time a command reads it (the command line sends input only then, so a
    ``circuit recv`` in a ``while read`` loop does not eat the loop's input)."""

    FULL = 4 * 1024 * 1024  # held and not yet read: past it the client is asked to pause

    def __init__(self, wanted: Callable[[], None] = lambda: None,
                 pause: Callable[[], None] = lambda: None, resume: Callable[[], None] = lambda: None):
        self._chunks: list = []
        self._ended = False
        self._waiting: Optional[Deferred] = None
        self._wanted: Optional[Callable[[], None]] = wanted
        self._held = 0
        self._paused = False
        self._pause, self._resume = pause, resume

    def data(self, data: bytes) -> None:
        self._chunks.append(data)
        self._held += len(data)
        if self._held > self.FULL and not self._paused:
            self._paused = True
            self._pause()  # a command slower than its input (a process's stdin) holds only so much
        self._wake()

    def eof(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.callback(None)

    async def read(self) -> bytes:
        if self._wanted is not None:
            wanted, self._wanted = self._wanted, None
            wanted()
        while not self._chunks and not self._ended:
            self._waiting = Deferred()
            await self._waiting
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        self._held -= len(chunk)
        if self._paused and self._held <= self.FULL // 2:
            self._paused = False
            self._resume()
        return chunk

    async def chunks(self):
        while True:
            data = await self.read()
            if not data:
                return
            yield data

    async def whole(self) -> bytes:
        return b"".join([c async for c in self.chunks()])


@dataclass
class Context:
    circuit: ICircuit
    session: Session
    caller: ICaller
    out: Callable[[bytes], None]
    err: Callable[[bytes], None]
    stdin: Stdin
    writable: Callable[[], Deferred] = lambda: succeed(None)  # the client has room
    clock: Any = None  # for --timeout: an IReactorTime
    failed: list = field(default_factory=list)

    def path(self, text: str) -> tuple:
        return tree_path(self.circuit, text)

    def say(self, text: str) -> None:
        self.out(text.encode("utf-8", "surrogateescape"))

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
        if a.startswith("-") and len(a) > 1 and not rest and a != "--":
            for c in a[1:]:
                if c not in allowed:
                    raise Usage(f"unknown option -{c}")
                flags.add(c)
        else:
            rest.append(a)
    return flags, rest


def _exactly(name: str, args: list, n: int) -> list:
    _, rest = _options(args, "")
    if len(rest) != n:
        raise Usage(usage(name).splitlines()[0])
    return rest


def _is_element(path: tuple) -> bool:
    return len(path) == 4 and path[1] == "dc" and path[2] in KINDS


async def _on_element(ctx: Context, name: str, text: str, kind: Optional[str], fn) -> None:
    """``fn(path)`` for the element ``text`` names (``/X.../dc/KIND/NAME``, of ``kind`` if
    given); a path that names none, or any refusal of ``fn``, is reported as the command's."""
    def checked(path: tuple):
        if not _is_element(path) or (kind and path[2] != kind):
            want = f"dc/{kind}/NAME" if kind else "dc/KIND/NAME"
            raise errors.Invalid(f"{text} is not an element's path (/X.../{want})")
        return fn(path)
    await ctx.each(name, [text], checked)


# -- reading and writing files -------------------------------------------------------------
async def read_file(ctx: Context, path: tuple) -> None:
    number = await ctx.session.open(path, OpenFlags(read=True), ctx.caller)
    try:
        handle = ctx.session.file(number).handle
        offset = 0
        while True:
            await ctx.writable()  # memory stays bounded however big the file
            data = await ctx.call(handle.read(offset, CHUNK))
            hand_over(handle, ctx.caller)  # ctx.out writes it to the client at once
            if not data:
                return
            ctx.out(data)
            offset += len(data)
    finally:
        await ctx.session.release(number)


async def read_whole(ctx: Context, path: tuple) -> bytes:
    """A small file's content (stat, cap): read here, not written to the client."""
    number = await ctx.session.open(path, OpenFlags(read=True), ctx.caller)
    try:
        return await ctx.call(ctx.session.file(number).handle.read(0, CHUNK))
    finally:
        await ctx.session.release(number)


async def write_file(ctx: Context, path: tuple, append: bool, chunks) -> None:
    """Open, write every chunk, flush (the delivery: a message, a command), close."""
    flags = OpenFlags(read=False, write=True, truncate=not append, append=append, create=True)
    number = await ctx.session.open(path, flags, ctx.caller)
    try:
        handle = ctx.session.file(number).handle
        offset, wrote = 0, False
        async for data in chunks:
            await ctx.call(handle.write(offset, data))
            offset, wrote = offset + len(data), True
        if not wrote:  # no input at all: the empty message, delivered (and refused) at the flush
            await ctx.call(handle.write(0, b""))
        await ctx.call(handle.flush())
    finally:
        await ctx.session.release(number)


async def _one(data: bytes):
    yield data


# -- file tools ------------------------------------------------------------------------------
def _state(kind: str, record: dict) -> str:
    """An element's state in a few words, for ls -l."""
    if kind == "dns":
        where = f"on {record['addr']}" if record.get("listening") else "not listening"
        return f"{where}, {record.get('records', 0)} records"
    if kind == "subs":
        on = " ".join(record.get("on") or []) or "no topic yet"
        return f"on {on}, {record.get('len', 0)} waiting" if record.get("on") else on
    if kind == "chan":
        if record.get("cap") is None:
            return "no cap yet"
        state = f"cap {record['cap']}, {record['len']} buffered"
        return state + (", closed" if record.get("closed") else "")
    if kind == "proc":
        phase = record.get("phase", "?")
        if record.get("exit") is not None:
            return f"{phase}, exit {record['exit']}"
        if record.get("signal"):
            return f"{phase}, signal {record['signal']}"
        return f"{phase}, pid {record['pid']}" if record.get("pid") else phase
    return record.get("state", "?")


async def _ls(ctx: Context, args: list) -> None:
    flags, paths = _options(args, "la1")
    many = len(paths) > 1

    async def line(path: tuple, name: str, attr: Attr) -> str:
        if "l" not in flags:
            return name
        text = ls_line(name, attr)
        if _is_element(path) and attr.kind == "dir":
            try:  # an element: its kind and state
                record = json.loads(await read_whole(ctx, path + ("stat",)))
                text += f"  [{path[2]}: {_state(path[2], record)}]"
            except (errors.CircuitError, ValueError):
                text += f"  [{path[2]}]"
        return text

    async def ls(path: tuple) -> None:
        attr = await ctx.call(ctx.circuit.getattr(path))
        if attr.kind != "dir":
            ctx.say(await line(path, shown(path), attr) + "\n")
            return
        entries = await ctx.call(ctx.circuit.listdir(path))
        text = "".join([await line(path + (name,), name, a) + "\n" for name, a in entries])
        ctx.say(f"{shown(path)}:\n{text}\n" if many else text)
    await ctx.each("ls", paths or ["/"], ls)


async def _cat(ctx: Context, args: list, redirect) -> None:
    _, paths = _options(args, "")
    if redirect is not None:
        if paths and paths != ["-"]:
            raise Usage("cat > FILE copies standard input only (cat FILE > FILE2 is not offered)")
        op, target = redirect
        await ctx.each("cat", [target], lambda p: write_file(ctx, p, op == ">>", ctx.stdin.chunks()))
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
                if not _is_element(path) and not flags & {"r", "R"}:
                    raise errors.IsDirectory(f"{shown(path)} is a directory (rm -r removes an empty one)")
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
        ctx.say(f"  File: {shown(path)}\n  Size: {a.size}\tType: {kind}\n"
                f"Access: ({a.mode:04o}/{mode_string(a)})\nModify: {when}\n")
    if not paths:
        raise Usage("stat wants a path")
    await ctx.each("stat", paths, stat)


async def _true(ctx: Context, args: list) -> None:
    pass


async def _help(ctx: Context, args: list) -> None:
    ctx.say(usage(args[0]) if args and args[0] in VERBS else overview())


# -- element verbs ---------------------------------------------------------------------------
async def _peek(ctx: Context, args: list) -> None:
    text, = _exactly("peek", args, 1)
    await _on_element(ctx, "peek", text, None, lambda e: read_file(ctx, e + ("stat",)))


async def _make(ctx: Context, path: tuple, content: bytes) -> None:
    """Make an element with its first file (cap, run, select): one operation of the
    owning host's tree, which leaves nothing behind when refused."""
    await ctx.call(ctx.circuit.make(path, content, ctx.caller))


async def _deliver(ctx: Context, path: tuple, content: bytes) -> None:
    """Deliver a whole content (a message, a signal) into one file: one operation."""
    await ctx.call(ctx.circuit.put(path, content, ctx.caller))


async def _mkchan(ctx: Context, args: list) -> None:
    _, rest = _options(args, "")
    if len(rest) not in (1, 2):
        raise Usage(usage("mkchan").splitlines()[0])
    cap = rest[1] if len(rest) == 2 else "0"

    await _on_element(ctx, "mkchan", rest[0], "chan", lambda e: _make(ctx, e, cap.encode() + b"\n"))


async def _send(ctx: Context, args: list) -> None:
    text, = _exactly("send", args, 1)

    async def send(path: tuple) -> None:
        await _deliver(ctx, path + ("send",), await ctx.stdin.whole())  # a message is whole
    await _on_element(ctx, "send", text, "chan", send)


def _reader(name: str, kind: str, file: str):
    async def verb(ctx: Context, args: list) -> None:
        text, = _exactly(name, args, 1)
        await _on_element(ctx, name, text, kind, lambda e: read_file(ctx, e + (file,)))
    return verb


async def _close(ctx: Context, args: list) -> None:
    text, = _exactly("close", args, 1)
    await _on_element(ctx, "close", text, "chan",
                      lambda e: _deliver(ctx, e + ("close",), b"\n"))


async def _mkproc(ctx: Context, args: list) -> None:
    if "--" in args:
        cut = args.index("--")
        head, program = args[:cut], args[cut + 1:]
        if not program:
            raise Usage("mkproc PATH -- wants a program after --")
    else:
        head, program = args, None
    flags, rest = _options(head, "w")
    if len(rest) != 1:
        raise Usage(usage("mkproc").splitlines()[0])

    async def mkproc(path: tuple):
        if program is not None:
            command = json.dumps({"path": program[0], "args": program[1:]}).encode()
        else:
            command = await ctx.stdin.whole()
        if "w" in flags:  # and wait: the two in one operation, one message to the owner
            ctx.out(await ctx.call(ctx.circuit.make(path, command, ctx.caller, wait=True)))
        else:
            await _make(ctx, path, command)
    await _on_element(ctx, "mkproc", rest[0], "proc", mkproc)


async def _wait(ctx: Context, args: list) -> None:
    text, = _exactly("wait", args, 1)

    async def wait(path: tuple):
        if path[2] not in ("proc", "select"):
            raise errors.Invalid(f"{text}: wait is for a process or a select")
        await read_file(ctx, path + ("waitexit" if path[2] == "proc" else "wait",))
    await _on_element(ctx, "wait", text, None, wait)


async def _waitall(ctx: Context, args: list) -> None:
    """Every path is checked before anything waits: a refusal waits for nothing.  Then
    all are waited on at once, each record printed as its process exits; a host that
    goes meanwhile fails its own paths (EHOSTDOWN) and the rest are still waited for."""
    _, texts = _options(args, "")
    if not texts:
        raise Usage(usage("waitall").splitlines()[0])
    paths = []

    async def check(path: tuple) -> None:
        if not _is_element(path) or path[2] != "proc":
            raise errors.Invalid("not a process's path (/X.../dc/proc/NAME)")
        await ctx.call(ctx.circuit.getattr(path))  # no such process, or its host gone: now
        paths.append(path)
    await ctx.each("waitall", texts, check)
    if ctx.failed:
        return

    async def wait(path: tuple) -> None:
        try:
            record = await ctx.call(whole.get(ctx.circuit, path + ("waitexit",), ctx.caller))
        except errors.CircuitError as e:
            ctx.refused(f"waitall: {shown(path)}", e)
            return
        ctx.say(json.dumps({"path": shown(path), **json.loads(record)}) + "\n")
    results = await DeferredList([ensureDeferred(wait(p)) for p in paths], consumeErrors=True)
    for ok, failure in results:
        if not ok:
            failure.raiseException()  # cancelled (--timeout, the client gone), or a bug


def _host_of(ctx: Context, text: str) -> str:
    """The host a command names: its tree path (``/X...``) or its URL."""
    if text.startswith("circuit://"):
        path = (_url_id(text),)
    else:
        path = ctx.path(text)
    if len(path) != 1:
        raise errors.Invalid("not a host's path (/X... or its circuit:// URL)")
    ctx.circuit.host(path[0])  # unknown (ENOENT) or gone (EHOSTDOWN): now
    return path[0]


def _url_id(url: str) -> str:
    """The host ID of ``circuit://HOST:PORT/X...`` (the host checks the rest)."""
    scheme, _, rest = url.partition("://")
    address, _, host_id = rest.partition("/")
    if scheme != "circuit" or not address or not host_id or "/" in host_id:
        raise errors.Invalid(f"not a circuit URL: {url!r} (want circuit://HOST:PORT/X...)")
    return host_id


def _departure(circuit: ICircuit, host_id: str) -> Deferred:
    """Fires once ``host_id`` has left this circuit (gracefully or declared dead)."""
    gone: Deferred = Deferred(lambda _: stop_watching())

    def watcher(event: str, who: str) -> None:
        if event == "left" and who == host_id and not gone.called:
            stop_watching()
            gone.callback(None)
    stop_watching = circuit.watch_hosts(watcher)
    return gone


async def _stop(ctx: Context, args: list) -> None:
    """The host leaves gracefully (the others see it leave, not die), takes its processes
    down and exits.  Waits until this circuit has seen it go, except for the host running
    the command (or a client's first host), whose going ends the command's own link."""
    _, texts = _options(args, "")
    if not texts:
        raise Usage(usage("stop").splitlines()[0])

    async def stop(host_id: str, here: bool) -> None:
        gone = None if here else _departure(ctx.circuit, host_id)
        try:
            await ctx.call(ctx.circuit.put((host_id, "sys", "stop"), b"stop\n", ctx.caller))
            if gone is not None:
                await ctx.call(gone)
        finally:
            if gone is not None and not gone.called:  # refused, or given up: stop watching
                gone.addErrback(lambda f: f.trap(CancelledError))
                gone.cancel()
    targets = []
    for text in texts:
        try:
            targets.append((text, _host_of(ctx, text)))
        except errors.CircuitError as e:
            ctx.refused(f"stop: {text}", e)
    first = ctx.circuit.host_ids()[0]
    targets.sort(key=lambda t: t[1] == first)  # the host running the command last: its going ends it
    for text, host_id in targets:
        try:
            await stop(host_id, here=host_id == first)
        except errors.CircuitError as e:
            ctx.refused(f"stop: {text}", e)


async def _join(ctx: Context, args: list) -> None:
    """Two circuits become one: whichever of the two hosts is in this circuit joins
    through the other (``join URL``: the host running the command does)."""
    _, urls = _options(args, "")
    if len(urls) not in (1, 2):
        raise Usage(usage("join").splitlines()[0])
    try:
        ids = [_url_id(u) for u in urls]
        ours = set(ctx.circuit.host_ids())
        if len(urls) == 1:
            target, through = ctx.circuit.host_ids()[0], urls[0]
        elif ids[0] in ours:
            target, through = ids[0], urls[1]
        elif ids[1] in ours:
            target, through = ids[1], urls[0]
        else:
            raise errors.NotFound("neither host is in this circuit: run join on a member of one of them")
        if _url_id(through) in ours:
            return  # one circuit already: nothing to do
        await ctx.call(ctx.circuit.put((target, "sys", "join"), through.encode() + b"\n", ctx.caller))
    except errors.CircuitError as e:
        ctx.refused("join", e)


async def _mkselect(ctx: Context, args: list) -> None:
    _, rest = _options(args, "")
    if len(rest) < 2:
        raise Usage(usage("mkselect").splitlines()[0])
    clauses = []
    for c in rest[1:]:
        op, _, file = c.partition(":")
        if op not in ("r", "w") or not file:
            raise Usage(f"a clause is r:FILE or w:FILE, not {c!r}")
        clauses.append({"op": op, "file": file})

    await _on_element(ctx, "mkselect", rest[0], "select",
                      lambda e: _make(ctx, e, json.dumps(clauses).encode()))


async def _put(ctx: Context, args: list) -> None:
    text, = _exactly("put", args, 1)
    await ctx.each("put", [text], lambda p: write_file(ctx, p, False, ctx.stdin.chunks()))


async def _stdin(ctx: Context, args: list) -> None:
    text, = _exactly("stdin", args, 1)
    await _on_element(ctx, "stdin", text, "proc",
                      lambda e: write_file(ctx, e + ("stdin",), False, ctx.stdin.chunks()))


async def _signal(ctx: Context, args: list) -> None:
    sig, text = _exactly("signal", args, 2)
    await _on_element(ctx, "signal", text, "proc",
                      lambda e: _deliver(ctx, e + ("signal",), sig.encode() + b"\n"))


async def _events(ctx: Context, args: list) -> None:
    _exactly("events", args, 0)
    here = ctx.circuit.host_ids()[0]
    await read_file(ctx, (here, "sys", "events"))


_PLAIN = {"ls": _ls, "mkdir": _mkdir, "rmdir": _rmdir, "rm": _rm, "stat": _stat, "true": _true,
          "help": _help, "peek": _peek, "mkchan": _mkchan, "send": _send, "close": _close,
          "recv": _reader("recv", "chan", "recv"), "stdout": _reader("stdout", "proc", "stdout"),
          "stderr": _reader("stderr", "proc", "stderr"), "wait": _wait,
          "mkselect": _mkselect, "put": _put, "mkproc": _mkproc, "stdin": _stdin, "signal": _signal,
          "events": _events}
_PLAIN["waitall"] = _waitall
_PLAIN.update({"stop": _stop, "join": _join})
_WRITING = {"cat": _cat, "echo": _echo}


# -- the DNS server --------------------------------------------------------------------------
async def _mkdns(ctx: Context, args: list) -> None:
    _, rest = _options(args, "")
    if len(rest) not in (1, 2):
        raise Usage(usage("mkdns").splitlines()[0])

    async def mkdns(path: tuple) -> None:
        if len(rest) == 1:
            await ctx.call(ctx.circuit.mkdir(path))
        else:
            await _make(ctx, path, rest[1].encode("utf-8", "surrogateescape") + b"\n")
    await _on_element(ctx, "mkdns", rest[0], "dns", mkdns)


async def _set(ctx: Context, args: list) -> None:
    if not args:
        raise Usage(usage("set").splitlines()[0])
    text, lines = args[0], args[1:]

    async def set_(path: tuple) -> None:
        if lines:
            zone = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
        else:
            zone = await ctx.stdin.whole()
        await _deliver(ctx, path + ("set",), zone)  # every line, or none
    await _on_element(ctx, "set", text, "dns", set_)


async def _unset(ctx: Context, args: list) -> None:
    _, rest = _options(args, "")
    if len(rest) not in (2, 3):
        raise Usage(usage("unset").splitlines()[0])
    line = " ".join(rest[1:]).encode("utf-8", "surrogateescape") + b"\n"
    await _on_element(ctx, "unset", rest[0], "dns", lambda e: _deliver(ctx, e + ("unset",), line))


# -- the subscription ------------------------------------------------------------------------
def _mksubs(name: str, topics: Optional[str]):
    async def verb(ctx: Context, args: list) -> None:
        _, rest = _options(args, "")
        if len(rest) != (1 if topics else 2):
            raise Usage(usage(name).splitlines()[0])
        on = (topics or rest[1]).encode("utf-8", "surrogateescape") + b"\n"
        await _on_element(ctx, name, rest[0], "subs", lambda e: _make(ctx, e, on))
    return verb


async def _recv(ctx: Context, args: list) -> None:
    """One message from a channel, or one event from a subscription."""
    text, = _exactly("recv", args, 1)

    async def recv(path: tuple) -> None:
        if path[2] not in ("chan", "subs"):
            raise errors.Invalid(f"{text}: recv is for a channel or a subscription")
        await read_file(ctx, path + ("recv",))
    await _on_element(ctx, "recv", text, None, recv)


_PLAIN.update({"mkdns": _mkdns, "set": _set, "unset": _unset, "recv": _recv,
               "mksubs": _mksubs("mksubs", None), "mk@join": _mksubs("mk@join", "join"),
               "mk@leave": _mksubs("mk@leave", "leave")})
assert set(_PLAIN) | set(_WRITING) == set(VERBS)
assert set(_PLAIN) | set(_WRITING) == set(VERBS)


def _timeout(name: str, args: list) -> tuple:
    """``--timeout S`` taken out of a waiting command's arguments."""
    if "--timeout" not in args:
        return None, args
    if name not in WAITING:
        raise Usage(f"{name} does not wait; --timeout is for {', '.join(sorted(WAITING))}")
    i = args.index("--timeout")
    try:
        seconds = float(args[i + 1])
    except (IndexError, ValueError):
        raise Usage("--timeout wants a number of seconds")
    if seconds <= 0:
        raise Usage("--timeout wants a number of seconds above 0")
    return seconds, args[:i] + args[i + 2:]


async def _run(ctx: Context, line: Line) -> int:
    name, args = line.argv[0], line.argv[1:]
    if "--help" in args or "-h" in args:
        if name in VERBS:
            ctx.say(usage(name))
            return 0
    seconds, args = _timeout(name, args)
    if name in _WRITING:
        work = _WRITING[name](ctx, args, line.redirect)
    elif name in _PLAIN:
        if line.redirect is not None:
            raise Usage(f"{name} cannot write into a file; only cat and echo take > FILE")
        work = _PLAIN[name](ctx, args)
    else:
        raise Usage(f"{name}: no such command here (no shell; try: help)")
    if seconds is None:
        await work
    else:
        await _within(ctx, work, seconds)
    return 1 if ctx.failed else 0


async def _within(ctx: Context, work, seconds: float) -> None:
    d = ensureDeferred(work)
    timer = ctx.clock.callLater(seconds, d.cancel)
    try:
        await d
    except CancelledError:
        if timer.active():
            raise  # cancelled from outside: the client went
        ctx.refused("circuit", errors.TimedOut(f"timed out after {seconds:g} s; nothing was "
                                               "taken or given"))
    finally:
        if timer.active():
            timer.cancel()


def _started(ctx: Context, line: Callable[[], Line]) -> Deferred:
    async def main() -> int:
        try:
            return await _run(ctx, line())
        except Usage as e:
            ctx.err(f"circuit: {e}\n".encode("utf-8", "surrogateescape"))
            return 2
        except errors.CircuitError as e:
            ctx.refused("circuit", e)
            return 1
    d = ensureDeferred(main())

    def bug(failure):
        if failure.check(CancelledError):
            return failure
        ctx.err(f"circuit: {error_line(as_circuit_error(failure))}\n".encode())
        return 1
    return d.addErrback(bug)


def run(ctx: Context, command: bytes) -> Deferred:
    """Deferred[int], the exit status, of a command line (``ssh HOST COMMAND``).
    Cancel it when the client goes."""
    return _started(ctx, lambda: parse(command))


def run_argv(ctx: Context, argv: list) -> Deferred:
    """Deferred[int] of a command already split into words (the command line)."""
    def line() -> Line:
        if not argv or not all(isinstance(a, str) for a in argv):
            raise Usage("no command given; try: help")
        return Line(list(argv))
    return _started(ctx, line)
