"""The real membership at a moderate size, in memory (circuit.membership.simulation).

Each test builds a converged cluster on a simulated network under a simulated clock,
makes one thing happen, and checks what every host concluded.  The big sizes are
bench/membership.py's (docs/membership.md)."""
import itertools
import json
import random
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.spread import jelly, pb

from circuit.membership.simulation import REQUEST_ID, Simulation, answer_size, call_size, json_length
from circuit.membership.timing import Timing

N = 60


def cluster(n=N, **net):
    sim = Simulation(n, seed=3, **net)
    sim.run(Timing().sync_interval + 2)  # every host's loops have started
    return sim


def test_the_byte_counts_are_what_banana_encodes():
    def encoded(*sexp):
        broker = pb.Broker()
        broker.transport = BytesIO()
        broker.setPrefixLimit(64)
        broker.currentDialect = b"pb"
        broker.outgoingSymbols = broker.outgoingVocabulary
        broker.sendCall(*sexp)
        return len(broker.transport.getvalue())
    for n in (0, 1, 8, 300):
        text = json.dumps([["alive", f"X{i:016x}", f"circuit://10.0.0.1:7700/X{i:016x}", i, ""]
                           for i in range(n)])
        for method, args in (("ping", (text,)), ("sync", (text,)), ("hello", ()),
                             ("ping_req", ("X0000000000000001", "circuit://h:1/X0000000000000001",
                                           text))):
            assert call_size(method, tuple(map(len, args))) == encoded(
                b"message", REQUEST_ID, b"root", method.encode(), 1, jelly.jelly(args), jelly.jelly({}))
        assert answer_size(len(text)) == encoded(b"answer", REQUEST_ID, b"J" + text.encode())


_scalar = st.one_of(st.sampled_from(["alive", "suspect", "X1", "u:x", "", 'q"uo\\te', "é"]),
                    st.integers(-3, 10 ** 12), st.booleans(), st.floats(allow_nan=False), st.none())


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.lists(_scalar, min_size=5, max_size=5), st.lists(_scalar, max_size=6),
                          _scalar), max_size=8))
def test_json_length_is_what_json_dumps_writes(value):
    """The simulation sizes messages with lengths of rumours remembered: never a wrong one,
    whatever came before (1, 1.0 and True are one key to a dict)."""
    assert json_length(value) == len(json.dumps(value))
    assert json_length(value) == len(json.dumps(value))  # the second time remembered


def test_a_join_reaches_every_member_and_the_newcomer_knows_them_all():
    sim = cluster()
    reach, newcomer = sim.join_one(limit=30)
    assert reach.all is not None and len(reach.times) == N
    assert newcomer is not None


def test_a_graceful_leave_reaches_every_member_as_a_leave():
    sim = cluster()
    reach, as_failure = sim.leave_one(limit=30)
    assert reach.all is not None and len(reach.times) == N - 1
    assert as_failure == 0


@pytest.mark.parametrize("reset", [True, False], ids=["connections-reset", "silent"])
def test_a_crash_is_declared_by_every_member(reset):
    sim = cluster()
    reach = sim.crash_one(reset=reset, limit=60)
    assert reach.all is not None and len(reach.times) == N - 1
    others = sim.live()
    assert not sim.departures(0, of={h.id for h in others}, observers=others)


def test_a_member_that_joins_mid_round_is_probed_in_that_round():
    # Rounds last N x 0.5 s (30 s here); the cluster's began 0-10 s ago.  A host that
    # joins now and then goes silent (no reset: nobody's connection breaks) is found
    # only by probing.  Left for the next round, nobody would probe it for 20 s and more.
    sim = cluster()
    reach, newcomer = sim.join_one(limit=5)
    assert reach.all is not None and newcomer is not None
    node = sim.nodes[-1]
    since = sim.clock.seconds()
    sim.crash(node, reset=False)
    others = [o for o in sim.live() if o is not node]
    assert min(len(o._probe_order) for o in others) > 20  # mid-round
    sim.run_until(lambda: sim.reach(["left:failed"], node.id, since, others).all is not None, 15)
    assert sim.reach(["left:failed"], node.id, since, others).all is not None


@pytest.mark.parametrize("mode", ["tcp", "drop"])
def test_five_percent_loss_for_three_minutes_declares_nobody_dead(mode):
    sim = cluster()
    lost = sim.net.lost
    result = sim.lossy(0.05, mode, 180)
    assert sim.net.lost - lost > 1000  # the loss did happen
    assert result["departures"] == 0, result


def test_a_healed_partition_is_one_membership_again_and_nobody_on_a_side_was_declared_dead():
    sim = cluster()
    result = sim.partition(0.2, hold=30, limit=120)
    assert result["split"] is not None  # each side did see the other gone ...
    assert result["merged"] is not None and result["lost"] == 0  # ... and all came back
    # A full state from across the healed cut says "dead" of every member of this
    # side: taken as a suspicion, each refutes it in time.
    assert result["wrong"] == 0, result


def test_a_cut_healed_before_one_side_saw_the_other_gone_declares_nobody_dead_by_its_own_side():
    """Healed after 8 s, the smaller side still suspects much of the larger and its gossip
    still carries the deaths it declared: heard across the healed cut, each was a death
    declared by a member's own side (478 of them, of 21 members, before a death from a
    declarer believed gone, or back from the dead lately, was taken as a suspicion; now
    every death heard is, until the host's own probe of the member fails)."""
    sim = Simulation(120, seed=3)
    sim.run(12)
    result = sim.partition(0.2, hold=8, limit=120)
    assert result["b_saw_a_gone"] is None  # healed before the smaller side saw it all
    assert result["merged"] is not None and result["lost"] == 0
    assert result["wrong"] == 0, result


def test_after_a_heal_every_host_was_told_of_every_member_it_believes_in():
    """What a host's tree shows is what its membership told it ("joined", "left"). A member
    the membership held dead could be suspected again across a healed cut (a newer
    incarnation), then refute, and be alive again without ever being announced: its host
    stayed missing from the tree for good, on 43 of 2,430 small cuts healed like these
    (and once in CI, tests/cluster/test_network_faults.py).  Now a suspicion of the dead is
    ignored, as memberlist does, and the member comes back when it says so itself."""
    for n, seed, hold in itertools.product((4, 10), range(30), (2.0, 3.0, 5.0)):
        sim = Simulation(n, seed=seed)
        sim.run(12)
        result = sim.partition(0.5, hold=hold, limit=60)
        assert result["merged"] is not None and result["unannounced"] == 0, (n, seed, hold, result)


def test_a_cut_healed_before_it_was_seen_declares_nobody_dead_by_its_own_side():
    """A cut of 2-3 s, healed before either side had seen the other gone: the far side had
    declared some of this side dead meanwhile, and those deaths, gossiped across the healed
    cut, were believed by the member's own side (7 of these 180 cuts; 75 of 2,700 in a
    wider sweep).  Now a host believes a death only once its own probe of the member fails,
    and the member, which answers it, refutes."""
    wrong = []
    for n, seed, hold in itertools.product((4, 6, 10), range(30), (2.0, 3.0)):
        sim = Simulation(n, seed=seed)
        sim.run(12)
        result = sim.partition(0.5, hold=hold, limit=60)
        assert result["merged"] is not None, (n, seed, hold, result)
        if result["wrong"]:
            wrong.append((n, seed, hold, result["wrong"]))
    assert wrong == []


def test_a_cut_can_be_measured_without_its_heal():
    # bench/membership.py --big-cut-only, for a machine with less memory than the 5,000-host
    # heal needs (19 GB at the peak, 11 GB without it).
    sim = cluster()
    result = sim.partition(0.2, hold=30, heal=False)
    assert result["split"] is not None and result["merged"] is None and result["healed"] is False
    assert result["wrong"] == 0
    assert sim.net.side  # still cut: nothing was healed


def test_per_host_messages_and_bytes_do_not_grow_with_the_cluster():
    messages, probe_bytes, sync_bytes = {}, {}, {}
    for n in (20, 80):
        sim = cluster(n)
        before = sim.net.counters.snapshot()
        sim.run(20)
        load = sim.load(before, 20, sim.live())
        messages[n], probe_bytes[n] = load["sent"][0], load["by_method"]["ping"]
        sync_bytes[n] = load["by_method"]["sync"]
    assert 0.8 < messages[80] / messages[20] < 1.25, messages
    assert 0.8 < probe_bytes[80] / probe_bytes[20] < 1.25, probe_bytes
    # The anti-entropy exchange is flat too while nothing changes: a digest, not a state of
    # N members (with whole states it was 4x from 20 to 80 hosts).
    assert 0.8 < sync_bytes[80] / sync_bytes[20] < 1.25, sync_bytes


def test_a_mass_failure_costs_each_host_a_bounded_number_of_probes():
    """A quarter of the cluster cut off: each host hears a suspicion of every one of them.
    Probing each itself (and through three others) made a host's messages grow with the
    number of suspects (3x from 10 to 40 suspects, in the 8 s after the cut); a few at a time
    paces them (2x here, 1.5x from 20 to 80 suspects)."""
    sent = {}
    for n in (40, 160):
        sim = cluster(n)
        hosts = sim.live()
        cut = set(random.Random(3).sample([h.url for h in hosts], n // 4))
        before = sim.net.counters.sent.copy()
        sim.net.partition(cut)
        sim.run(8)
        per_host = sorted(sim.net.counters.sent.get(h.url, 0) - before.get(h.url, 0)
                          for h in hosts if h.url not in cut)
        sent[n] = per_host[len(per_host) // 2]
        watcher = next(h for h in hosts if h.url not in cut)  # the cut was seen
        assert sum(m.state != "alive" for m in watcher.members.values()) == n // 4
    assert sent[160] / sent[40] < 2.5, sent


def test_a_suspect_whose_refutation_is_spent_is_believed_by_whoever_probes_it():
    sim = Simulation(3, seed=1)
    sim.run(Timing().sync_interval + 2)
    prober, _, suspect = sim.nodes
    suspect.incarnation = 1  # it refuted long ago ...
    suspect._gossip.clear()  # ... and its gossip is spent
    # The prober still holds incarnation 0.  Its probe is on the way when it hears a
    # suspicion (a merge, a late rumour): the probe's answer alone can set it right.
    prober.probe_member(prober.members[suspect.id])
    prober.hear(["suspect", suspect.id, suspect.url, 0, ""])
    assert prober.members[suspect.id].state == "suspect"
    sim.run(0.1)
    assert prober.members[suspect.id].state == "alive"
    assert prober.members[suspect.id].incarnation == 1
    sim.run(10)
    assert not sim.departures(0)


def test_the_dead_are_retried_and_then_forgotten():
    timing = Timing(tombstone=20.0)
    sim = Simulation(5, timing=timing, seed=2)
    sim.run(timing.sync_interval + 2)
    victim = sim.nodes[4]
    sim.crash(victim)
    sim.run(5)
    watcher = sim.nodes[0]
    assert watcher.members[victim.id].state == "dead"
    dials = sim.net.counters.dials.get(watcher.url, 0)
    sim.run(10)
    assert sim.net.counters.dials.get(watcher.url, 0) > dials  # it tried the dead one again
    sim.run(timing.tombstone)
    assert victim.id not in watcher.members
    assert len(watcher.live_members()) == 3


def test_news_is_pushed_to_a_few_members_and_idle_hosts_send_nothing_more():
    """As memberlist gossips: a host tells three members its news at the next 0.2 s,
    rather than only with its probes (two a second).  A refutation then reaches every
    host in a few pushes; idle, not one message more is sent."""
    idle, refuted = {}, {}
    for nodes in (0, Timing().gossip_nodes):
        sim = Simulation(200, timing=Timing(gossip_nodes=nodes), seed=3)
        sim.run(Timing().sync_interval + 2)
        before = sim.net.counters.snapshot()
        sim.run(10)
        idle[nodes] = sim.load(before, 10, sim.live())["sent"]
        refuted[nodes] = sim.refute_one().all
    assert idle[3] == idle[0], idle
    assert refuted[3] is not None and refuted[0] is not None
    assert refuted[3] < refuted[0] / 1.4, refuted
