"""A call made after the membership says a host is back does not wait on a dial begun before.

    python tests/cluster/dial_after_back.py CLIENT_DIR STALLED_URL URL

Dials the host at STALLED_URL (a listener that never answers, as a host behind a cut
does), says the host is back (`Peers.back`), then calls it at URL.  Prints one JSON line:
{"second": answer, "first_pending": bool}, then {"first": errno} once the first call ends.
"""
import json
import os
import sys

from twisted.internet import asyncioreactor

asyncioreactor.install()
from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import ensureDeferred  # noqa: E402

from circuit import errors  # noqa: E402
from circuit.pb.peers import Peers, parse_url  # noqa: E402
from circuit.tls import authority  # noqa: E402


async def main(directory, stalled_url, url):
    read = lambda name: open(os.path.join(directory, name), "rb").read()  # noqa: E731
    peers = Peers(reactor, authority.HostCredentials(read("client.key"), read("client.pem"), [],
                                                     read("ca.pem")))
    host_id = parse_url(url)[2]
    first = peers.call(host_id, stalled_url, "getattr", "dc")
    ended = []
    first.addBoth(lambda result: ended.append(result) or result)
    peers.back(host_id)
    try:
        answer = await peers.call(host_id, url, "getattr", "dc")
        print(json.dumps({"second": answer[0], "first_pending": not ended}), flush=True)
    except errors.CircuitError as e:
        print(json.dumps({"second_refused": [e.errno, e.message]}), flush=True)
    try:
        await first
        print(json.dumps({"first": 0}))
    except errors.CircuitError as e:
        print(json.dumps({"first": e.errno}))
    peers.disconnect_all()
    reactor.callLater(0, reactor.stop)


if __name__ == "__main__":
    reactor.callWhenRunning(lambda: ensureDeferred(main(*sys.argv[1:4])))
    reactor.run()
