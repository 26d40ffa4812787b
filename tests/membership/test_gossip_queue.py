"""The gossip queue, the cached digest and the index of live members choose and say what
the plain versions did.

`Membership.rumours` keeps its queue in buckets by times left, `Membership.digest` is kept
until a member changes (and its lines, sorted, between changes), and the indirect probes
draw their helpers from an index of the ALIVE members: these compare them with the code
they replaced (a scan of every queued rumour with heapq.nsmallest, a digest computed
afresh each time, a scan of every member)."""
import hashlib
import heapq
import random

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from circuit.membership.rumours import ALIVE, DEAD, LEFT, SUSPECT, STATES, Rumour
from circuit.membership.swim import Member, Membership
from circuit.membership.timing import Timing, retransmits


def old_rumours(gossip: dict, k: int) -> list:
    """`Membership.rumours` before the heap: least sent first, then newest first."""
    chosen = heapq.nsmallest(k, gossip.items(), key=lambda kv: (-kv[1][1], -kv[1][2]))
    out = []
    for member_id, (rumour, left, order) in chosen:
        out.append(rumour.to_wire())
        if left <= 1:
            del gossip[member_id]
        else:
            gossip[member_id] = (rumour, left - 1, order)
    return out


def old_digest(node: Membership) -> str:
    """`Membership.digest` before the cache."""
    rows = {m.id: (m.state, m.url, m.incarnation) for m in node.members.values()}
    me = node.me()
    rows[me.id] = (me.state, me.url, me.incarnation)
    text = "\n".join(f"{i} {st} {inc} {url}" for i, (st, url, inc) in sorted(rows.items()))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class NoTransport:
    """Every call is sent and never answered."""

    def ping(self, *args):
        return Deferred()

    ping_req = sync = ping

    def connected(self, member_id):
        return True


def node(k: int = 8) -> Membership:
    return Membership("me", "u:me", NoTransport(), Clock(), Timing(gossip_per_message=k))


ops = st.lists(st.one_of(
    st.tuples(st.just("spread"), st.integers(0, 60), st.sampled_from(STATES), st.integers(0, 3)),
    st.tuples(st.just("take")),
    st.tuples(st.just("members"), st.integers(0, 2000)),  # changes how often a rumour is sent
    st.tuples(st.just("clear")),
), max_size=300)


@settings(max_examples=300, deadline=None)
@given(ops=ops, k=st.integers(0, 10))
def test_the_heap_chooses_the_same_rumours_in_the_same_order_as_a_scan(ops, k):
    n = node(k)
    model: dict = {}
    for op in ops:
        if op[0] == "spread":
            _, i, state, inc = op
            n._spread(Rumour(state, f"m{i}", f"u:m{i}", inc))
            model[f"m{i}"] = n._gossip[f"m{i}"]
        elif op[0] == "take":  # as many as the queue's length allows (gossip_budget)
            assert n.rumours() == old_rumours(model, n.gossip_budget())
        elif op[0] == "members":
            n.members = {f"x{j}": Member(f"x{j}", f"u:x{j}", 0, ALIVE, 0.0) for j in range(op[1])}
        else:
            n._gossip.clear()
            model.clear()
        assert n._gossip == model
    while model:  # and to the end of the queue
        assert n.rumours() == old_rumours(model, n.gossip_budget())
        if k == 0:
            break
    assert n._gossip == model


def test_a_burst_of_news_goes_least_sent_then_newest_first():
    n = node(3)
    for i in range(5):
        n._spread(Rumour(SUSPECT, f"m{i}", f"u:m{i}", 0, "x"))
    first = [r[1] for r in n.rumours()]
    assert first == ["m4", "m3", "m2"]
    n._spread(Rumour(DEAD, "m0", "u:m0", 0))  # news again: first, ahead of the older ones
    assert [r[1] for r in n.rumours()] == ["m0", "m1", "m4"]
    sends = retransmits(n.timing, 1)
    assert n._gossip["m0"][1] == sends - 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(STATES), st.integers(0, 3),
                          st.booleans()), max_size=60))
def test_the_cached_digest_is_the_digest_computed_afresh(heard):
    n = node()
    for i, state, inc, check in heard:
        if i == 12:  # about this host itself: a refutation raises its incarnation
            n.hear([state, "me", "u:me", inc, "x"])
        elif i == 11:
            n.members.pop("m0", None)  # forgotten, as the tombstone sweep does
        else:
            n.hear([state, f"m{i}", f"u:m{i}" + ("'" if inc == 3 else ""), inc, "x"])
        if check:
            assert n.digest() == old_digest(n)
    assert n.digest() == old_digest(n)
    n.leave()
    assert n.me().state == LEFT and n.digest() == old_digest(n)


def picture(n: Membership) -> tuple:
    """All that hearing a rumour may change."""
    return ({i: (m.state, m.url, m.incarnation, m.since, set(m.suspecters)) for i, m in n.members.items()},
            dict(n._gossip), list(n._gone), n.incarnation, n.health, set(n._probing),
            set(n._suspicion_timers), n.digest())


@settings(max_examples=1000, deadline=None)
@given(known=st.lists(st.tuples(st.sampled_from(STATES), st.integers(0, 1),
                                st.lists(st.sampled_from(["", "a", "b", "me"]), max_size=2)),
                      min_size=3, max_size=3),
       item=st.tuples(st.sampled_from(STATES + ("bogus",)), st.sampled_from(["m0", "m1", "m2", "m9", "me"]),
                      st.sampled_from(["u:same", "u:other"]), st.sampled_from([0, 1, 0, 1, 1.0, True, "1"]),
                      st.sampled_from(["", "a", "b", "c", "me", None])))
@example(known=[(SUSPECT, 0, ["a"])] * 3, item=(SUSPECT, "m0", "u:same", 0, "b"))  # a new suspecter
@example(known=[(SUSPECT, 0, ["a"])] * 3, item=(SUSPECT, "m0", "u:same", 0, "a"))  # one counted
@example(known=[(ALIVE, 0, [])] * 3, item=(ALIVE, "m1", "u:other", 0, ""))  # a new URL, same news
@example(known=[(DEAD, 1, [])] * 3, item=(DEAD, "m2", "u:same", 1, 5))  # malformed: warned
def test_a_rumour_skipped_unparsed_is_one_the_long_way_ignores(known, item):
    """`hear` skips, without parsing, rumours that say what the host already believes:
    hearing any rumour changes the same as `_hear`, the long way."""
    nodes = [node(), node()]
    for n in nodes:
        for j, (state, inc, by) in enumerate(known):
            m = Member(f"m{j}", "u:same", inc, state, 0.0)
            if state == SUSPECT:
                m.suspecters = set(by) or {"me"}
            n.members[m.id] = m
            if state in (DEAD, LEFT):
                n._gone[m.id] = None
    nodes[0].hear(list(item))
    nodes[1]._hear(list(item))
    assert picture(nodes[0]) == picture(nodes[1])


def test_a_long_queue_of_news_goes_more_to_a_message():
    n = node(8)
    for i in range(20):
        n._spread(Rumour(SUSPECT, f"m{i}", f"u:m{i}", 0, "x"))
    assert len(n.rumours()) == 8  # the usual few
    for i in range(20, 400):
        n._spread(Rumour(DEAD, f"m{i}", f"u:m{i}", 0))
    assert len(n.rumours()) == 64  # after a mass failure: eight times as many, at most


def old_helpers(n: Membership, target: str) -> list:
    """The indirect probes' candidates before the index: every member looked at."""
    return [m for m in n.members.values() if m.state == ALIVE and m.id != target]


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("hear"), st.integers(0, 12), st.sampled_from(STATES), st.integers(0, 3)),
    st.tuples(st.just("sweep")),            # the tombstone sweep forgets the dead
    st.tuples(st.just("forget"), st.integers(0, 12)),  # from outside, as a test does
    st.tuples(st.just("table"), st.integers(0, 30)),   # the table replaced, as the simulation does
    st.tuples(st.just("check"), st.integers(0, 12), st.integers(0, 2 ** 32)),
), max_size=120))
def test_the_indexed_helpers_are_the_members_a_scan_would_give(ops):
    """`_probe_indirectly` draws its helpers from an index of the ALIVE members: the same
    members in the same order as the scan it replaced, so sample() draws the same ones."""
    n = node()
    for op in ops:
        if op[0] == "hear":
            _, i, state, inc = op
            n.hear([state, f"m{i}", f"u:m{i}", inc, "x"])
        elif op[0] == "sweep":
            n._clock.advance(n.timing.tombstone + 1)
            n.reconnect_one()
        elif op[0] == "forget":
            n.members.pop(f"m{op[1]}", None)
            n._gone.pop(f"m{op[1]}", None)
        elif op[0] == "table":
            n.members = {f"m{j}": Member(f"m{j}", f"u:m{j}", 0, (DEAD, ALIVE, ALIVE)[j % 3], 0.0)
                         for j in range(op[1])}
            n._gone = {f"m{j}": None for j in range(0, op[1], 3)}
        else:
            _, i, seed = op
            want = old_helpers(n, f"m{i}")
            got = n._alive_but(f"m{i}")
            assert len(got) == len(want) and list(got) == want
            k = min(3, len(want))
            assert random.Random(seed).sample(got, k) == random.Random(seed).sample(want, k)
