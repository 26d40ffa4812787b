"""Membership events as a stream each subscriber reads from the moment it subscribed."""
from __future__ import annotations

import json

from twisted.internet.defer import Deferred, succeed

from circuit.core.waiters import WaiterSet


class Subscription:
    """One reader's view: the JSON lines published since it subscribed."""

    def __init__(self, hub: "EventHub"):
        self._hub = hub
        self._data = bytearray()
        self._grew = WaiterSet()

    def _push(self, line: bytes) -> None:
        self._data += line
        self._grew.fire_all()

    def read(self, offset: int, size: int) -> Deferred:
        if offset < len(self._data):
            return succeed(bytes(self._data[offset : offset + size]))
        return self._grew.wait().addCallback(lambda _: self.read(offset, size))

    def close(self) -> None:
        self._hub._subscribers.discard(self)


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._listeners: list = []  # callables given each event's dict (dc/subs elements)

    def listen(self, fn) -> None:
        self._listeners.append(fn)

    def unlisten(self, fn) -> None:
        self._listeners.remove(fn)

    def subscribe(self) -> Subscription:
        s = Subscription(self)
        self._subscribers.add(s)
        return s

    def publish(self, event: dict) -> None:
        line = (json.dumps(event, sort_keys=True) + "\n").encode()
        for s in list(self._subscribers):
            s._push(line)
        for fn in list(self._listeners):
            fn(event)
