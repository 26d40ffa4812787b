"""Whole clusters in memory under task.Clock: joins, deaths, leaves, partitions, refutation."""
import pytest

from circuit.membership.rumours import ALIVE, DEAD, LEFT, SUSPECT, Rumour, supersedes
from circuit.membership.simulation import Simulation
from circuit.membership.timing import Timing, suspicion_timeout


class Cluster(Simulation):
    """Hosts joined one by one through the first, 1 ms apart, losing messages outright."""

    def __init__(self, n, timing=Timing(), loss=0.0):
        super().__init__(n, timing, converged=False, latency=0.001, jitter=0.0, loss=loss,
                         loss_mode="drop")

    def left(self, subject, reason):
        """Who saw ``subject`` leave for ``reason``."""
        return {e[1] for e in self.events if e[2:] == (f"left:{reason}", subject.id)}


def test_join_through_any_member_reaches_everyone():
    c = Cluster(8)
    c.run(3)
    for node in c.nodes:
        assert len(c.view(node)) == 7


def test_a_killed_host_is_declared_dead_within_three_seconds():
    c = Cluster(5)
    c.run(3)
    victim = c.nodes[2]
    c.crash(victim)
    c.run(3)
    assert c.left(victim, "failed") == {c.nodes[i].id for i in (0, 1, 3, 4)}


def test_graceful_leave_is_seen_at_once():
    c = Cluster(4)
    c.run(2)
    leaver = c.nodes[1]
    c.leave(leaver)
    c.run(0.1)
    assert c.left(leaver, "left") == {c.nodes[i].id for i in (0, 2, 3)}


def test_a_short_pause_is_not_a_death():
    c = Cluster(4)
    c.run(2)
    sleeper = c.nodes[3]
    c.net.paused.add(sleeper.url)
    c.run(0.8)  # under the minimum suspicion timeout
    c.net.paused.discard(sleeper.url)
    c.run(3)
    assert not c.departures(0)
    for node in c.nodes[:3]:
        assert node.members[sleeper.id].state == ALIVE


def test_packet_loss_causes_no_false_departure():
    c = Cluster(6, loss=0.10)
    c.run(120)
    assert c.net.lost > 100
    assert not c.departures(0)


def test_partition_is_detected_and_heals():
    c = Cluster(6)
    c.run(3)
    left_side, right_side = c.nodes[:3], c.nodes[3:]
    for a in left_side:
        for b in right_side:
            c.net.cut.add(frozenset((a.url, b.url)))
    c.run(8)
    for node in left_side:
        assert c.view(node) == {n.id for n in left_side if n is not node}
    c.net.cut.clear()
    c.run(15)
    for node in c.nodes:
        assert len(c.view(node)) == 5


def test_a_stale_alive_cannot_resurrect_the_dead():
    c = Cluster(3)
    c.run(2)
    victim = c.nodes[2]
    c.crash(victim)
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


def test_the_anti_entropy_exchange_repairs_what_gossip_missed():
    """Hosts that believe the same swap only a digest; one that knows more is found by its
    digest, and the two then swap whole states."""
    c = Cluster(4)
    c.run(Timing().sync_interval + 2)
    assert len({n.digest() for n in c.nodes}) == 1
    a, x = c.nodes[0], c.nodes[3]
    del a.members[x.id]  # a has forgotten x, and no gossip will tell it
    for n in c.nodes:
        n._gossip.clear()
    assert len({n.digest() for n in c.nodes}) == 2
    c.run(3 * Timing().sync_interval)
    assert x.id in a.members
    assert len({n.digest() for n in c.nodes}) == 1
