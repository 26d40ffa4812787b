"""A membership state over Banana's 640 KiB string limit (some 7,000 hosts and up) crosses in
pieces, both ways: a member's full state to a host, and the host's answer to a joiner."""
import subprocess
import sys
from pathlib import Path

from helpers import make_ca, start_daemon, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
MEMBERS = 9000  # about 95 bytes each as JSON: 850 KB

# A made-up member (a host certificate from the cluster's CA) tells a host of MEMBERS
# members that have left, in one anti-entropy exchange over PB and mutual TLS, as a member
# of a very big cluster would, and prints how many members the host's answer names.
TELL = """
import os, sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import task
from twisted.internet.defer import ensureDeferred
from circuit.pb.peers import Peers
from circuit.pb.transport import PBTransport
from circuit.tls import authority
ca, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main(reactor):
    peers = Peers(reactor, authority.issue_host(authority.load(ca), "X" + os.urandom(8).hex()))
    state = [["left", f"X{i:016x}", f"circuit://host-{i:05d}.example.net:7700/X{i:016x}", 1, ""]
             for i in range(n)]
    try:
        print(len(await PBTransport(peers).sync(None, url, state)))
    finally:
        peers.disconnect_all()
task.react(lambda reactor: ensureDeferred(main(reactor)))
"""


def test_a_state_over_the_string_limit_crosses_in_pieces_both_ways(tmp_path):
    ca = make_ca(tmp_path / "ca")
    a = start_daemon(tmp_path / "a", "--ca", str(ca), mount=False)
    b = None
    try:
        told = subprocess.run([sys.executable, "-c", TELL, str(ca), a.url, str(MEMBERS)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        # A's answer: itself and every member it was told of (as "left"), well over 640 KiB.
        assert told.returncode == 0 and told.stdout.split() == [str(MEMBERS + 1)], told.stderr[-2000:]
        # A real host joins: its join is the same exchange, and A's answer is that state.
        b = start_daemon(tmp_path / "b", "--ca", str(ca), "-j", a.url, mount=False)
        members = tmp_path / "a" / "data"
        wait_for(lambda: b.url in subprocess.run(
            [sys.executable, "-m", "circuit.cli.main", "--data", str(members), "cat", f"/{a.host_id}/sys/members"],
            capture_output=True, text=True, cwd=ROOT).stdout, 30, what="A to list B")
    finally:
        if b is not None:
            b.stop()
        a.stop()
