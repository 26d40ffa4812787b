"""The root of the tree: ``/`` lists the live hosts; each is an IHostTree."""
from __future__ import annotations

import posixpath
from typing import Optional

from zope.interface import implementer

from circuit import errors
from circuit.core.host import is_host_id
from circuit.interfaces import ICircuit, IHostTree


@implementer(ICircuit)
class Circuit:
    def __init__(self) -> None:
        self.local: Optional[IHostTree] = None
        self._hosts: dict[str, IHostTree] = {}
        self._departed: set[str] = set()
        self._urls: dict[str, str] = {}
        # Where the tree is mounted on this machine, so a select clause may
        # name a file by its path in the mount.
        self.mount_prefixes: list[str] = []
        # Told ("joined" | "left", host_id) as hosts come and go (the FUSE view
        # drops its cached entry for a host that left).
        self.listeners: list = []

    def add_host(self, tree: IHostTree, url: str = "", local: bool = False) -> None:
        self._hosts[tree.host_id] = tree
        self._urls[tree.host_id] = url
        self._departed.discard(tree.host_id)
        for listener in self.listeners:
            listener("joined", tree.host_id)
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
            for listener in self.listeners:
                listener("left", host_id)

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
        """A user's path (tree, mount or relative) as a tuple from ``/``.

        Raises Invalid for a path that does not lead into the circuit.
        """
        for prefix in self.mount_prefixes:
            if text == prefix or text.startswith(prefix.rstrip("/") + "/"):
                text = text[len(prefix.rstrip("/")):] or "/"
                break
        if not text.startswith("/"):
            text = posixpath.join("/", *relative_to, text)
        parts = tuple(p for p in posixpath.normpath(text).split("/") if p)
        if not parts or not is_host_id(parts[0]):
            raise errors.Invalid(f"{text!r} is not a path inside the circuit (/X.../dc/...)")
        return parts
