"""A select: wait for the first of several clauses and commit exactly that one.

States: *idle* (no clauses yet) -> *armed* -> *committed*, or -> *aborted*.

Each clause offers ``ready()`` (a Deferred that fires when its operation would
proceed, taking nothing) and ``commit()`` (the operation itself, which may
still find itself beaten to it and answer WouldBlock: then the clause re-arms).
Only one commit is ever in flight, so at most one clause takes anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.python.failure import Failure

from circuit import errors
from circuit.core.waiters import WaiterSet

IDLE, ARMED, COMMITTED, ABORTED = "idle", "armed", "committed", "aborted"


@dataclass
class Clause:
    op: str                       # "r" or "w"
    file: str                     # as the user wrote it, for stat and errors
    ready: Callable[[], Deferred]
    commit: Callable[[], Any]     # value, Deferred, or raises WouldBlock
    undo: Optional[Callable[[Any], None]] = None  # give back what commit took
    # for w clauses: send after commit, as the caller writing write.N (an ICaller, or None)
    write: Optional[Callable[..., Deferred]] = None


@dataclass
class Outcome:
    """What the committed clause gave: a value, or the error its operation met."""
    index: int
    value: Any = None
    error: Optional[errors.CircuitError] = None
    consumed: bool = False


class Select:
    def __init__(self) -> None:
        self.state = IDLE
        self.clauses: list[Clause] = []
        self.outcome: Optional[Outcome] = None
        self._waits: dict[int, Deferred] = {}
        self._ready: list[int] = []
        self._committing = False
        self._done = WaiterSet()

    def arm(self, clauses: list[Clause]) -> None:
        if self.state != IDLE:
            raise errors.Busy(f"select: already {self.state}; make a new select")
        if not clauses:
            raise errors.Invalid("select: give at least one clause")
        self.clauses = list(clauses)
        self.state = ARMED
        for i in range(len(self.clauses)):
            if self.state != ARMED:  # an earlier clause was ready and committed: wait on no more
                break
            self._arm(i)

    def _arm(self, i: int) -> None:
        d = maybeDeferred(self.clauses[i].ready)
        self._waits[i] = d
        d.addBoth(self._on_ready, i)

    def _on_ready(self, result, i: int):
        self._waits.pop(i, None)
        if self.state != ARMED:
            return None
        if isinstance(result, Failure) and not result.check(errors.CircuitError):
            return None  # cancelled or unexpected: leave the clause quiet
        self._ready.append(i)
        self._next_commit()
        return None

    def _next_commit(self) -> None:
        if self._committing or self.state != ARMED or not self._ready:
            return
        i = self._ready.pop(0)
        self._committing = True
        maybeDeferred(self.clauses[i].commit).addBoth(self._on_commit, i)

    def _on_commit(self, result, i: int):
        self._committing = False
        if isinstance(result, Failure) and result.check(errors.WouldBlock):
            if self.state == ARMED:  # beaten to it: wait again
                self._arm(i)
                self._next_commit()
            return None
        if isinstance(result, Failure):
            error = result.value if result.check(errors.CircuitError) else errors.CircuitError(str(result.value))
            outcome = Outcome(i, error=error)
        else:
            outcome = Outcome(i, value=result)
        if self.state != ARMED:  # aborted while the commit was in flight
            self._give_back(i, outcome)
            return None
        self.state = COMMITTED
        self.outcome = outcome
        self._disarm()
        self._done.fire_all(outcome)
        return None

    def wait(self) -> Deferred:
        """Fires with the Outcome once a clause has committed."""
        if self.state == COMMITTED:
            return succeed(self.outcome)
        if self.state == ABORTED:
            return fail(errors.Aborted())
        return self._done.wait()

    def abort(self) -> None:
        """Give up; a committed value not yet read is given back to where it came from."""
        if self.state == ABORTED:
            return
        if self.state == COMMITTED and self.outcome is not None and not self.outcome.consumed:
            self._give_back(self.outcome.index, self.outcome)
            self.outcome = None
        self.state = ABORTED
        self._disarm()
        self._done.fail_all(errors.Aborted())

    def _give_back(self, i: int, outcome: Outcome) -> None:
        undo = self.clauses[i].undo
        if undo is not None and outcome.error is None:
            undo(outcome.value)

    def _disarm(self) -> None:
        waits, self._waits = self._waits, {}
        self._ready.clear()
        for d in waits.values():
            d.cancel()

    def stat(self) -> dict:
        record: dict = {
            "state": self.state,
            "clauses": [{"op": c.op, "file": c.file} for c in self.clauses],
        }
        if self.outcome is not None:
            record["clause"] = self.outcome.index
            if self.outcome.error is not None:
                record["error"] = self.outcome.error.message
        return record
