"""The Python client: the circuit from a program, over PB with mutual TLS, as Deferreds.

    from circuit.client import connect
    c = yield connect("circuit://10.0.0.1:7700/X...", data="~/.circuit")
    host = (yield c.hosts())[0]
    ch = yield host.mkchan("jobs", cap=10)
    yield ch.send(b"job-1"); msg = yield ch.recv()
    p = yield host.mkproc("build", path="/usr/bin/make", args=["-C", "/src"])
    status = yield p.wait()
    status = yield host.mkproc_wait("again", path="/usr/bin/make")  # the two in one round trip

A client holds what a host holds of its peers: a `Circuit` whose hosts are
`RemoteHostTree`s, dialled with a client certificate.  Its element operations
are the tree's whole-file operations (`circuit.tree.whole`: put, get, make), the
ones the command line and ``ssh HOST COMMAND`` run too, each one PB call to the
owning host; a receive is confirmed by the client only once its Deferred is
still wanted, so a cancelled ``recv()`` takes nothing.  `Client.run` runs any
command of the command layer (`circuit.commands.verbs`) here.  Errors are
`circuit.errors` (each an errno and one line).  `circuit.client.blocking` wraps
all of this for plain scripts.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from circuit import errors
from circuit.client.credentials import load_credentials
from circuit.commands import verbs
from circuit.interfaces import ICaller
from circuit.pb.peers import Peers, parse_url
from circuit.pb.remote_tree import RemoteHostTree
from circuit.tree import whole
from circuit.tree.circuit import Circuit
from circuit.tree.session import Session

log = Logger("circuit.client")

__all__ = ["connect", "Client", "Host", "Chan", "Proc", "Select", "Dns", "Subscription"]


@implementer(ICaller)
class _Program:
    """The client program: there as long as it is connected."""

    def __init__(self, client: "Client"):
        self._client = client

    def alive(self) -> bool:
        return not self._client.closed


def connect(url: str, data: str = "~/.circuit", reactor=None) -> Deferred:
    """Deferred[Client] connected to the cluster through the host at ``url``.

    Credentials come from ``data``: ``client.pem``, ``client.key`` and ``ca.pem``
    (made with ``circuit ca client``), or a host's own data directory, whose CA
    (or signer) signs a client certificate for this connection."""
    if reactor is None:
        from twisted.internet import reactor
    client = Client(reactor, url, load_credentials(os.path.expanduser(data)))
    return ensureDeferred(client._start())


class Client:
    def __init__(self, reactor, url: str, credentials):
        _, _, host_id = parse_url(url)
        self.reactor = reactor
        self.url = url
        self.closed = False
        self.peers = Peers(reactor, credentials)
        self.circuit = Circuit(started=reactor.seconds())
        self.session = Session(self.circuit)
        self.caller = _Program(self)
        self._first = RemoteHostTree(self.peers, host_id, url)
        self._events: Optional[Deferred] = None

    async def _start(self) -> "Client":
        self.circuit.add_host(self._first, url=self.url, local=True)  # "first" in host lists
        members = await self.run(["cat", f"/{self._first.host_id}/sys/members"])
        for line in members.decode().split():
            self._joined(parse_url(line)[2], line)
        self._events = self._follow()
        return self

    # -- membership, as the first host tells it -------------------------------------------
    def _joined(self, host_id: str, url: str) -> None:
        if host_id != self._first.host_id:
            self.circuit.add_host(RemoteHostTree(self.peers, host_id, url), url=url)

    def _follow(self) -> Deferred:
        """Read the first host's sys/events for as long as the client lives."""
        def heard(event: dict) -> None:
            if "joined" in event:
                self._joined(event["joined"], event.get("url", ""))
            elif "left" in event:
                self.circuit.remove_host(event["left"])
                self.peers.disconnect(event["left"])
        d = self.events(heard)

        def ended(result):
            if not self.closed:
                log.warn("the client stopped hearing of hosts joining and leaving: {why}", why=result)
        return d.addBoth(ended)

    # -- running the command layer ------------------------------------------------------------
    def _context(self, out, stdin: Optional[bytes] = None):
        errs: list = []
        feed = verbs.Stdin()  # a command's whole input, given at once (none: empty)
        if stdin:
            feed.data(stdin)
        feed.eof()
        ctx = verbs.Context(self.circuit, self.session, self.caller, out=out, err=errs.append,
                            stdin=feed, clock=self.reactor)

        def run(argv: list) -> Deferred:
            return verbs.run_argv(ctx, argv).addCallback(lambda status: _raise_first(ctx, status, errs))
        return run

    def run(self, argv: list, stdin: Optional[bytes] = None) -> Deferred:
        """Deferred[bytes]: what one command of the command layer writes; its first
        refusal raised as the circuit error it was."""
        out: list = []
        return self._context(out.append, stdin)(argv).addCallback(lambda _: b"".join(out))

    def stream(self, argv: list, deliver) -> Deferred:
        """Run a command whose output is a stream (stdout, events): ``deliver(bytes)`` as it
        comes; the Deferred fires at its end.  Cancel it to stop."""
        return self._context(deliver)(argv)

    # -- the API -------------------------------------------------------------------------------
    def hosts(self) -> Deferred:
        """Deferred[list[Host]]: the live hosts, the one this client dialled first."""
        return succeed([Host(self, h) for h in self.circuit.host_ids()])

    def host(self, host_id: str) -> "Host":
        self.circuit.host(host_id)  # NotFound / HostDown now, not at the first call
        return Host(self, host_id)

    def events(self, deliver) -> Deferred:
        """Membership events as they happen: ``deliver(dict)`` for each.  Cancel to stop."""
        buffer = bytearray()

        def out(data: bytes) -> None:  # JSON lines, however the stream cuts them
            buffer.extend(data)
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                deliver(json.loads(line))
        return self.stream(["events"], out)

    def waitall(self, procs: list, timeout: Optional[float] = None) -> Deferred:
        """Deferred[list[dict]]: once every process has exited (on any hosts), their exit
        records, in the order given, each with its ``path``.  ``procs`` are `Proc` objects or tree
        paths.  Every path is checked first (a refusal waits for nothing); the first
        refusal is raised (EHOSTDOWN for a host that went meanwhile, ETIMEDOUT past
        ``timeout`` seconds)."""
        paths = [str(getattr(p, "path", p)) for p in procs]  # a Proc (or its blocking wrapper), or a path
        argv = ["waitall"] + (["--timeout", repr(float(timeout))] if timeout is not None else []) + paths

        def ordered(out: bytes) -> list:
            records = {r["path"]: r for r in map(json.loads, out.decode().splitlines())}
            shown = ["/" + "/".join(self.circuit.resolve(p)) for p in paths]
            return [records[p] for p in shown]
        return self.run(argv).addCallback(ordered)

    def _op(self, d: Deferred) -> Deferred:
        """An operation of the API: cancelled, as every other, when the client closes."""
        return self.session.track(d)

    def close(self) -> Deferred:
        """Cancel what is waiting, release what is open, hang up.  Fires once the connections
        have closed: only then has everything told the hosts left (the confirm of a message
        received last, above all), so stop the reactor or exit after it, not before."""
        self.closed = True
        self.session.close()
        if self._events is not None:
            self._events.cancel()
        return self.peers.close()


def _run_command(path: str, args: tuple, env: Optional[list], dir: Optional[str], scrub: bool) -> bytes:
    """A process's ``run`` file (files.md)."""
    command: dict = {"path": path, "args": list(args)}
    if env is not None:
        command["env"] = list(env)
    if dir is not None:
        command["dir"] = dir
    if scrub:
        command["scrub"] = True
    return json.dumps(command).encode()


def _raise_first(ctx, status: int, errs: list):
    if ctx.failed:
        raise ctx.failed[0]
    if status != 0:
        raise errors.Invalid((b"".join(errs).decode(errors="replace").strip()) or f"exit status {status}")
    return status


class Host:
    def __init__(self, client: Client, host_id: str):
        self.client = client
        self.id = host_id

    def __repr__(self) -> str:
        return f"<Host {self.id}>"

    def _path(self, kind: str, name: str) -> tuple:
        return (self.id, "dc", kind, name)

    def ls(self, kind: str) -> Deferred:
        """Deferred[list[str]]: the names of this host's elements of ``kind`` (proc, chan, select, dns, subs)."""
        return self.client._op(self.client.circuit.listdir((self.id, "dc", kind))).addCallback(
            lambda entries: [name for name, _ in entries])

    def _make(self, cls, kind: str, name: str, content: bytes) -> Deferred:
        path = self._path(kind, name)
        return self.client._op(self.client.circuit.make(path, content, self.client.caller)).addCallback(
            lambda _: cls(self.client, path))

    def mkchan(self, name: str, cap: int = 0) -> Deferred:
        return self._make(Chan, "chan", name, f"{cap}\n".encode())

    def chan(self, name: str) -> "Chan":
        return Chan(self.client, self._path("chan", name))

    def mkproc(self, name: str, path: str, args: tuple = (), env: Optional[list] = None,
               dir: Optional[str] = None, scrub: bool = False) -> Deferred:
        """Deferred[Proc]: make a process and start ``path`` with ``args``."""
        return self._make(Proc, "proc", name, _run_command(path, args, env, dir, scrub))

    def mkproc_wait(self, name: str, path: str, args: tuple = (), env: Optional[list] = None,
                    dir: Optional[str] = None, scrub: bool = False) -> Deferred:
        """Deferred[dict]: `mkproc`, then `Proc.wait`, in one round trip to the host.

        The exit record, once the process has exited.  Cancelling it ends the wait, not
        the process, which stays as ``self.proc(name)`` (its output, its removal)."""
        c = self.client
        return c._op(c.circuit.make(self._path("proc", name), _run_command(path, args, env, dir, scrub),
                                    c.caller, wait=True)).addCallback(json.loads)

    def proc(self, name: str) -> "Proc":
        return Proc(self.client, self._path("proc", name))

    def mkselect(self, name: str, clauses: list) -> Deferred:
        """Make and arm a select over ``clauses``: ("r", FILE) or ("w", FILE) pairs, FILE a tree
        path (or relative to this host's dc/)."""
        spelled = [{"op": op, "file": file} for op, file in clauses]
        return self._make(Select, "select", name, json.dumps(spelled).encode())

    def select(self, name: str) -> "Select":
        return Select(self.client, self._path("select", name))

    def mkdns(self, name: str, addr: Optional[str] = None) -> Deferred:
        """Make a DNS server (dc/dns/NAME), listening on ``addr`` (IP:PORT) if given."""
        if addr is None:
            path = self._path("dns", name)
            return self.client._op(self.client.circuit.mkdir(path)).addCallback(
                lambda _: Dns(self.client, path))
        return self._make(Dns, "dns", name, f"{addr}\n".encode())

    def dns(self, name: str) -> "Dns":
        return Dns(self.client, self._path("dns", name))

    def mksubs(self, name: str, *topics: str) -> Deferred:
        """Make a subscription (dc/subs/NAME) keeping the events of ``topics`` ("join",
        "leave" or both) until read."""
        return self._make(Subscription, "subs", name, " ".join(topics).encode() + b"\n")

    def subscription(self, name: str) -> "Subscription":
        return Subscription(self.client, self._path("subs", name))


class _Element:
    """An element on some host: each operation is one whole-file operation of the tree
    (`circuit.tree.whole`): a ``put``, a ``get`` or a ``make``, one PB call each."""

    def __init__(self, client: Client, path: tuple):
        self.client = client
        self._tree_path = path
        self.path = "/" + "/".join(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    def _put(self, file: str, data: bytes) -> Deferred:
        c = self.client
        return c._op(c.circuit.put(self._tree_path + (file,), data, c.caller)).addCallback(lambda _: None)

    def _get(self, file: str) -> Deferred:
        c = self.client
        return c._op(whole.get(c.circuit, self._tree_path + (file,), c.caller))

    def stat(self) -> Deferred:
        """Deferred[dict]: the element's stat."""
        return self._get("stat").addCallback(json.loads)

    def remove(self) -> Deferred:
        return self.client._op(self.client.circuit.rmdir(self._tree_path)).addCallback(lambda _: None)


class Chan(_Element):
    def send(self, message: bytes) -> Deferred:
        """Fires once the channel took the message (buffered, or a receiver has it)."""
        return self._put("send", message)

    def recv(self) -> Deferred:
        """Deferred[bytes]: one message.  Cancelling it takes nothing."""
        return self._get("recv")

    def close(self) -> Deferred:
        return self._put("close", b"\n")


class Select(_Element):
    def wait(self) -> Deferred:
        """Deferred[dict]: which clause committed ({"clause": N, "file": "read.N"}, ...)."""
        return self._get("wait").addCallback(json.loads)

    def read(self, n: int) -> Deferred:
        """Deferred[bytes]: what committed read clause ``n`` took."""
        return self._get(f"read.{n}")

    def write(self, n: int, message: bytes) -> Deferred:
        """Make committed write clause ``n``'s send."""
        return self._put(f"write.{n}", message)

    def abort(self) -> Deferred:
        return self._put("abort", b"abort\n")


class Proc(_Element):
    def wait(self) -> Deferred:
        """Deferred[dict]: the exit record, once the process has exited."""
        return self._get("waitexit").addCallback(json.loads)

    def signal(self, name: str) -> Deferred:
        return self._put("signal", str(name).encode() + b"\n")

    def stdout(self) -> Deferred:
        """Deferred[bytes]: the whole standard output, once the process has ended it."""
        return self._get("stdout")

    def stderr(self) -> Deferred:
        return self._get("stderr")

    def stream_stdout(self, deliver) -> Deferred:
        """``deliver(bytes)`` as the process writes; fires when its output ends."""
        return self.client.stream(["stdout", self.path], deliver)

    def write_stdin(self, data: bytes) -> Deferred:
        """Write ``data`` to the process's stdin and close it."""
        return self._put("stdin", data)


class Dns(_Element):
    """A DNS server whose records the circuit sets (dc/dns/NAME)."""

    def listen(self, addr: str) -> Deferred:
        """Serve on ``addr`` (IP:PORT, UDP and TCP), or move there."""
        return self._put("addr", f"{addr}\n".encode())

    def addr(self) -> Deferred:
        """Deferred[str | None]: where it listens, as bound."""
        return self._get("addr").addCallback(lambda b: b.decode().strip() or None)

    def set(self, *lines: str) -> Deferred:
        """Add records, zone-file lines (``"db.cluster. A 10.0.0.7"``); the NAME and TYPE
        of each replace the records held for them.  All of them, or none."""
        return self._put("set", "".join(line + "\n" for line in lines).encode())

    def unset(self, name: str, type: Optional[str] = None) -> Deferred:
        """Remove a name's records, or only those of ``type``."""
        return self._put("unset", f"{name} {type or ''}".strip().encode() + b"\n")

    def records(self) -> Deferred:
        """Deferred[list[str]]: the records held, as zone-file lines."""
        return self._get("records").addCallback(lambda b: b.decode().splitlines())


class Subscription(_Element):
    """Membership events kept until read (dc/subs/NAME)."""

    def recv(self) -> Deferred:
        """Deferred[dict]: the next event, {"joined": ID, "url": URL} or {"left": ID,
        "reason": "left" | "failed"}.  Cancelling it takes nothing."""
        return self._get("recv").addCallback(json.loads)
