"""One host's elements and identity: what ``/X.../`` is made of, minus the files."""
from __future__ import annotations

import gc
import os
import re
import resource
import secrets
import time
from collections import Counter
from typing import Callable, Optional, Union

from twisted.internet.defer import Deferred

from circuit import errors
from circuit.core.channel import Channel
from circuit.core.dns import DnsServer
from circuit.core.events import EventHub
from circuit.core.process import Process
from circuit.core.select import Select
from circuit.core.subscription import Subscription

Element = Union[Channel, Process, Select, DnsServer, Subscription]
KINDS = ("proc", "chan", "select", "dns", "subs")
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\Z")
_HOST_ID = re.compile(r"X[0-9a-f]{16}\Z")
COLLECT_AFTER = 2.0  # seconds after a removal: the full garbage collection that gives memory back


def new_host_id() -> str:
    return "X" + secrets.token_hex(8)


def is_host_id(text: str) -> bool:
    return bool(_HOST_ID.match(text))


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise errors.Invalid(
            f"bad name {name!r}: use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with a dot")


class Host:
    """The elements made on this host, by kind and name."""

    def __init__(self, reactor, host_id: Optional[str] = None, url: str = "",
                 clock: Callable[[], float] = time.time,
                 environ: Optional[dict[str, str]] = None, keeper=None):
        self.reactor = reactor
        self.keeper = keeper
        self.id = host_id or new_host_id()
        self.url = url
        self.clock = clock
        self.started = clock()
        self.environ = dict(os.environ if environ is None else environ)
        self.elements: dict[str, dict[str, Element]] = {k: {} for k in KINDS}
        self.events = EventHub()
        self.on_removed: list[Callable[[str, str], None]] = []
        self._collecting = None  # the collection after removals, once scheduled
        self._removed = 0  # elements removed since the last collection
        # Requests served, by view and kind ("fuse read", "pb flush"): what an operation
        # costs in round trips, and what keeps a host busy (sys/stat, bench/cluster.py).
        self.requests: Counter = Counter()

    def make(self, kind: str, name: str) -> Element:
        check_name(name)
        table = self._table(kind)
        if name in table:
            raise errors.Exists(f"{kind}/{name} already exists")
        element: Element
        if kind == "chan":
            element = Channel()
        elif kind == "proc":
            element = Process(self.reactor, self.environ, self.clock, self.keeper)
        elif kind == "dns":
            element = DnsServer(self.reactor)
        elif kind == "subs":
            element = Subscription(self.events)
        else:
            element = Select()
        table[name] = element
        return element

    def get(self, kind: str, name: str) -> Element:
        try:
            return self._table(kind)[name]
        except KeyError:
            raise errors.NotFound(f"no element {kind}/{name} on {self.id}")

    def remove(self, kind: str, name: str) -> Optional[Deferred]:
        """Remove an element; a Deferred when its end takes time (a DNS server's
        listeners closing), fired once it is over."""
        element = self.get(kind, name)
        del self.elements[kind][name]
        if isinstance(element, Select):
            ended = element.abort()
        else:
            ended = element.remove()
        for callback in self.on_removed:
            callback(kind, name)
        self._removed += 1
        self._collect_soon()
        return ended if isinstance(ended, Deferred) else None

    def _collect_soon(self) -> None:
        """A full collection after removals, so that memory goes back to the system.  A
        removed element is freed at once, but the allocator's pools stay mapped while a
        single block in them is used, and the free lists that a full collection empties
        pin many: 200 selects of 1000 clauses made and removed left a host at 250 MB, and
        86 MB after one collection.  A collection pauses the host (18 ms with 10,000
        elements, 130 ms with 100,000), so it runs COLLECT_AFTER seconds after removals
        that amount to a tenth of the elements there were (as Python's own oldest
        generation is collected when it has grown by a quarter)."""
        live = sum(len(t) for t in self.elements.values())
        if self.reactor is None or self._collecting is not None or self._removed * 10 < live + self._removed:
            return

        def collect() -> None:
            self._collecting, self._removed = None, 0
            gc.collect()
        self._collecting = self.reactor.callLater(COLLECT_AFTER, collect)

    def _table(self, kind: str) -> dict[str, Element]:
        try:
            return self.elements[kind]
        except KeyError:
            raise errors.NotFound(f"no element kind {kind!r}: use {', '.join(KINDS)}")

    def stat(self) -> dict:
        try:
            load = list(os.getloadavg())
        except OSError:
            load = None
        return {
            "id": self.id,
            "url": self.url,
            "uptime": round(self.clock() - self.started, 3),
            "load": load,
            "elements": {k: len(v) for k, v in self.elements.items()},
            "requests": dict(sorted(self.requests.items())),
            "files": _open_files(),
        }


def _open_files() -> dict:
    """The descriptors this host has open, and its soft limit (see service.more_open_files)."""
    try:
        used = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
    except OSError:
        used = None
    return {"open": used, "limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
