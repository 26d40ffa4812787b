"""For plain scripts: the client's calls, each one blocking until it is done.

    from circuit.client.blocking import connect
    c = connect("circuit://10.0.0.1:7700/X...", data="~/.circuit-client")
    host = c.hosts()[0]
    ch = host.mkchan("jobs", cap=10)
    ch.send(b"job-1")
    print(ch.recv())

The reactor runs in a thread of its own; every call is handed to it and waited
for.  Ctrl-C (KeyboardInterrupt) during a call cancels it there first, so an
interrupted ``recv()`` takes nothing.
"""
from __future__ import annotations

import atexit
import queue
import threading
from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.python.failure import Failure

from circuit import client as _client

_started = threading.Lock()
_reactor = None


def _running_reactor():
    global _reactor
    with _started:
        if _reactor is None:
            from twisted.internet import reactor
            threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                             name="circuit-reactor", daemon=True).start()
            _reactor = reactor
    return _reactor


def call(fn, *args, **kwargs) -> Any:
    """Run ``fn`` in the reactor's thread and wait for its Deferred's result."""
    reactor = _running_reactor()
    answers: queue.Queue = queue.Queue()
    pending: dict = {}

    def start():
        d = maybeDeferred(fn, *args, **kwargs)
        pending["d"] = d
        d.addBoth(answers.put)
    reactor.callFromThread(start)
    try:
        result = answers.get()
    except KeyboardInterrupt:
        reactor.callFromThread(lambda: pending.get("d") and pending["d"].cancel())
        raise
    if isinstance(result, Failure):
        result.raiseException()
    return _wrapped(result)


class _Blocking:
    """The same object, its Deferred-returning methods made blocking."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def blocking(*args, **kwargs):
            return call(value, *args, **kwargs)
        return blocking

    def __repr__(self) -> str:
        return repr(self._inner)


def _wrapped(value):
    if isinstance(value, (_client.Client, _client.Host, _client._Element)):  # every element kind
        return _Blocking(value)
    if isinstance(value, list):
        return [_wrapped(v) for v in value]
    return value


def connect(url: str, data: str = "~/.circuit"):
    """A connected client whose every call blocks (see `circuit.client.connect`).

    Closed at the latest when the interpreter exits: the reactor runs in a daemon thread,
    which dies with the interpreter, and the confirm of a message received last must
    leave before it does (else its owner gives the message to the next reader too)."""
    client = call(lambda: _client.connect(url, data, reactor=_running_reactor()))
    atexit.register(_close_at_exit, client._inner)
    return client


def _close_at_exit(client) -> None:
    if not client.closed:
        call(client.close)


__all__ = ["connect", "call"]
