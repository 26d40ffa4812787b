"""A pair of hosts holds one connection, whoever dialled it (circuit.pb.peers, Peers.adopt):
the host that was dialled makes its calls on it too, leases and all, rather than dialling
back.  Counted from the kernel's own table of TCP connections."""
import json
import os
import subprocess
import sys
from collections import Counter
from itertools import permutations
from pathlib import Path
from urllib.parse import urlparse

from conftest import members, start_cluster
from helpers import make_ca, wait_for

HERE = Path(__file__).resolve().parent


def _established() -> dict:
    """inode -> (local port, remote port) of every established TCP socket here."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                w = line.split()
                if w[3] == "01":  # ESTABLISHED
                    found[int(w[9])] = (int(w[1].rsplit(":", 1)[1], 16), int(w[2].rsplit(":", 1)[1], 16))
    return found


def _socket_inodes(pid: int) -> set:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def dialled(hosts) -> Counter:
    """How many connections each host dialled to each other: (dialler, dialled) -> count,
    a socket of one host whose remote port is another host's listening port."""
    table = _established()
    listening = {urlparse(h.url).port: h.host_id for h in hosts}
    ways: Counter = Counter()
    for h in hosts:
        for inode in _socket_inodes(h.proc.pid):
            ports = table.get(inode)
            if ports is not None and listening.get(ports[1], h.host_id) != h.host_id:
                ways[(h.host_id, listening[ports[1]])] += 1
    return ways


def connections(hosts) -> Counter:
    """How many connections join each pair of hosts."""
    pairs: Counter = Counter()
    for (a, b), n in dialled(hosts).items():
        pairs[frozenset((a, b))] += n
    return pairs


def one_a_pair(hosts) -> bool:
    """One connection a pair, but for hosts that dialled each other at once: they keep both,
    one each way (`test_hosts_that_dial_each_other_at_once_keep_both_connections_each_used_one_way`;
    seen in CI beside a busy simulation, as a joiner greeted a host probing it).  Never two
    the same way, and not most pairs: with no adopting, every pair holds two."""
    ways = dialled(hosts)
    twice = [p for p, n in connections(hosts).items() if n > 1]
    return all(n == 1 for n in ways.values()) and len(twice) <= 1


def _served(host) -> dict:
    return json.loads(host.sh("cat sys/stat").stdout)["requests"]


def test_each_pair_of_hosts_talks_both_ways_over_one_connection(tmp_path):
    hosts = start_cluster(tmp_path, 3)
    try:
        ids = sorted(h.host_id for h in hosts)
        for h in hosts:
            wait_for(lambda: members(h) == ids, 10, what="every host to see every host")
        pairs = {frozenset(p) for p in permutations(ids, 2)}
        # Probing calls every member once a round, so each pair of hosts has talked soon
        # (a joiner also greets every member at once); two connections a pair before.
        wait_for(lambda: set(connections(hosts)) == pairs, 30, what="every pair of hosts to connect")
        wait_for(lambda: one_a_pair(hosts), 10, what=f"one connection a pair (have {dict(dialled(hosts))})")
        held = connections(hosts)
        # Elements of each host used from each other: half of these calls go on a connection
        # the calling host did not dial.  A buffered channel's second send is one `put`,
        # under the lease the owner granted on that connection with the first send's answer.
        for x, y in permutations(hosts, 2):
            name = f"from-{x.host_id[:6]}"
            chan = x.mount / y.host_id / "dc" / "chan" / name
            x.sh(f"mkdir {chan} && echo 10 > {chan}/cap && echo one > {chan}/send")
            before = _served(y)
            x.sh(f"echo two > {chan}/send")
            after = _served(y)
            assert after.get("pb put", 0) - before.get("pb put", 0) == 1, (x.host_id, y.host_id)
            got = y.sh(f"cat dc/chan/{name}/recv; cat dc/chan/{name}/recv").stdout
            assert got == "one\ntwo\n"
        assert connections(hosts) == held, dict(dialled(hosts))  # nobody dialled again
    finally:
        for h in hosts:
            h.stop()


def _dial_each_other(tmp_path, how: str) -> dict:
    ca = make_ca(tmp_path / "ca")
    for name in ("a", "b"):
        (tmp_path / "fs" / name).mkdir(parents=True)
    out = subprocess.run([sys.executable, str(HERE / "dial_each_other.py"), str(ca), str(tmp_path / "fs"),
                          how], capture_output=True, text=True, timeout=60, cwd=HERE.parent.parent)
    assert out.stdout, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_hosts_that_dial_each_other_at_once_keep_both_connections_each_used_one_way(tmp_path):
    """Each greeted while its own dial is under way takes the other's connection for its
    calls; its own, which the other uses, stays open for it (never hung up from under a
    caller: every call is answered) and closes with the host.  (Should one greeting be
    answered before the other arrives, they share one connection instead.)  Called in
    turn, they share one."""
    together = _dial_each_other(tmp_path / "together", "together")
    both = {"answered": 22, "a_holds": 2, "b_holds": 2, "shared": 4, "connections": 4, "open_after_close": 0}
    one = {"answered": 22, "a_holds": 1, "b_holds": 1, "shared": 2, "connections": 2, "open_after_close": 0}
    assert together in (both, one), together
    in_turn = _dial_each_other(tmp_path / "in_turn", "in_turn")
    assert in_turn == one, in_turn
