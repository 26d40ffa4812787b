"""The local host's tree: paths under ``/X.../`` mapped onto the element core."""
from __future__ import annotations

import errno as _errno
from dataclasses import replace
from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from circuit import errors
from circuit.core.command import Command
from circuit.core.host import KINDS, Host
from circuit.interfaces import Attr, ICaller, IHandle, IHostTree, OpenFlags
from circuit.tree import help as helptext
from circuit.tree import whole
from circuit.tree.chan_files import CHANNEL, CHANNEL_OPS
from circuit.tree.callers import MEMBERS_ONLY, members_only
from circuit.tree.circuit import Circuit
from circuit.tree.context import ElementContext, as_json
from circuit.tree.dns_files import DNS
from circuit.tree.subs_files import SUBSCRIPTION, SUBSCRIPTION_OPS
from circuit.tree.fs import FsRoot
from circuit.tree.handles import Handle, MessageHandle, StreamHandle, TextHandle
from circuit.tree.proc_files import PROCESS, PROCESS_OPS
from circuit.tree.select_files import select_files
from circuit.tree.table import ControlFile

log = Logger("circuit")

_DIR_RO, _DIR_RW = 0o555, 0o777
_OPS = {"chan": CHANNEL_OPS, "proc": PROCESS_OPS, "select": {}, "dns": {}, "subs": SUBSCRIPTION_OPS}
_TABLES = {"chan": CHANNEL, "proc": PROCESS, "dns": DNS, "subs": SUBSCRIPTION}  # a select's files change as it commits


def _text(fn: Callable[[Any], str | bytes]):
    def open_(ctx, flags, caller):
        content = fn(ctx)
        return TextHandle(content if isinstance(content, bytes) else content.encode())
    return open_


_HELP = ControlFile("help", "r", None)

# help and error, present in every element directory
_COMMON = {
    "help": ControlFile("help", "r", _text(lambda ctx: helptext.KINDS[ctx.kind])),
    "error": ControlFile("error", "r", _text(lambda ctx: ctx.tree.last_error(ctx.kind, ctx.name))),
}


class _Recording(Handle):
    """Passes everything to the inner handle, noting refusals in the element's error file."""

    def __init__(self, inner: IHandle, note: Callable[[Any], Any]):
        self.inner = inner
        self.streaming = inner.streaming
        self._note = note

    def read(self, offset, size):
        return self.inner.read(offset, size).addErrback(self._note)

    def write(self, offset, data):
        return self.inner.write(offset, data).addErrback(self._note)

    def flush(self):
        return self.inner.flush().addErrback(self._note)

    def release(self):
        return self.inner.release().addErrback(self._note)

    @property
    def settled(self):
        return self.inner.settled

    def known_size(self):
        return self.inner.known_size()

    def available(self):
        return self.inner.available()

    def offered(self):
        return self.inner.offered()

    def offer_tag(self):
        return self.inner.offer_tag()

    def confirm(self):
        self.inner.confirm()

    def unread(self):
        self.inner.unread()

    def lost(self):
        self.inner.lost()

    def try_flush(self):
        # Would wait: no refusal, the writer's host waits and tries again.
        return self.inner.try_flush().addErrback(
            lambda f: f if f.check(errors.WouldBlock) else self._note(f))

    def flush_ready(self):
        return self.inner.flush_ready().addErrback(self._note)


@implementer(IHostTree)
class LocalHostTree:
    def __init__(self, host: Host, fs_root: str, circuit: Circuit):
        self.host = host
        self.host_id = host.id
        self.fs = FsRoot(fs_root)
        self.circuit = circuit
        self._errors: dict[tuple[str, str], str] = {}
        self.control = None  # IHostControl: sys/stop and sys/join; given by the service
        host.on_removed.append(lambda kind, name: self._errors.pop((kind, name), None))

    # -- the error file ---------------------------------------------------------------
    def last_error(self, kind: str, name: str) -> str:
        line = self._errors.get((kind, name), "")
        return line + "\n" if line else ""

    def record(self, kind: str, name: str, error: errors.CircuitError) -> None:
        line = f"{error.message} ({errno_name(error.errno)})"
        self._errors[(kind, name)] = line
        log.info("{path}: {line}", path=f"/{self.host_id}/dc/{kind}/{name}", line=line)

    def _noter(self, kind: str, name: str):
        def note(failure):
            if failure.check(errors.CircuitError) and not failure.check(*errors.QUIET):
                if (kind, name) in self._errors or name in self.host.elements.get(kind, {}):
                    self.record(kind, name, failure.value)
            return failure
        return note

    # -- lookups ----------------------------------------------------------------------
    def _element(self, path: tuple) -> ElementContext:
        kind, name = path[1], path[2]
        return ElementContext(self, kind, name, self.host.get(kind, name))

    def _files(self, ctx: ElementContext) -> dict[str, ControlFile]:
        own = select_files(ctx.element) if ctx.kind == "select" else _TABLES[ctx.kind]
        return {**_COMMON, **own}

    def _file(self, path: tuple) -> tuple[ElementContext, ControlFile]:
        ctx = self._element(path)
        try:
            return ctx, self._files(ctx)[path[3]]
        except KeyError:
            raise errors.NotFound(f"{ctx.path} has no file {path[3]!r}")

    def _getattr(self, path: tuple) -> Attr:
        t = self.host.started
        n = len(path)
        if n == 0:
            return Attr("dir", _DIR_RO, mtime=t)
        top = path[0]
        if top == "help" and n == 1:
            return Attr("file", 0o444, mtime=t)
        if top == "fs":
            return self.fs.getattr(path[1:])
        if top == "sys":
            if n == 1:
                return Attr("dir", _DIR_RO, mtime=t)
            if n == 2 and path[1] in _SYS:
                f = _SYS[path[1]]
                return Attr("file", f.permissions, mtime=t, streaming=f.streaming)
        if top == "dc":
            if n == 1:
                return Attr("dir", _DIR_RW, mtime=t)
            if path[1] not in KINDS:
                raise errors.NotFound(f"no {path[1]!r} in dc/: {', '.join(KINDS)}")
            if n == 2:
                return Attr("dir", _DIR_RW, mtime=t)
            self._element(path)  # raises NotFound for an unknown element
            if n == 3:
                return Attr("dir", _DIR_RO, mtime=t)
            if n == 4:
                f = self._file(path)[1]
                return Attr("file", f.permissions, mtime=t, streaming=f.streaming)
        raise errors.NotFound(f"no such file: /{self.host_id}/{'/'.join(path)}")

    def getattr(self, path: tuple) -> Deferred:
        return maybeDeferred(self._getattr, path)

    def _listdir(self, path: tuple) -> list[tuple[str, Attr]]:
        n = len(path)
        if n >= 1 and path[0] == "fs":
            return self.fs.listdir(path[1:])
        if self._getattr(path).kind != "dir":
            raise errors.NotDirectory(f"/{self.host_id}/{'/'.join(path)} is not a directory")
        if n == 0:
            names = ["help", "dc", "sys", "fs"]
        elif path == ("sys",):
            names = list(_SYS)
        elif path == ("dc",):
            names = list(KINDS)
        elif n == 2:
            # Every element's directory looks the same: one Attr for all (100,000 of them
            # are listed in a tenth of the time it takes to ask each).
            same = Attr("dir", _DIR_RO, mtime=self.host.started)
            return [(name, same) for name in sorted(self.host.elements[path[1]])]
        else:
            names = sorted(self._files(self._element(path)))
        entries = []
        for name in names:
            try:
                entries.append((name, self._getattr(path + (name,))))
            except errors.CircuitError:
                continue  # removed while we listed
        return entries

    def listdir(self, path: tuple) -> Deferred:
        return maybeDeferred(self._listdir, path)

    # -- changing the tree ------------------------------------------------------------
    def _mkdir(self, path: tuple) -> None:
        if path[:1] == ("fs",) and len(path) > 1:
            return self.fs.mkdir(path[1:])
        if len(path) == 3 and path[0] == "dc":
            if path[1] not in KINDS:
                raise errors.NotFound(f"no {path[1]!r} in dc/: {', '.join(KINDS)}")
            self.host.make(path[1], path[2])
            return None
        if len(path) == 2 and path[0] == "dc":
            raise errors.Invalid("make elements inside " + ", ".join(f"dc/{k}" for k in KINDS))
        raise errors.ReadOnly(f"cannot make a directory at /{self.host_id}/{'/'.join(path)}")

    def mkdir(self, path: tuple) -> Deferred:
        return maybeDeferred(self._mkdir, path).addErrback(self._log_refusal, "mkdir", path)

    def _rmdir(self, path: tuple) -> None:
        if path[:1] == ("fs",):
            return self.fs.rmdir(path[1:])
        if len(path) == 3 and path[0] == "dc":
            return self.host.remove(path[1], path[2])  # a Deferred while its end takes time
        raise errors.ReadOnly(f"cannot remove /{self.host_id}/{'/'.join(path)}")

    def rmdir(self, path: tuple) -> Deferred:
        return maybeDeferred(self._rmdir, path).addErrback(self._log_refusal, "rmdir", path)

    def remove_element(self, kind: str, name: str) -> None:
        if name in self.host.elements.get(kind, {}):
            self.host.remove(kind, name)

    def _log_refusal(self, failure, what: str, path: tuple):
        if failure.check(errors.CircuitError):
            log.info("{what} {path}: {why}", what=what, path=f"/{self.host_id}/" + "/".join(path), why=failure.value.message)
        return failure

    def _fs_only(self, path: tuple, what: str) -> tuple:
        if path[:1] != ("fs",) or len(path) < 2:
            raise errors.ReadOnly(f"{what}: only files under fs/ can be changed that way")
        return path[1:]

    def unlink(self, path: tuple) -> Deferred:
        return maybeDeferred(lambda: self.fs.unlink(self._fs_only(path, "unlink")))

    def rename(self, path: tuple, new_path: tuple) -> Deferred:
        return maybeDeferred(lambda: self.fs.rename(self._fs_only(path, "rename"),
                                                    self._fs_only(new_path, "rename")))

    def setattr(self, path: tuple, size=None, mode=None, mtime=None) -> Deferred:
        if path[:1] == ("fs",) and len(path) > 1:
            return maybeDeferred(self.fs.setattr, path[1:], size, mode, mtime)
        # Control files: truncation (O_TRUNC, ">") and touching are accepted and mean nothing.
        return self.getattr(path)

    # -- opening files ----------------------------------------------------------------
    def _open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int) -> IHandle:
        if path[:1] == ("fs",) and len(path) > 1:
            return self.fs.open(path[1:], flags, mode)
        n = len(path)
        if n == 1 and path[0] == "help":
            self._check(_HELP, flags, path)
            return TextHandle(self._help())
        if n == 2 and path[0] == "sys" and path[1] in _SYS:
            f = _SYS[path[1]]
            self._check(f, flags, path)
            return f.open(self, flags, caller)
        if n == 4 and path[0] == "dc" and path[1] in KINDS:
            ctx, f = self._file(path)
            note = self._noter(ctx.kind, ctx.name)
            try:
                self._check(f, flags, path)
                handle = f.open(ctx, flags, caller)
            except errors.CircuitError as e:
                if not isinstance(e, errors.QUIET):
                    self.record(ctx.kind, ctx.name, e)
                raise
            return _Recording(handle, note)
        if flags.create:
            raise errors.NotFound(f"no such file: /{self.host_id}/{'/'.join(path)} "
                                  "(only fs/ holds files you make)")
        kind = self._getattr(path).kind
        if kind == "dir":
            raise errors.IsDirectory(f"/{self.host_id}/{'/'.join(path)} is a directory")
        raise errors.NotFound(f"no such file: /{self.host_id}/{'/'.join(path)}")

    def _check(self, f: ControlFile, flags: OpenFlags, path: tuple) -> None:
        if flags.write and "w" not in f.mode:
            raise errors.ReadOnly(f"{f.name} is read-only")
        if flags.read and "r" not in f.mode:
            raise errors.ReadOnly(f"{f.name} is write-only")

    def open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666) -> Deferred:
        return maybeDeferred(self._open, path, flags, caller, mode)

    def put(self, path: tuple, data: bytes, caller: ICaller) -> Deferred:
        return whole.put(self, path, data, caller)

    def make(self, path: tuple, content: bytes, caller: ICaller, wait: bool = False) -> Deferred:
        return whole.make(self, path, content, caller, wait)

    def _help(self) -> bytes:
        return helptext.HOST.format(id=self.host_id, url=self.host.url or "(no URL)",
                                    fs_root=self.fs.root).encode()

    # -- select clauses ---------------------------------------------------------------
    def clause(self, path: tuple, op: str, spelled: str) -> Deferred:
        return maybeDeferred(self._clause, path, op, spelled)

    def _clause(self, path: tuple, op: str, spelled: str):
        if len(path) != 4 or path[0] != "dc" or path[1] not in KINDS:
            raise errors.Invalid(f"select: {spelled} is not a control file one can wait on")
        try:
            ctx, f = self._file(path)
        except errors.NotFound as e:
            raise errors.Invalid(f"select: {spelled}: {e.message}")
        ops = _OPS[ctx.kind].get(f.name, "")
        if f.clause is None or not ops:
            raise errors.Invalid(f"select: {spelled}: {f.name} cannot be waited on")
        if op not in ops:
            raise errors.Invalid(f'select: {spelled}: {f.name} takes op "{ops}", not "{op}"')
        return f.clause(ctx, op, spelled)

    def resolve_clause(self, spelled: str, op: str) -> Deferred:
        """A clause for a file named anywhere in the circuit (relative to this host's dc/)."""
        parts = self.circuit.tree_path(spelled, (self.host_id, "dc"))
        try:
            host = self.circuit.host(parts[0])
        except errors.NotFound as e:
            raise errors.Invalid(f"select: {spelled}: {e.message}")
        return host.clause(parts[1:], op, spelled)

    # -- process paths into fs/ -------------------------------------------------------
    def localize(self, command: Command) -> Command:
        """Map a ``path`` or ``dir`` that names this host's fs/ onto the real directory."""
        return replace(command, path=self._real(command.path),
                       dir=None if command.dir is None else self._real(command.dir))

    def _real(self, text: str) -> str:
        if not text.startswith("/"):
            return text
        try:
            parts = self.circuit.tree_path(text, ())
        except errors.Invalid:
            return text
        if parts[0] == self.host_id and parts[1:2] == ("fs",):
            return self.fs.real(parts[2:])
        raise errors.Invalid(f"run: {text} is a circuit path outside this host's fs/")


def errno_name(code: int) -> str:
    return _errno.errorcode.get(code, str(code))


# -- sys/ ---------------------------------------------------------------------------------

def _events(tree: LocalHostTree, flags, caller):
    subscription = tree.host.events.subscribe()
    return StreamHandle(subscription, on_release=subscription.close)


def _sys_text(fn):
    def open_(tree, flags, caller):
        return TextHandle(fn(tree))
    return open_


# -- sys/stop and sys/join: the host itself, asked by members only ----------------------------

def _control(tree: LocalHostTree, caller, what: str):
    members_only(caller, what)
    if tree.control is None:
        raise errors.NotPermitted(f"this host cannot be asked to {what}")
    return tree.control


def _one_line(text: bytes, what: str) -> str:
    """The line written, while it is still arriving ("" until its newline) or whole at the end."""
    try:
        line = text.decode("ascii")
    except UnicodeDecodeError:
        raise errors.Invalid(f"write {what}: one line of plain ASCII")
    if "\n" in line.rstrip("\n") or any(c.isspace() for c in line.strip()) or "\0" in line:
        raise errors.Invalid(f"write {what}: one line, one word")
    return line.strip()


def _stop(tree: LocalHostTree, flags, caller):
    control = _control(tree, caller, MEMBERS_ONLY["sys", "stop"])
    what = "the word stop to stop this host"

    def check(text: bytes) -> None:  # at write(2): the shell's echo hears only this
        if not "stop".startswith(_one_line(text, what)):
            raise errors.Invalid(f"write {what}")

    def deliver(text: bytes) -> None:
        if _one_line(text, what) != "stop":  # `: > stop` or `touch stop` stop nothing
            raise errors.Invalid(f"write {what}")
        log.info("asked to stop: leaving the circuit, then exiting")
        control.stop()
    return MessageHandle(deliver, check=check, limit=64)


def _join(tree: LocalHostTree, flags, caller):
    control = _control(tree, caller, MEMBERS_ONLY["sys", "join"])
    what = "a circuit URL (circuit://HOST:PORT/X...) for this host to join through"

    def check(text: bytes):
        url = _one_line(text, what)
        if text.endswith(b"\n"):  # a whole line: is it a host of this CA that answers?
            return control.check_join(url)
        return None

    def deliver(text: bytes):
        url = _one_line(text, what)
        if not url:
            raise errors.Invalid(f"write {what}")
        log.info("asked to join the circuit of {url}", url=url)
        return control.join(url)
    return MessageHandle(deliver, check=check, limit=1024)


_SYS = {
    "id": ControlFile("id", "r", _sys_text(lambda t: (t.host_id + "\n").encode())),
    "url": ControlFile("url", "r", _sys_text(lambda t: (t.host.url + "\n").encode() if t.host.url else b"")),
    "members": ControlFile("members", "r", _sys_text(
        lambda t: "".join(t.circuit.url_of(h) + "\n" for h in t.circuit.host_ids()).encode())),
    "events": ControlFile("events", "r", _events, streaming=True),
    "stat": ControlFile("stat", "r", _sys_text(lambda t: as_json(t.host.stat()))),
    "stop": ControlFile("stop", "w", _stop),
    "join": ControlFile("join", "w", _join),
}
