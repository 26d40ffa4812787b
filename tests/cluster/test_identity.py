"""A host dials a member's URL and talks only to that member: the certificate that answers
must be signed by the cluster CA and name the host ID in the URL, on every connection made
from the one TLS context a process shares among all it dials (circuit.tls.options)."""
import json
import subprocess
import sys
from pathlib import Path

from helpers import make_ca, start_daemon

ROOT = Path(__file__).resolve().parent.parent.parent

# One Peers (one shared context): each URL in turn, as a member of the cluster would call it.
DIAL = """
import json, os, sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from circuit import errors
from circuit.pb.peers import Peers
from circuit.tls import authority
ca, urls = sys.argv[1], sys.argv[2:]
async def main():
    peers = Peers(reactor, authority.issue_host(authority.load(ca), "X" + os.urandom(8).hex()))
    for url in urls:
        try:
            await peers.call(None, url, "getattr", "sys", timeout=10)
            print(json.dumps("answered"))
        except errors.CircuitError as e:
            print(json.dumps([e.errno, e.message]))
    peers.disconnect_all()
ensureDeferred(main()).addBoth(lambda _: reactor.callLater(0, reactor.stop))
reactor.run()
"""


def test_a_certificate_that_names_another_host_is_refused(tmp_path):
    ca = make_ca(tmp_path / "ca")
    a = start_daemon(tmp_path / "a", "--ca", str(ca), mount=False)
    b = start_daemon(tmp_path / "b", "--ca", str(ca), mount=False)
    try:
        a_addr = a.url.rsplit("/", 1)[0]
        impostor = f"{a_addr}/{b.host_id}"  # A's address, B's name: A answers, with A's certificate
        out = subprocess.run([sys.executable, "-c", DIAL, str(ca), a.url, impostor, b.url, a.url],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        said = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(said) == 4, out.stderr[-2000:]
        assert said[0] == said[2] == said[3] == "answered", said
        code, why = said[1]
        assert "certificate verify failed" in why, said[1]
    finally:
        b.stop()
        a.stop()
