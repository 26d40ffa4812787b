"""One PB call to a host, over mutual TLS, as a client or as a host would make it.

    python tests/cluster/pb_call.py client CLIENT_DIR URL METHOD ARGS_JSON
    python tests/cluster/pb_call.py host CA_DIR URL METHOD ARGS_JSON   (a made-up member)

Prints {"ok": answer} or {"refused": [errno, why]} as one JSON line.
"""
import json
import os
import sys

from twisted.internet import asyncioreactor

asyncioreactor.install()
from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import ensureDeferred  # noqa: E402

from circuit import errors  # noqa: E402
from circuit.pb.peers import Peers  # noqa: E402
from circuit.tls import authority  # noqa: E402


def credentials(kind: str, directory: str):
    if kind == "host":
        return authority.issue_host(authority.load(directory), "X" + os.urandom(8).hex())
    read = lambda name: open(os.path.join(directory, name), "rb").read()  # noqa: E731
    return authority.HostCredentials(read("client.key"), read("client.pem"), [], read("ca.pem"))


async def main(kind, directory, url, method, args):
    peers = Peers(reactor, credentials(kind, directory))
    try:
        answer = await peers.call(None, url, method, *args, timeout=10)
        print(json.dumps({"ok": answer}))
    except errors.CircuitError as e:
        print(json.dumps({"refused": [e.errno, e.message]}))
    finally:
        peers.disconnect_all()
        reactor.callLater(0, reactor.stop)


if __name__ == "__main__":
    kind, directory, url, method, args = sys.argv[1:6]
    reactor.callWhenRunning(lambda: ensureDeferred(main(kind, directory, url, method, json.loads(args))))
    reactor.run()
