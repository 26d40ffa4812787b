"""Membership under real network faults: hosts in namespaces, links cut and lossy with nft."""
import json
import select
import signal
import subprocess
import time

import pytest

from conftest import members
from helpers import make_ca, start_daemon, wait_for
from netlab import Lab


@pytest.fixture
def lab_cluster(tmp_path, request):
    labs = []

    def make(n):
        lab = Lab(f"c{abs(hash(request.node.name)) % 10000}", n)
        labs.append(lab)
        ca = make_ca(tmp_path / "ca")
        hosts = []
        for i in range(n):
            join = ("-j", hosts[0].url) if hosts else ()
            hosts.append(start_daemon(tmp_path / f"h{i}", "--ca", str(ca), "-a", f"{lab.addr(i)}:7700",
                                      *join, prefix=lab.prefix(i)))
        ids = sorted(h.host_id for h in hosts)
        for h in hosts:
            wait_for(lambda: members(h) == ids, 15, what="the cluster to form")
        labs.append(hosts)
        return lab, hosts
    yield make
    for item in labs:
        if isinstance(item, Lab):
            continue
        for h in item:
            h.stop(signal.SIGKILL)
    for item in labs:
        if isinstance(item, Lab):
            item.close()


class Events:
    """Everything a host's sys/events says, from now on."""

    def __init__(self, host):
        self.proc = subprocess.Popen(["cat", str(host.root / "sys/events")], stdout=subprocess.PIPE)
        self.seen = []

    def poll(self):
        while select.select([self.proc.stdout], [], [], 0)[0]:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.seen.append(json.loads(line))
        return self.seen

    def close(self):
        self.proc.kill()


def test_a_cut_is_detected_and_the_halves_merge_when_it_heals(lab_cluster):
    lab, hosts = lab_cluster(4)
    left_half, right_half = hosts[:2], hosts[2:]
    lab.cut([0, 1], [2, 3])
    for side, other in ((left_half, right_half), (right_half, left_half)):
        for h in side:
            wait_for(lambda: members(h) == sorted(x.host_id for x in side), 20,
                     what="each half to declare the other gone")
    lab.heal()
    everyone = sorted(h.host_id for h in hosts)
    try:
        for h in hosts:
            wait_for(lambda: members(h) == everyone, 30, what="the halves to merge")
    except AssertionError as e:
        # Failed twice in CI: one host never showed a member of the far half again.  Its
        # membership had taken a suspicion of the member it held dead, then its refutation,
        # and never announced it back (fixed; the simulation found it in 43 of 2,430 small
        # cuts: tests/membership/test_simulation.py).  If it fails again, read these logs.
        said = "\n".join(f"--- {h.host_id} sees {members(h)}\n" + "\n".join(h.log.read_text().splitlines()[-60:])
                         for h in hosts)
        raise AssertionError(f"{e}\n{said}") from None
    # and the merged cluster works across the old cut
    hosts[0].sh("mkdir dc/chan/after && echo 1 > dc/chan/after/cap")
    hosts[3].sh(f"echo healed > {hosts[3].mount}/{hosts[0].host_id}/dc/chan/after/send")
    assert hosts[0].sh("cat dc/chan/after/recv").stdout == "healed\n"


def test_a_short_pause_is_not_a_death(lab_cluster):
    lab, hosts = lab_cluster(3)
    watchers = [Events(h) for h in hosts[:2]]
    sleeper = hosts[2]
    sleeper.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.6)  # under the minimum suspicion timeout (1 s)
    sleeper.proc.send_signal(signal.SIGCONT)
    time.sleep(5)
    for w in watchers:
        assert not [e for e in w.poll() if "left" in e]
        w.close()
    for h in hosts[:2]:
        assert sleeper.host_id in members(h)


def test_ten_percent_loss_for_two_minutes_causes_no_false_departure(lab_cluster):
    lab, hosts = lab_cluster(3)
    watchers = [Events(h) for h in hosts]
    for i in range(3):
        lab.lose(i, 10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(5)
        for w in watchers:
            assert not [e for e in w.poll() if "left" in e], w.seen
    lab.heal()
    for w in watchers:
        w.close()
    ids = sorted(h.host_id for h in hosts)
    for h in hosts:
        assert members(h) == ids


def test_kill_in_a_namespace_is_seen_by_all(lab_cluster):
    lab, hosts = lab_cluster(3)
    watchers = [Events(h) for h in hosts[:2]]
    hosts[2].proc.kill()
    for w in watchers:
        wait_for(lambda: {"left": hosts[2].host_id, "reason": "failed"} in w.poll(), 10,
                 what="the death to be noticed")
        w.close()
