"""One host: the element core, its tree, and the views that serve it, as one MultiService."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from twisted.application.service import MultiService
from twisted.logger import Logger

from circuit.core.host import Host
from circuit.tree.circuit import Circuit
from circuit.tree.local import LocalHostTree

log = Logger("circuit")

@dataclass
class Settings:
    addr: str = "127.0.0.1:0"
    mount: Optional[str] = None
    join: Optional[str] = None
    data: str = os.path.expanduser("~/.circuit")
    fs_root: Optional[str] = None
    allow_other: bool = False
    max_fuse_requests: int = 10000


class CircuitService(MultiService):
    """Holds this host's elements and serves its tree through the configured views."""

    def __init__(self, settings: Settings, reactor):
        super().__init__()
        self.setName("circuit")
        self.settings = settings
        self.reactor = reactor
        os.makedirs(settings.data, mode=0o700, exist_ok=True)
        self.host = Host(reactor)
        self.host.url = f"circuit://{settings.addr}/{self.host.id}"
        self.circuit = Circuit()
        fs_root = settings.fs_root or os.path.join(settings.data, "fs")
        self.tree = LocalHostTree(self.host, fs_root, self.circuit)
        self.circuit.add_host(self.tree, url=self.host.url, local=True)
        self.fuse = None
        if settings.mount:
            from circuit.fuse.mount import FuseMount  # pyfuse3 only when mounting
            self.fuse = FuseMount(self.circuit, settings.mount, reactor,
                                  allow_other=settings.allow_other,
                                  max_requests=settings.max_fuse_requests)
            self.fuse.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        with open(os.path.join(self.settings.data, "url"), "w") as f:
            f.write(self.host.url + "\n")
        # The URL on a line of its own on the real standard output (twistd has
        # replaced sys.stdout with a logger), for people and scripts.
        try:
            os.write(1, (self.host.url + "\n").encode())
        except OSError:
            pass  # daemonized: no standard output
        log.info("circuit host {url}", url=self.host.url)
        if self.fuse is not None:
            self.fuse.mounted.addCallback(
                lambda where: log.info("the tree is mounted at {where}/{id}", where=where, id=self.host.id))

    def stopService(self):
        d = super().stopService()
        for kind in list(self.host.elements):
            for name in list(self.host.elements[kind]):
                self.host.remove(kind, name)  # kills running processes
        return d
