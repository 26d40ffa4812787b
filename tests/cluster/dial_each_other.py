"""Two hosts in one process (real PB over mutual TLS on loopback) call each other.

    python tests/cluster/dial_each_other.py CA_DIR FS_DIR together|in_turn

``together``: each calls the other in the same turn of the reactor, so both dial and each
is greeted while its own dial is under way.  ``in_turn``: A calls B, then B calls A.
Then ten calls each way, then both hang up.  Prints one JSON line: the answers, the
connections each host holds, and whether every connection had closed once both were closed.
"""
import json
import os
import sys

from twisted.internet import asyncioreactor

asyncioreactor.install()
from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import ensureDeferred, gatherResults  # noqa: E402

from circuit.core.host import Host  # noqa: E402
from circuit.pb.peers import Peers  # noqa: E402
from circuit.pb.server import PeerRoot, listen  # noqa: E402
from circuit.tls import authority  # noqa: E402
from circuit.tree.circuit import Circuit  # noqa: E402
from circuit.tree.local import LocalHostTree  # noqa: E402


class Node:
    """What PeerRoot serves from: a host's tree, its ID and its Peers (as CircuitService)."""

    def __init__(self, ca, fs_root):
        self.host = Host(reactor)
        self.host_id = self.host.id
        self.circuit = Circuit(started=reactor.seconds())
        self.tree = LocalHostTree(self.host, fs_root, self.circuit)
        self.credentials = authority.issue_host(authority.load(ca), self.host_id)
        self.root = PeerRoot(self)
        self.peers = Peers(reactor, self.credentials, serve=self.root.rootObject)
        self.url = ""

    async def listen(self):
        port = await listen(reactor, "127.0.0.1:0", self.credentials, self.root)
        self.url = f"circuit://127.0.0.1:{port.getHost().port}/{self.host_id}"
        return port


def held(node) -> list:
    """The connections a host holds: the one its calls use, and any kept for the peer."""
    return [id(b) for b in list(node.peers._brokers.values()) + list(node.peers._spare)]


async def main(ca, fs, how):
    a, b = Node(ca, os.path.join(fs, "a")), Node(ca, os.path.join(fs, "b"))
    ports = [await a.listen(), await b.listen()]
    call = lambda x, y: x.peers.call(y.host_id, y.url, "getattr", "dc", timeout=10)  # noqa: E731
    if how == "together":
        first = await gatherResults([call(a, b), call(b, a)])
    else:
        first = [await call(a, b), await call(b, a)]
    more = await gatherResults([call(x, y) for _ in range(10) for x, y in ((a, b), (b, a))])
    out = {"answered": len(first) + len(more),
           "a_holds": len(held(a)), "b_holds": len(held(b)),
           "shared": len(set(held(a)) | set(held(b))),  # a connection has a broker at each end
           "connections": len(a.root.sessions) + len(b.root.sessions)}
    await gatherResults([a.peers.close(), b.peers.close()])
    out["open_after_close"] = sum(1 for n in (a, b) for s in n.root.sessions if not s.closed)
    for port in ports:
        await port.stopListening()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    def run():
        d = ensureDeferred(main(*sys.argv[1:4]))
        d.addErrback(lambda f: print(json.dumps({"error": f.getTraceback()}), flush=True))
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(run)
    reactor.run()
