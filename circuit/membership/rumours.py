"""What members say about each other, and the rules for believing it.

A rumour names a member, its incarnation and a state.  The member alone may
raise its own incarnation, which is how it refutes a suspicion or a death: so
a stale "alive" (an old incarnation) can never bring back a member that was
declared dead, while the member itself, alive after all, can.
"""
from __future__ import annotations

from dataclasses import dataclass

ALIVE, SUSPECT, DEAD, LEFT = "alive", "suspect", "dead", "left"
STATES = (ALIVE, SUSPECT, DEAD, LEFT)
GONE = (DEAD, LEFT)


@dataclass(frozen=True)
class Rumour:
    state: str
    id: str
    url: str
    incarnation: int
    by: str = ""   # for a suspicion: who suspects (independent suspicions shorten it)

    def to_wire(self) -> list:
        return [self.state, self.id, self.url, self.incarnation, self.by]

    @classmethod
    def from_wire(cls, item) -> "Rumour":
        if not isinstance(item, (list, tuple)) or len(item) != 5:
            raise ValueError(f"not a rumour: {item!r}")
        state, member_id, url, incarnation, by = item
        if state not in STATES or not all(isinstance(v, str) for v in (member_id, url, by)) \
                or not isinstance(incarnation, int):
            raise ValueError(f"not a rumour: {item!r}")
        return cls(state, member_id, url, incarnation, by)


def supersedes(new: Rumour, state: str, incarnation: int) -> bool:
    """Does ``new`` override what we believe (``state`` at ``incarnation``)?

    The order of strength at one incarnation: alive < suspect < dead, and
    ``left`` is final for that incarnation.
    """
    if state == LEFT and new.incarnation <= incarnation:
        return False
    if new.state == ALIVE:
        return new.incarnation > incarnation
    if new.state == SUSPECT:
        return new.incarnation > incarnation or (new.incarnation == incarnation and state == ALIVE)
    if new.state == DEAD:
        return new.incarnation > incarnation or (new.incarnation == incarnation and state in (ALIVE, SUSPECT))
    return new.incarnation >= incarnation  # LEFT
