"""Small helpers for Deferred-based waiting shared by the elements."""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


def made_once_asked(asked: Deferred, made: Any, late: Callable[[Failure], None]) -> Deferred:
    """What a caller waits on for a change that takes effect where it lands (`cap`, `run`),
    ``asked`` already on its way and past taking back: a caller that gives up (cancels)
    hears that it was made (``made``), as a send in flight does, rather than an error for
    what happens anyway; should it be refused after all, ``late`` is told of it, since
    that caller no longer listens."""
    out: Deferred = Deferred(lambda out: out.callback(made))

    def refused(failure: Failure) -> Any:
        if not out.called:
            return out.errback(failure)
        late(failure)
    asked.addCallbacks(lambda result: None if out.called else out.callback(result), refused)
    return out


class WaiterSet:
    """Deferreds waiting for one condition; each waiter is its own Deferred.

    Cancelling one waiter removes it and leaves the others alone.  `fire_all`
    empties the set before firing, so a callback that waits again lands in a
    fresh round instead of being fired twice.
    """

    def __init__(self) -> None:
        self._waiting: list[Deferred] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def wait(self) -> Deferred:
        d: Deferred = Deferred(self._waiting.remove)
        self._waiting.append(d)
        return d

    def fire_first(self, n: int, result: Any = None) -> int:
        """Fire the n oldest waiters (fewer if fewer wait); how many were fired."""
        # In place: each waiter's canceller removes it from this very list.
        firing = self._waiting[:n]
        del self._waiting[:n]
        for d in firing:
            d.callback(result)
        return len(firing)

    def fire_all(self, result: Any = None) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(result)

    def fail_all(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(error)


class Deferrals:
    """Collects Deferreds to fire once the caller's state is consistent again.

    Elements mutate all their state first and fire afterwards, so a callback
    that calls straight back into the element sees a finished transition.
    """

    def __init__(self) -> None:
        self._pending: list[Callable[[], None]] = []

    def later(self, fn: Callable[[], None]) -> None:
        self._pending.append(fn)

    def run(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            for fn in pending:
                fn()
