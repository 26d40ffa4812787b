"""Deadlines for calls to other hosts: one timer for many calls.

Every call to another host has a deadline (a connected peer that never answers must not
be waited on for ever).  ``Deferred.addTimeout`` schedules a DelayedCall per call, which
on the asyncio reactor is a timer handle pushed on the loop's heap and cancelled again at
every answer: about 10 us a call, a few per cent of what a host spends on a round trip.
Calls given the same timeout reach their deadlines in the order they began, so one queue
per timeout and one DelayedCall for the oldest deadline in it do the same work.
"""
from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.python.failure import Failure

_MISSING = object()


class Deadlines:
    def __init__(self, clock):
        self._clock = clock
        self._queues: dict[float, dict[Deferred, float]] = {}  # timeout -> {call: deadline}, oldest first
        self._timers: dict[float, object] = {}  # timeout -> the DelayedCall for its oldest

    def add(self, d: Deferred, timeout: float) -> Deferred:
        """Cancel ``d`` if it has not fired within ``timeout`` seconds, and fail it with
        TimeoutError then, as ``d.addTimeout(timeout, clock)`` would."""
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = {}
        queue[d] = self._clock.seconds() + timeout
        if timeout not in self._timers:
            self._timers[timeout] = self._clock.callLater(timeout, self._expire, timeout)
        return d.addBoth(self._ended, d, queue, timeout)

    @staticmethod
    def _ended(result, d: Deferred, queue: dict, timeout: float):
        if queue.pop(d, _MISSING) is _MISSING and isinstance(result, Failure) \
                and result.check(CancelledError):
            return Failure(TimeoutError(f"no answer in {timeout} seconds"))  # cancelled by _expire
        return result

    def _expire(self, timeout: float) -> None:
        del self._timers[timeout]
        queue = self._queues[timeout]
        now = self._clock.seconds()
        while queue:
            d, deadline = next(iter(queue.items()))
            if deadline > now:
                self._timers[timeout] = self._clock.callLater(deadline - now, self._expire, timeout)
                return
            del queue[d]  # before cancelling: _ended tells an expiry by its absence
            d.cancel()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())
