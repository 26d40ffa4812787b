"""The whole tree: ``/`` lists the live hosts; each is an IHostTree.

Every view's requests land here with paths from ``/``: which host a path is on,
the root itself, and what cannot be done to a host's own directory are decided
once, here, for the mount, SSH and PB clients alike.
"""
from __future__ import annotations

import posixpath
from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from circuit import errors
from circuit.core.host import is_host_id
from circuit.interfaces import Attr, ICaller, ICircuit, IHostTree, OpenFlags


@implementer(ICircuit)
class Circuit:
    def __init__(self, started: float = 0.0) -> None:
        self.root_attr = Attr("dir", 0o555, mtime=started)  # "/" and each host's directory
        self.local: Optional[IHostTree] = None
        self._hosts: dict[str, IHostTree] = {}
        self._departed: set[str] = set()
        self._urls: dict[str, str] = {}
        self._watchers: list = []

    def watch_hosts(self, watcher) -> Callable[[], None]:
        """Tell ``watcher(event, host_id)`` ("joined" or "left") as hosts come and go.

        For views that cache what they showed (the kernel caches a host's
        directory entry).  Returns the call that stops it.
        """
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def add_host(self, tree: IHostTree, url: str = "", local: bool = False) -> None:
        self._hosts[tree.host_id] = tree
        self._urls[tree.host_id] = url
        self._departed.discard(tree.host_id)
        for watcher in list(self._watchers):
            watcher("joined", tree.host_id)
        if local:
            self.local = tree

    def remove_host(self, host_id: str) -> None:
        """The host left or died: calls still waiting on it fail with EHOSTDOWN."""
        tree = self._hosts.pop(host_id, None)
        if tree is not None:
            self._departed.add(host_id)
            left = getattr(tree, "host_left", None)
            if left is not None:
                left()
            for watcher in list(self._watchers):
                watcher("left", host_id)

    def host(self, host_id: str) -> IHostTree:
        try:
            return self._hosts[host_id]
        except KeyError:
            if host_id in self._departed:
                raise errors.HostDown(f"host {host_id} has left the circuit")
            if is_host_id(host_id):
                raise errors.NotFound(f"no host {host_id} in this circuit")
            raise errors.NotFound(f"{host_id!r} is not a host ID (X and 16 hex digits)")

    def set_url(self, host_id: str, url: str) -> None:
        self._urls[host_id] = url

    def url_of(self, host_id: str) -> str:
        return self._urls.get(host_id) or host_id

    def host_ids(self) -> list[str]:
        ids = list(self._hosts)
        if self.local is not None:
            ids.remove(self.local.host_id)
            ids.insert(0, self.local.host_id)
        return ids

    def tree_path(self, text: str, relative_to: tuple) -> tuple:
        """A path a user wrote (in a select clause, a run command) as a tuple from ``/``.

        A tree path (``/X.../dc/chan/c/recv``), one relative to ``relative_to``,
        or a path through a mount of the circuit on any host
        (``/mnt/circuit/X.../dc/...``): the tree path starts at its first host
        ID, so the owning host need not know where the writer's view is mounted.
        Raises Invalid for a path that does not lead into the circuit.
        """
        parts = self.resolve(text, relative_to)
        for i, part in enumerate(parts):
            if is_host_id(part):
                return parts[i:]
        raise errors.Invalid(f"{text!r} is not a path inside the circuit (/X.../dc/...)")

    # -- the whole tree, paths from "/" ----------------------------------------------------------
    def _on_host(self, path: tuple, method: str, *args) -> Deferred:
        """Call ``method`` on the tree of the host that ``path`` is in."""
        try:
            tree = self.host(path[0])
        except errors.CircuitError as e:
            return fail(e)
        return getattr(tree, method)(path[1:], *args)

    @staticmethod
    def _shown(path: tuple) -> str:
        return "/" + "/".join(path)

    def getattr(self, path: tuple) -> Deferred:
        if not path:
            return succeed(self.root_attr)
        return self._on_host(path, "getattr")

    def listdir(self, path: tuple) -> Deferred:
        if not path:
            return succeed([(h, self.root_attr) for h in self.host_ids()])
        return self._on_host(path, "listdir")

    def _inside_a_host(self, path: tuple, what: str) -> Optional[Deferred]:
        if len(path) < 2:
            return fail(errors.ReadOnly(f"{what} {self._shown(path)}: hosts come and go by joining "
                                        "and leaving, not through the tree"))
        return None

    def mkdir(self, path: tuple) -> Deferred:
        return self._inside_a_host(path, "mkdir") or self._on_host(path, "mkdir")

    def rmdir(self, path: tuple) -> Deferred:
        return self._inside_a_host(path, "rmdir") or self._on_host(path, "rmdir")

    def unlink(self, path: tuple) -> Deferred:
        return self._inside_a_host(path, "unlink") or self._on_host(path, "unlink")

    def rename(self, path: tuple, new_path: tuple) -> Deferred:
        refused = self._inside_a_host(path, "rename") or self._inside_a_host(new_path, "rename")
        if refused is not None:
            return refused
        if path[0] != new_path[0]:
            return fail(errors.CrossHost(f"rename {self._shown(path)}: {self._shown(new_path)} "
                                         "is on another host"))
        return self._on_host(path, "rename", new_path[1:])

    def setattr(self, path: tuple, size=None, mode=None, mtime=None) -> Deferred:
        if not path:
            return fail(errors.NotPermitted("/ cannot be changed"))
        return self._on_host(path, "setattr", size, mode, mtime)

    def open(self, path: tuple, flags: OpenFlags, caller: ICaller, mode: int = 0o666) -> Deferred:
        if len(path) == 1 and not flags.create:
            try:
                self.host(path[0])  # an unknown host is ENOENT, not a directory
            except errors.CircuitError as e:
                return fail(e)
        if len(path) < 2:
            if flags.create:
                return fail(errors.ReadOnly(f"{self._shown(path)}/...: files are made under a host's fs/"))
            return fail(errors.IsDirectory(f"{self._shown(path)} is a directory"))
        return self._on_host(path, "open", flags, caller, mode)

    def put(self, path: tuple, data: bytes, caller: ICaller) -> Deferred:
        return self._inside_a_host(path, "write") or self._on_host(path, "put", data, caller)

    def make(self, path: tuple, content: bytes, caller: ICaller, wait: bool = False) -> Deferred:
        return self._inside_a_host(path, "mkdir") or self._on_host(path, "make", content, caller, wait)

    def resolve(self, text: str, cwd: tuple = ()) -> tuple:
        if not text.startswith("/"):
            text = posixpath.join("/", *cwd, text)
        return tuple(p for p in posixpath.normpath(text).split("/") if p)

