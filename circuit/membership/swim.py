"""The membership of one host: probing, suspicion, gossip, joins and leaves.

Each period this host pings one member (randomised round robin).  No answer
within the probe timeout: it asks ``indirect_probes`` others to ping it.  Still
nothing: the member is *suspect*, and the suspicion spreads by gossip.  A
suspect that hears of it raises its incarnation and says it is alive; one that
stays silent past the suspicion timeout is *dead*.  A host that stops on
purpose says *left* first.  Every message carries a few rumours; a full state
exchange with a random member now and then repairs whatever gossip missed, and
a periodic attempt to reach one dead member lets two halves of a healed
partition find each other again.

The transport (`ITransport`) and the clock are given, so whole clusters run in
memory under `task.Clock` in tests.
"""
from __future__ import annotations

import bisect
import hashlib
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Interface

from circuit.membership.rumours import ALIVE, DEAD, GONE, LEFT, SUSPECT, Rumour, supersedes
from circuit.membership.timing import Timing, retransmits, suspicion_timeout

log = Logger("circuit.membership")


class ITransport(Interface):
    """How membership messages reach other hosts.  Every call may fail."""

    def ping(member_id: str, url: str, rumours: list):
        """Deferred[list]: the member's rumours in reply."""

    def ping_req(via_id: str, via_url: str, target_id: str, target_url: str, rumours: list):
        """Deferred[list]: ``via`` pinged target for us; fails if the target did not answer."""

    def sync(member_id: Optional[str], url: str, state: list):
        """Deferred[list]: exchange full states (``member_id`` None when joining by URL)."""

    def connected(member_id: str) -> bool:
        """Is a connection to the member already open (a probe need not dial first)?"""


_NOBODY: frozenset = frozenset()  # no suspicion: one object for every member of every host


@dataclass(slots=True)
class Member:
    """One member as this host believes it.  Every host holds one per member, N^2 in a
    cluster: slots, and no set of suspecters until a suspicion starts (a new one then)."""
    id: str
    url: str
    incarnation: int
    state: str
    since: float
    suspecters: frozenset | set = _NOBODY

    def rumour(self, by: str = "") -> Rumour:
        return Rumour(self.state, self.id, self.url, self.incarnation, by)


# Events given to the listener: ("joined", member) and ("left", member, reason).
Listener = Callable[..., None]


class Membership:
    def __init__(self, my_id: str, my_url: str, transport, clock, timing: Timing = Timing(),
                 listener: Optional[Listener] = None, rng: Optional[random.Random] = None):
        self.id = my_id
        self.url = my_url
        self.incarnation = 0
        self.leaving = False
        # Lifeguard's local health: rises when this host misses answers or must
        # refute a suspicion of itself (it is likely the slow one), and stretches
        # its timeouts so that an overloaded host does not accuse healthy ones.
        self.health = 0
        self.members: dict[str, Member] = {}
        self._gone: dict[str, None] = {}  # ids of the dead and left, in order: kept apart so
        # that the periodic retry and the tombstone sweep cost O(gone), not O(N)
        self.timing = timing
        self._transport = transport
        self._clock = clock
        self._listener = listener or (lambda *a: None)
        self._rng = rng or random.Random()
        self._gossip: dict[str, tuple[Rumour, int, int]] = {}  # id -> (rumour, times left, order)
        # The same queue in buckets by times left, each the orders queued, ascending, and
        # each order's id: a message takes the last of the fullest bucket, O(1) a rumour,
        # and puts it back one bucket lower (a bisection of ints).  Each message takes from
        # it, and after a mass failure it holds a rumour per member.  An entry whose
        # (times left, order) is no longer the id's in _gossip is stale and skipped.
        self._buckets: dict[int, list[int]] = {}
        self._queued: dict[int, str] = {}  # order -> id, for every entry of the buckets
        self._sends = (None, 0, 0)  # (timing, members, retransmits): the last computed
        self._spoken = 0  # counts rumours spread: the newest goes first among equals
        self._digest: tuple = ((), "")  # (what it was computed from, the digest)
        self._changes = 0  # counts changes to what the digest covers
        self._dirty: set[str] = set()  # ... and the members changed since the last digest
        self._line_ids: list[str] = []  # the members' ids, sorted (`_sorted_ids`) ...
        self._lines_of: Optional[tuple] = None  # ... kept for this table (id and size)
        self._probe_order: list[str] = []
        # The ALIVE members in the order of self.members, for the indirect probes' helpers
        # (`_alive_index`): each member's place in that order (a slot, ascending), the
        # slots of those ALIVE, sorted, and for what table (id and size) they were kept.
        # (Lean: a host holds this for every member, so a simulated cluster N^2 times.)
        self._slot: dict[str, int] = {}
        self._slot_ids: list[Optional[str]] = []  # slot -> member id (None: deleted)
        self._alive = array("q")
        self._indexed: Optional[tuple] = None
        self._suspicion_timers: dict[str, object] = {}
        self._probing: set[str] = set()
        self._to_check: dict[str, None] = {}  # suspicions heard, to probe, in order (_check)
        # A death is believed only by a host that failed to reach the member itself
        # (`_verdict`): the suspects our own probe failed to reach, and those whose death
        # we heard from others and are still looking at ourselves.
        self._unreached: dict[str, None] = {}
        self._verdicts: dict[str, None] = {}
        self._checking = 0  # ... and those probes in flight
        self._checks_draining = False
        self._fresh: dict[str, Rumour] = {}  # rumours spread and not pushed yet (_push)
        self._push_timer = None  # while there are: the next push
        self._running = False
        self._loops = [LoopingCall(_every_period, task)
                       for task in (self.probe, self.sync_random, self.reconnect_one)]
        for loop in self._loops:
            loop.clock = clock

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._loops[0].start(self.timing.probe_interval, now=False)
        self._loops[1].start(self.timing.sync_interval, now=False)
        self._loops[2].start(self.timing.reconnect_interval, now=False)

    def stop(self) -> None:
        self._running = False
        if self._push_timer is not None and self._push_timer.active():
            self._push_timer.cancel()
        self._push_timer = None
        self._fresh.clear()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        for timer in self._suspicion_timers.values():
            if timer.active():
                timer.cancel()
        self._suspicion_timers.clear()
        self._to_check.clear()
        self._unreached.clear()
        self._verdicts.clear()

    def join(self, url: str) -> Deferred:
        """Join the cluster through any member's URL: exchange full states with it."""
        self._spread(Rumour(ALIVE, self.id, self.url, self.incarnation))  # announce ourselves
        return self._transport.sync(None, url, self.state()).addCallback(self._joined)

    def _joined(self, state: list) -> None:
        self.merge_state(state)
        # Say hello to everyone at once rather than waiting for gossip: one message
        # per member per join, so a new host is known everywhere within a round trip.
        hello = [Rumour(ALIVE, self.id, self.url, self.incarnation).to_wire()]
        for member in self.live_members():
            self._timed(self._transport.ping(member.id, member.url, hello),
                        self.timing.probe_timeout).addCallbacks(self._acked, lambda f: None)

    def leave(self) -> Deferred:
        """Tell the others that this host is leaving on purpose, and wait (briefly) until they heard."""
        self.leaving = True
        self.stop()
        rumour = Rumour(LEFT, self.id, self.url, self.incarnation)
        sends = [self._transport.ping(m.id, m.url, [rumour.to_wire()])
                 for m in self.live_members()]
        return DeferredList(sends, consumeErrors=True)

    # -- what we know -----------------------------------------------------------------
    def live_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.state in (ALIVE, SUSPECT)]

    def me(self) -> Rumour:
        return Rumour(LEFT if self.leaving else ALIVE, self.id, self.url, self.incarnation)

    def state(self) -> list:
        # The wire form of each member's rumour, built directly: a full state is O(N).
        return [self.me().to_wire()] + [[m.state, m.id, m.url, m.incarnation, ""]
                                        for m in self.members.values()]

    def _changed(self, member_id: str) -> None:
        """A member's state, incarnation or URL changed, or a member came or went."""
        self._changes += 1
        self._dirty.add(member_id)

    def digest(self) -> str:
        """A short hash of every member's state, incarnation and URL (this host's own
        included): two hosts that believe the same have the same digest.

        Kept until something it covers changes (`_changed`, and this host's own
        incarnation, the member table and its size are checked too): the anti-entropy
        exchange asks for it several times a period.  The members' ids are kept sorted
        too, and changed only for the members changed since (`_sorted_ids`): while members
        change all the time (a mass failure) a digest then formats N lines and hashes them,
        without sorting.  A member changed in place from outside this class would not be
        noticed."""
        key = (self._changes, id(self.members), len(self.members), self.incarnation, self.leaving)
        if self._digest[0] == key:
            return self._digest[1]
        ids = self._sorted_ids()
        lines = [f"{i} {m.state} {m.incarnation} {m.url}" for i, m in zip(ids, map(self.members.__getitem__, ids))]
        me = self.me()
        lines.insert(bisect.bisect_left(ids, me.id), f"{me.id} {me.state} {me.incarnation} {me.url}")
        text = "\n".join(lines)
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        self._digest = (key, digest)
        return digest

    def _sorted_ids(self) -> list:
        """The members' ids, sorted, this host's own left out (the digest's order)."""
        members = self.members
        ids = self._line_ids
        if self._lines_of != (id(members), len(members)):  # replaced or resized from outside
            ids[:] = sorted({m.id for m in members.values()} - {self.id})
            self._lines_of = (id(members), len(members))
        else:
            for member_id in self._dirty:
                if member_id == self.id:
                    continue
                k = bisect.bisect_left(ids, member_id)
                here = k < len(ids) and ids[k] == member_id
                if member_id not in members:
                    if here:
                        del ids[k]
                elif not here:
                    ids.insert(k, member_id)
        self._dirty.clear()
        return ids

    def merge_state(self, state: list) -> None:
        members = self.members
        for item in state:
            # Most of a full state is what we already believe (same state, same
            # incarnation), which changes nothing: skip it without parsing.  A
            # suspicion is never skipped: it may name a new suspecter.
            if type(item) is list and len(item) == 5 and type(item[1]) is str:
                known = members.get(item[1])
                if known is not None and known.state == item[0] != SUSPECT \
                        and known.incarnation == item[3] and type(item[3]) is int:
                    continue
            self.hear(item)

    def rumours(self) -> list:
        """Up to gossip_per_message rumours to piggyback, least sent first."""
        # Least sent first, and the newest first among those (as memberlist's queue):
        # a refutation just made must not wait behind a burst of older news.
        # The same choice, in the same order, as heapq.nsmallest(k, _gossip.items(),
        # key=lambda kv: (-kv[1][1], -kv[1][2])) (orders are unique: no ties), without
        # looking at every rumour queued.  All are chosen before any is put back: a
        # rumour goes once in a message.
        gossip, buckets, queued = self._gossip, self._buckets, self._queued
        chosen = []
        want = self.gossip_budget()
        if want and buckets:
            for left in sorted(buckets, reverse=True):
                bucket = buckets[left]
                while bucket and len(chosen) < want:
                    order = bucket.pop()
                    held = gossip.get(queued.pop(order))
                    if held is not None and held[1] == left and held[2] == order:
                        chosen.append(held)
                if not bucket:
                    del buckets[left]
                if len(chosen) >= want:
                    break
        out = []
        for rumour, left, order in chosen:
            out.append(rumour.to_wire())
            if left <= 1:
                del gossip[rumour.id]
            else:
                gossip[rumour.id] = (rumour, left - 1, order)
                queued[order] = rumour.id
                lower = buckets.get(left - 1)
                if not lower:
                    buckets[left - 1] = [order]
                elif lower[-1] < order:
                    lower.append(order)
                else:
                    bisect.insort(lower, order)
        return out

    def gossip_budget(self) -> int:
        """Rumours a message carries: gossip_per_message, and more while much news is
        queued (up to 8 times as many, a rumour in four of those queued).  After a mass
        failure every host has a suspicion and a death for each host lost to gossip, and
        eight a message spread them more slowly than the suspicions ran out."""
        k = self.timing.gossip_per_message
        return max(k, min(8 * k, len(self._gossip) // 4))

    def _spread(self, rumour: Rumour) -> None:
        self._spoken += 1
        timing, members, left = self._sends
        if timing is not self.timing or members != len(self.members):  # (math.log10: once)
            left = retransmits(self.timing, len(self.members) + 1)
            self._sends = (self.timing, len(self.members), left)
        gossip, queued = self._gossip, self._queued
        gossip[rumour.id] = (rumour, left, self._spoken)
        if len(queued) > 2 * len(gossip) + 64:  # mostly stale: rebuild
            buckets: dict[int, list[int]] = {}
            queued.clear()
            for i, (_, n, order) in gossip.items():
                buckets.setdefault(n, []).append(order)
                queued[order] = i
            for bucket in buckets.values():
                bucket.sort()
            self._buckets = buckets
        else:
            bucket = self._buckets.get(left)
            if bucket is None:
                self._buckets[left] = [self._spoken]
            else:
                bucket.append(self._spoken)  # the newest: the highest order
            queued[self._spoken] = rumour.id
        if self._running and self.timing.gossip_nodes:
            self._fresh.pop(rumour.id, None)
            self._fresh[rumour.id] = rumour  # the newest last
            if self._push_timer is None:
                self._push_timer = self._clock.callLater(self.timing.gossip_interval, self._push)

    def _push(self) -> None:
        """News goes out within a gossip interval, not only with the next probes: each
        rumour once, to a few random members (memberlist's gossip, whose fan-out reaches
        most hosts in a few intervals).  A push does not spend the rumour's
        retransmissions: those still ride on probes and answers as before, and they are
        what reaches the few hosts the random pushes missed (each host's own probes ask two
        members a second for news, while it is still queued there).  Idle, nothing is sent."""
        self._push_timer = None
        fresh = self._fresh
        if not fresh or self.leaving or not self._running:
            return
        news = []
        for _ in range(min(len(fresh), self.gossip_budget())):  # the newest first
            news.append(fresh.popitem()[1].to_wire())
        alive = self._alive_but(self.id)
        k, sent = self.timing.gossip_nodes, 0
        for member in (alive[i] for i in self._rng.sample(range(len(alive)), min(len(alive), 3 * k))):
            if sent >= k:
                break
            if not self._transport.connected(member.id):
                continue  # a dial is three round trips: it would not be news by then
            sent += 1
            self._timed(self._transport.ping(member.id, member.url, news),
                        self._probe_timeout()).addCallbacks(self._acked, lambda f: None)
        if fresh:  # more than a message carries: the rest at the next interval
            self._push_timer = self._clock.callLater(self.timing.gossip_interval, self._push)

    # -- hearing rumours --------------------------------------------------------------
    def hear(self, item) -> None:
        # Most rumours heard say what we already believe (the same state at the same
        # incarnation, or a suspicion by someone already counted), which changes nothing:
        # skip them without parsing.  Only well-formed ones: the rest go the long way.
        if type(item) is list and len(item) == 5 and type(item[1]) is str:
            known = self.members.get(item[1])
            if known is not None and known.state == item[0] and known.incarnation == item[3] \
                    and type(item[3]) is int and type(item[2]) is str and type(item[4]) is str:
                if item[0] != SUSPECT or not item[4] or item[4] in known.suspecters:
                    return
                if item[1] != self.id:
                    # A suspicion we hold, by someone not counted yet (most of what is
                    # heard during a mass failure): what _hear does, without parsing.
                    self._confirm(known, item[4])
                    return
        self._hear(item)

    def _hear(self, item) -> None:
        """`hear` the long way: every rumour parsed and weighed."""
        try:
            rumour = Rumour.from_wire(item)
        except (ValueError, TypeError):
            log.warn("ignoring a malformed rumour {item!r}", item=item)
            return
        if rumour.id == self.id:
            self._about_me(rumour)
            return
        member = self.members.get(rumour.id)
        if member is None:
            if rumour.state in GONE:
                # Remember a death we had not heard of, so a stale "alive" cannot revive it.
                self.members[rumour.id] = Member(rumour.id, rumour.url, rumour.incarnation,
                                                 rumour.state, self._clock.seconds())
                self._index_added(self.members[rumour.id])
                self._gone[rumour.id] = None
                self._changed(rumour.id)
                return
            self._add(rumour)
            return
        if rumour.state == DEAD and member.state in (ALIVE, SUSPECT) \
                and member.id not in self._unreached:
            rumour = self._verdict(member, rumour)
        if rumour.state == SUSPECT and member.state in GONE:
            # As memberlist does: the dead are not suspected.  Taken (it may be newer), the
            # member would go from dead to suspect to alive without ever being announced
            # back; it comes back when it says so itself (its "alive", or a whole state:
            # reconnect_one asks the dead every few seconds).
            return
        if rumour.state == SUSPECT and member.state == SUSPECT and rumour.incarnation == member.incarnation:
            self._confirm(member, rumour.by)
            return
        if not supersedes(rumour, member.state, member.incarnation):
            return
        was = member.state
        member.incarnation, member.url = rumour.incarnation, rumour.url
        self._set_state(member, rumour.state, was, rumour.by)
        self._spread(rumour if rumour.state == SUSPECT else member.rumour(rumour.by))
        if rumour.state == SUSPECT:
            self._check(member.id)

    def _check(self, member_id: Optional[str] = None) -> None:
        """See for ourselves: an independent failed probe confirms a suspicion heard.
        A few probes at once, the rest queued: after a mass failure (a partition) a probe
        for every suspect at once would cost each host messages in proportion to the
        cluster.  Suspects that answer (as after a heal) go at the pace of a round trip."""
        if member_id is not None:
            self._to_check[member_id] = None
        if self._checks_draining:
            return
        self._checks_draining = True
        try:
            while self._checking < self.timing.suspect_checks and self._to_check:
                member_id = next(iter(self._to_check))
                del self._to_check[member_id]
                member = self.members.get(member_id)
                if member is not None and member.state == SUSPECT:
                    self._checking += 1
                    self.probe_member(member).addBoth(self._checked)
        finally:
            self._checks_draining = False

    def _checked(self, _) -> None:
        self._checking -= 1
        self._check()

    def _about_me(self, rumour: Rumour) -> None:
        if self.leaving:
            return
        if rumour.state in (SUSPECT, DEAD):
            if rumour.incarnation >= self.incarnation:
                # Refute: only I may raise my incarnation.
                self.incarnation = rumour.incarnation + 1
                self._worse()
            # An older suspicion still going round means someone missed the refutation
            # (its gossip is spent): say it again, or that host declares us dead.
            self._spread(Rumour(ALIVE, self.id, self.url, self.incarnation))

    def _add(self, rumour: Rumour) -> None:
        member = Member(rumour.id, rumour.url, rumour.incarnation, rumour.state, self._clock.seconds())
        self.members[rumour.id] = member
        self._index_added(member)
        self._changed(member.id)
        self._spread(member.rumour())
        self._into_round(member.id)
        log.info("{id} joined ({url})", id=member.id, url=member.url)
        self._listener("joined", member)
        if member.state == SUSPECT:
            self._start_suspicion(member)

    def _set_state(self, member: Member, state: str, was: str, by: Optional[str]) -> None:
        if (member.state == ALIVE) != (state == ALIVE):
            self._index_alive(member, state == ALIVE)
        member.state = state
        member.since = self._clock.seconds()
        self._changed(member.id)
        if state in GONE:
            self._gone[member.id] = None
        else:
            self._gone.pop(member.id, None)
        if state != SUSPECT:
            self._stop_suspicion(member)
            member.suspecters = _NOBODY  # not kept with the dead: N^2 sets after a partition
            self._unreached.pop(member.id, None)
            self._verdicts.pop(member.id, None)
        if state == SUSPECT and was != SUSPECT:
            self._start_suspicion(member, by)
        if state in GONE and was not in GONE:
            reason = "left" if state == LEFT else "failed"
            log.info("{id} {reason}", id=member.id, reason=reason)
            self._listener("left", member, reason)
        elif state == ALIVE and was in GONE:
            self._into_round(member.id)
            log.info("{id} is back (incarnation {n})", id=member.id, n=member.incarnation)
            self._listener("joined", member)

    def _verdict(self, member: Member, rumour: Rumour) -> Rumour:
        """A death heard of a member we have not failed to reach ourselves: a suspicion,
        which we look into at once (`_check`).  Our own direct probe going unanswered then
        declares it dead without waiting out the suspicion (`_unreachable`); the answer of
        a live member carries the refutation.  Why not believe it: the declarer may have
        judged from where the member could not be seen (the far side of a cut that has
        healed since, whose gossip goes on carrying its verdicts), and believed here, the
        death would be a departure declared by the member's own side.  A real crash costs little by this:
        most hosts have suspected the member by the time its death is declared (the
        suspicion is pushed at once, the death waits out a suspicion), and their own
        probes have failed."""
        if rumour.incarnation >= member.incarnation and member.id not in self._verdicts:
            self._verdicts[member.id] = None
            if member.state == SUSPECT:  # our look at it may be over: look again
                self._check(member.id)
        return Rumour(SUSPECT, rumour.id, rumour.url, rumour.incarnation, rumour.by)

    # -- suspicion --------------------------------------------------------------------
    def _start_suspicion(self, member: Member, by: Optional[str] = None) -> None:
        member.suspecters = {by or self.id}
        self._arm_suspicion(member)

    def _confirm(self, member: Member, by: str) -> None:
        if by and by not in member.suspecters:
            member.suspecters.add(by)
            self._arm_suspicion(member)
            self._spread(member.rumour(by))  # pass the confirmation on

    def _arm_suspicion(self, member: Member) -> None:
        live = len(self.members) - len(self._gone)  # not live_members(): O(1), once per confirmation
        expected = min(self.timing.indirect_probes, max(0, live - 1))
        timeout = suspicion_timeout(self.timing, len(member.suspecters) - 1, expected, live)
        deadline = member.since + timeout
        self._stop_suspicion(member)
        delay = max(0.0, deadline - self._clock.seconds())
        self._suspicion_timers[member.id] = self._clock.callLater(delay, self._suspicion_over, member.id)

    def _stop_suspicion(self, member: Member) -> None:
        timer = self._suspicion_timers.pop(member.id, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _suspicion_over(self, member_id: str) -> None:
        self._suspicion_timers.pop(member_id, None)
        member = self.members.get(member_id)
        if member is not None and member.state == SUSPECT:
            self._declare_dead(member)

    def _declare_dead(self, member: Member) -> None:
        self._set_state(member, DEAD, SUSPECT, None)
        self._spread(member.rumour(self.id))  # declared by us

    def suspect(self, member_id: str) -> None:
        """Our own probe failed: suspect the member, or confirm a suspicion we heard."""
        member = self.members.get(member_id)
        if member is None:
            return
        if member.state == SUSPECT:
            if not self._unreachable(member):
                self._confirm(member, self.id)
        elif member.state == ALIVE:
            self._set_state(member, SUSPECT, ALIVE, self.id)
            self._unreached[member.id] = None
            self._spread(member.rumour(self.id))

    # -- probing ----------------------------------------------------------------------
    def probe(self) -> Optional[Deferred]:
        target = self._next_target()
        self._look_again()
        if target is None:
            return None
        return self.probe_member(target)

    def _look_again(self) -> None:
        """Probe one member we suspect each period, the suspects in turn, until the
        suspicion ends.  Its answer carries its refutation; gossip alone may not: where
        messages are dropped it lost the race against the suspicion's timeout (the host
        that first suspected a member was often the last to hear that it was alive)."""
        timers = self._suspicion_timers
        for member_id in timers:
            break
        else:
            return
        timers[member_id] = timers.pop(member_id)  # to the back: the suspects take turns
        member = self.members.get(member_id)
        if member is not None and member.state == SUSPECT:
            self.probe_member(member)

    def probe_now(self, member_id: str) -> None:
        """A hint (a connection to it broke): probe this member at once."""
        member = self.members.get(member_id)
        if member is not None and member.state in (ALIVE, SUSPECT):
            self.probe_member(member)

    def _into_round(self, member_id: str) -> None:
        """A member that joins (or comes back) mid-round goes to a random place in the
        current round, as memberlist puts it: a round lasts N x probe_interval (minutes at
        a thousand hosts), and a member left for the next one is probed by nobody until
        then, so its silence would go unnoticed."""
        order = self._probe_order
        if order:
            order.insert(self._rng.randrange(len(order) + 1), member_id)

    def _next_target(self) -> Optional[Member]:
        while True:
            if not self._probe_order:
                self._probe_order = [m.id for m in self.live_members()]
                self._rng.shuffle(self._probe_order)
                if not self._probe_order:
                    return None
            member = self.members.get(self._probe_order.pop())
            if member is not None and member.state in (ALIVE, SUSPECT):
                return member

    def probe_member(self, member: Member) -> Deferred:
        if member.id in self._probing:
            return succeed(None)
        self._probing.add(member.id)
        timeout = self._probe_timeout()
        if not self._transport.connected(member.id):
            timeout += self.timing.connect_allowance
        rumours = self.rumours()
        if member.state == SUSPECT:
            # Tell the suspect itself, so that its answer can carry the refutation.
            rumours.insert(0, member.rumour(self.id).to_wire())
        d = self._timed(self._transport.ping(member.id, member.url, rumours), timeout)
        d.addCallbacks(self._direct_ack, lambda f: self._unanswered(member))
        d.addBoth(self._probed, member.id)
        return d

    def _unanswered(self, member: Member) -> Optional[Deferred]:
        """Our direct probe went unanswered.  Of a suspect, that is enough to believe a
        death declared by others, now or while others are asked (the declarer waited out a
        suspicion, and we failed to reach the member ourselves).  Otherwise others are
        asked to try: one bad link is not a dead host."""
        if member.state == SUSPECT and self.members.get(member.id) is member \
                and self._unreachable(member):
            return None
        return self._probe_indirectly(member)

    def _unreachable(self, member: Member) -> bool:
        """We failed to reach this suspect ourselves: a death declared by others is
        believed from now on, and one heard already is declared at once (True)."""
        self._unreached[member.id] = None
        if member.id in self._verdicts:
            self._declare_dead(member)
            return True
        return False

    def _probed(self, result, member_id: str):
        self._probing.discard(member_id)
        return None

    def _probe_timeout(self) -> float:
        return self.timing.probe_timeout * (1 + self.health)

    def _worse(self) -> None:
        self.health = min(self.timing.max_health, self.health + 1)

    def _direct_ack(self, rumours: list) -> None:
        self.health = max(0, self.health - 1)
        self._acked(rumours)

    def _acked(self, rumours: list) -> None:
        for item in rumours or []:
            self.hear(item)

    def _probe_indirectly(self, member: Member) -> Deferred:
        # The ALIVE members but the target, in the order of self.members, as the list
        # [m for m in self.members.values() if m.state == ALIVE and m.id != member.id]
        # would give them, without looking at every member: sample() needs only their
        # number and the few it draws (the same draws, so the same helpers).
        helpers = self._alive_but(member.id)
        helpers = self._rng.sample(helpers, min(self.timing.indirect_probes, len(helpers)))
        if not helpers:
            self.suspect(member.id)
            return succeed(None)
        # Indirect probes get the rest of the period plus one more.
        wait = self.timing.probe_interval * (1 + self.health)
        asks = [self._timed(self._transport.ping_req(h.id, h.url, member.id, member.url, self.rumours()),
                            wait) for h in helpers]
        result = Deferred()

        def answered(rumours):
            if not result.called:
                # Others reached it where we could not: we may be the slow one.
                self._unreached.pop(member.id, None)
                self._worse()
                self._acked(rumours)
                result.callback(None)

        def all_failed(_):
            if not result.called:
                self.suspect(member.id)
                result.callback(None)

        for a in asks:
            a.addCallbacks(answered, lambda f: None)
        DeferredList(asks, consumeErrors=True).addCallback(all_failed)
        return result

    # -- the ALIVE members, indexed ----------------------------------------------------
    def _alive_index(self) -> list:
        """The sorted slots of the ALIVE members.  Kept up to date by this class's own
        changes to the table; made afresh if the table was replaced or its size changed
        from outside (a member changed in place from outside is not noticed)."""
        members = self.members
        if self._indexed != (id(members), len(members)):
            ints = _ints(len(members))
            self._slot = dict(zip(members, ints))
            self._slot_ids = list(members)
            self._alive = array("q", [n for n, m in enumerate(members.values()) if m.state == ALIVE])
            self._indexed = (id(members), len(members))
        return self._alive

    def _index_added(self, member: Member) -> None:
        """A member was just added at the end of self.members."""
        members = self.members
        table = (id(members), len(members))
        self._lines_of = table if self._lines_of == (table[0], table[1] - 1) else None
        if self._indexed != (id(members), len(members) - 1):
            self._indexed = None  # changed from outside meanwhile: made afresh when needed
            return
        n = len(self._slot_ids)
        if n > 2 * len(members) + 64:  # mostly slots of deleted members: made afresh
            self._indexed = None
            return
        self._slot[member.id] = _ints(n + 1)[n]
        self._slot_ids.append(member.id)
        if member.state == ALIVE:
            self._alive.append(n)  # the highest slot
        self._indexed = (id(members), len(members))

    def _index_removed(self, member_id: str) -> None:
        """A member was just deleted from self.members."""
        members = self.members
        table = (id(members), len(members))
        self._lines_of = table if self._lines_of == (table[0], table[1] + 1) else None
        if self._indexed != (id(members), len(members) + 1):
            self._indexed = None
            return
        n = self._slot.pop(member_id)
        self._slot_ids[n] = None
        self._alive_discard(n)
        self._indexed = (id(members), len(members))

    def _index_alive(self, member: Member, alive: bool) -> None:
        """A member of the table becomes ALIVE, or stops being so."""
        if self._indexed != (id(self.members), len(self.members)) or member.id not in self._slot:
            self._indexed = None
            return
        n = self._slot[member.id]
        if alive:
            bisect.insort(self._alive, n)
        else:
            self._alive_discard(n)

    def _alive_discard(self, n: int) -> None:
        alive = self._alive
        k = bisect.bisect_left(alive, n)
        if k < len(alive) and alive[k] == n:
            del alive[k]

    def _alive_but(self, member_id: str) -> Sequence:
        alive = self._alive_index()
        n = self._slot.get(member_id)
        skip = bisect.bisect_left(alive, n) if n is not None else len(alive)
        if skip >= len(alive) or alive[skip] != n:
            skip = len(alive)  # not ALIVE: nothing to leave out
        return _Helpers(alive, skip, self._slot_ids, self.members)

    def _timed(self, d: Deferred, seconds: float) -> Deferred:
        return d.addTimeout(seconds, self._clock)

    # -- serving others ---------------------------------------------------------------
    def handle_ping(self, rumours: list) -> list:
        for item in rumours:
            self.hear(item)
        # An answer always says how we stand (our incarnation): a prober that suspects
        # us learns of the refutation from the answer itself, even once its gossip is spent.
        return [self.me().to_wire()] + self.rumours()

    def handle_ping_req(self, target_id: str, target_url: str, rumours: list) -> Deferred:
        for item in rumours:
            self.hear(item)
        if target_id == self.id:
            return succeed(self.handle_ping([]))
        d = self._timed(self._transport.ping(target_id, target_url, self.rumours()),
                        self._probe_timeout())

        def answered(theirs: list) -> list:
            self._acked(theirs)
            # Pass on how the target stands (the first rumour of its answer, its own): the
            # asker may suspect it, and our gossip may be busy with fresher news.
            own = theirs[:1] if theirs and type(theirs[0]) is list and theirs[0][1:2] == [target_id] else []
            return own + self.rumours()
        return d.addCallback(answered)

    def handle_sync(self, state: list) -> list:
        """A full state is merged and answered with ours; a digest with ours (`_compare`)."""
        if _is_digest(state):
            return [[DIGEST, self.digest()]]
        self.merge_state(state)
        return self.state()

    # -- repair -----------------------------------------------------------------------
    def sync_random(self) -> Optional[Deferred]:
        live = self.live_members()
        if not live:
            return None
        return self._compare(self._rng.choice(live))

    def _compare(self, member: Member) -> Deferred:
        """Anti-entropy that costs little while nothing changes: offer a digest of what we
        believe; only if the member's differs do the two swap full states.  A full state
        is O(N), and swapping one every sync_interval made each host's bytes grow with N."""
        d = self._timed(self._transport.sync(member.id, member.url, [[DIGEST, self.digest()]]),
                        self.timing.probe_interval * 4)

        def answered(theirs) -> Optional[Deferred]:
            if _is_digest(theirs) and theirs[0][1] == self.digest():
                return None
            return self._exchange(member)
        return d.addCallbacks(answered, lambda f: None)

    def reconnect_one(self) -> Optional[Deferred]:
        """Try one dead member again: after a partition heals, it refutes and comes back."""
        now = self._clock.seconds()
        for member_id in list(self._gone):
            if now - self.members[member_id].since > self.timing.tombstone:
                del self.members[member_id]
                self._index_removed(member_id)
                del self._gone[member_id]
                self._changed(member_id)
        dead = [m for m in map(self.members.__getitem__, self._gone) if m.state == DEAD]
        if not dead:
            return None
        # A digest first: a member that is really dead answers nothing, and a whole state
        # (hundreds of KB at thousands of hosts) would be built and sent for nobody.
        return self._compare(self._rng.choice(dead))

    def _exchange(self, member: Member) -> Deferred:
        """Swap full states with one member; silence is no news."""
        d = self._timed(self._transport.sync(member.id, member.url, self.state()),
                        self.timing.probe_interval * 4)
        return d.addCallbacks(self.merge_state, lambda f: None)

    def __repr__(self) -> str:
        return f"<Membership {self.id} inc={self.incarnation} members={len(self.members)}>"


DIGEST = "digest"


def _every_period(task: Callable[[], Optional[Deferred]]) -> Optional[Deferred]:
    """Run one period's ``task`` so that its failure is logged and the next period comes:
    a LoopingCall stops for good at the first failure, and silently (the failure waits in
    its Deferred, which it holds), and a host that stopped syncing or trying the dead again
    would never see a healed partition whole."""
    try:
        d = task()
    except Exception:
        log.failure("membership: {task} failed; it runs again next period", task=task.__name__)
        return None
    if d is not None:
        d.addErrback(lambda f: log.failure("membership: {task} failed; it runs again next period",
                                           f, task=task.__name__))
    return d


_INTS: list[int] = []  # 0, 1, 2, ...: the slot numbers, one object each, shared by all hosts


def _ints(n: int) -> list:
    """A list of the ints from 0 on, at least ``n`` long."""
    while len(_INTS) < n:
        _INTS.append(len(_INTS))
    return _INTS


class _Helpers(Sequence):
    """The members at these sorted slots but the one at position ``skip``: a list's view."""

    __slots__ = ("_alive", "_skip", "_ids", "_members", "_len")

    def __init__(self, alive: list, skip: int, ids: dict, members: dict):
        self._alive, self._skip, self._ids, self._members = alive, skip, ids, members
        self._len = len(alive) - (skip < len(alive))

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, k: int) -> Member:
        if k < 0:
            k += self._len
        if not 0 <= k < self._len:
            raise IndexError(k)
        if k >= self._skip:
            k += 1
        return self._members[self._ids[self._alive[k]]]


def _is_digest(state) -> bool:
    return (type(state) is list and len(state) == 1 and type(state[0]) is list
            and len(state[0]) == 2 and state[0][0] == DIGEST and type(state[0][1]) is str)

