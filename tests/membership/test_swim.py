"""Whole clusters in memory under task.Clock: joins, deaths, leaves, partitions, refutation."""
import random

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from zope.interface import implementer

from circuit.membership.rumours import ALIVE, DEAD, LEFT, SUSPECT, Rumour, supersedes
from circuit.membership.swim import ITransport, Membership
from circuit.membership.timing import Timing, suspicion_timeout


class Network:
    """Hosts keyed by URL; links can be cut; a paused host answers nothing until resumed."""

    def __init__(self, clock, latency=0.001, loss=0.0, seed=1):
        self.clock = clock
        self.hosts = {}
        self.cut = set()      # frozenset({url_a, url_b})
        self.paused = set()
        self.latency = latency
        self.loss = loss
        self.rng = random.Random(seed)

    def reachable(self, a, b):
        return (b in self.hosts and frozenset((a, b)) not in self.cut
                and b not in self.paused and self.rng.random() >= self.loss)

    def call(self, src, dst, fn):
        d = Deferred()
        if not self.reachable(src, dst):
            return d  # silence: the caller's timeout decides

        def deliver():
            try:
                result = fn(self.hosts[dst])
            except Exception as e:  # noqa: BLE001
                d.errback(e)
                return
            if isinstance(result, Deferred):
                result.addCallbacks(lambda r: self.clock.callLater(self.latency, d.callback, r),
                                    lambda f: self.clock.callLater(self.latency, d.errback, f))
            else:
                self.clock.callLater(self.latency, d.callback, result)
        self.clock.callLater(self.latency, deliver)
        return d


@implementer(ITransport)
class MemoryTransport:
    def __init__(self, net, url):
        self.net, self.url = net, url

    def ping(self, member_id, url, rumours):
        return self.net.call(self.url, url, lambda m: m.handle_ping(rumours))

    def ping_req(self, via_id, via_url, target_id, target_url, rumours):
        return self.net.call(self.url, via_url,
                             lambda m: m.handle_ping_req(target_id, target_url, rumours))

    def connected(self, member_id):
        return True

    def sync(self, member_id, url, state):
        if url not in self.net.hosts:
            return fail(ConnectionRefusedError())
        return self.net.call(self.url, url, lambda m: m.handle_sync(state))



class Cluster:
    def __init__(self, n, timing=Timing(), **net_args):
        self.clock = Clock()
        self.net = Network(self.clock, **net_args)
        self.events = []
        self.nodes = []
        for i in range(n):
            self.add(i, timing)

    def add(self, i, timing=Timing()):
        url = f"circuit://10.0.0.{i}:7700/X{i:016x}"
        node = Membership(f"X{i:016x}", url, MemoryTransport(self.net, url), self.clock, timing,
                          listener=lambda *e, me=i: self.events.append((me,) + e[:1] + (e[1].id,) + e[2:]),
                          rng=random.Random(i))
        self.net.hosts[url] = node
        self.nodes.append(node)
        node.start()
        if len(self.nodes) > 1:
            node.join(self.nodes[0].url)
        return node

    def run(self, seconds, step=0.01):
        for _ in range(int(seconds / step)):
            self.clock.advance(step)

    def view(self, node):
        return sorted(m.id for m in node.members.values() if m.state in (ALIVE, SUSPECT))

    def kill(self, node):
        node.stop()
        del self.net.hosts[node.url]


def test_join_through_any_member_reaches_everyone():
    c = Cluster(8)
    c.run(3)
    for node in c.nodes:
        assert len(c.view(node)) == 7


def test_a_killed_host_is_declared_dead_within_three_seconds():
    c = Cluster(5)
    c.run(3)
    victim = c.nodes[2]
    c.kill(victim)
    c.events.clear()
    c.run(3)
    noticed = {e[0] for e in c.events if e[1:] == ("left", victim.id, "failed")}
    assert noticed == {0, 1, 3, 4}


def test_graceful_leave_is_seen_at_once():
    c = Cluster(4)
    c.run(2)
    leaver = c.nodes[1]
    c.events.clear()
    leaver.leave()
    c.run(0.1)
    del c.net.hosts[leaver.url]
    assert {e[0] for e in c.events if e[1:] == ("left", leaver.id, "left")} == {0, 2, 3}


def test_a_short_pause_is_not_a_death():
    c = Cluster(4)
    c.run(2)
    sleeper = c.nodes[3]
    c.net.paused.add(sleeper.url)
    c.run(0.8)  # under the minimum suspicion timeout
    c.net.paused.discard(sleeper.url)
    c.run(3)
    assert not [e for e in c.events if e[1] == "left"]
    for node in c.nodes[:3]:
        assert node.members[sleeper.id].state == ALIVE


def test_packet_loss_causes_no_false_departure():
    c = Cluster(6, loss=0.10)
    c.run(120)
    assert not [e for e in c.events if e[1] == "left"]


def test_partition_is_detected_and_heals():
    c = Cluster(6)
    c.run(3)
    left_side, right_side = c.nodes[:3], c.nodes[3:]
    for a in left_side:
        for b in right_side:
            c.net.cut.add(frozenset((a.url, b.url)))
    c.run(8)
    for node in left_side:
        assert c.view(node) == sorted(n.id for n in left_side if n is not node)
    c.net.cut.clear()
    c.run(15)
    for node in c.nodes:
        assert len(c.view(node)) == 5


def test_a_stale_alive_cannot_resurrect_the_dead():
    c = Cluster(3)
    c.run(2)
    victim = c.nodes[2]
    c.kill(victim)
    c.run(6)
    watcher = c.nodes[0]
    assert watcher.members[victim.id].state == DEAD
    stale = Rumour(ALIVE, victim.id, victim.url, watcher.members[victim.id].incarnation)
    watcher.hear(stale.to_wire())
    assert watcher.members[victim.id].state == DEAD


def test_a_suspect_refutes_with_a_higher_incarnation():
    c = Cluster(3)
    c.run(2)
    target = c.nodes[1]
    c.nodes[0].suspect(target.id)
    c.run(1)
    assert target.incarnation == 1
    assert all(n.members[target.id].state == ALIVE for n in c.nodes if n is not target)


def test_rules_and_timing():
    assert supersedes(Rumour(SUSPECT, "x", "", 1), ALIVE, 1)
    assert not supersedes(Rumour(ALIVE, "x", "", 1), SUSPECT, 1)
    assert supersedes(Rumour(ALIVE, "x", "", 2), DEAD, 1)
    assert not supersedes(Rumour(ALIVE, "x", "", 5), LEFT, 5)
    t = Timing()
    assert suspicion_timeout(t, 0, 3) == t.suspicion_max
    assert suspicion_timeout(t, 3, 3) == t.suspicion_min
    assert t.suspicion_min < suspicion_timeout(t, 1, 3) < t.suspicion_max


@pytest.mark.parametrize("n", [2, 32])
def test_detection_scales(n):
    c = Cluster(n)
    c.run(5)
    assert all(len(c.view(node)) == n - 1 for node in c.nodes)
