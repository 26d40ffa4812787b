"""A bare Perspective Broker round trip over mutual TLS: the floor for cross-host figures.

    python bench/bare_pb.py serve CA_DIR PORT_FILE      # echo server, prints nothing
    python bench/bare_pb.py time CA_DIR PORT N          # N sequential round trips; prints seconds each
    python bench/bare_pb.py stream CA_DIR PORT N SIZE K # N calls of SIZE bytes, K in flight; prints seconds

Same TLS options, certificates and reactor as circuit's hosts, no semantics:
``remote_echo`` returns its argument.  With BARE_PB_NOW=1 in the environment (of both
ends), each message is written to the socket as it is sent, as circuit's brokers do
(`circuit.pb.broker.write_now`), rather than at the reactor's next turns.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

# The daemons run from the repository (python -m circuit...): use the same code.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _reactor():
    from twisted.internet import asyncioreactor
    asyncioreactor.install(asyncio.new_event_loop())
    from twisted.internet import reactor
    return reactor


def _broker():
    """PB's own Broker, or with BARE_PB_NOW=1 one that writes each message at once."""
    from twisted.spread import pb
    if os.environ.get("BARE_PB_NOW") != "1":
        return pb.Broker
    from circuit.pb.broker import write_now

    class NowBroker(pb.Broker):
        def sendEncoded(self, obj):
            super().sendEncoded(obj)
            write_now(self)
    return NowBroker


def serve(ca_dir: str, port_file: str) -> None:
    reactor = _reactor()
    from twisted.internet import endpoints
    from twisted.spread import pb

    from circuit.tls import authority
    from circuit.tls.options import server_options

    class Echo(pb.Root):
        def remote_echo(self, value):
            return value

        def remote_echo_none(self, value):
            return None

    creds = authority.issue_host(authority.load(ca_dir), "X00000000000b0001")
    endpoint = endpoints.SSL4ServerEndpoint(reactor, 0, server_options(creds), interface="127.0.0.1")

    def listening(port):
        with open(port_file + ".new", "w") as f:
            f.write(str(port.getHost().port))
        os.replace(port_file + ".new", port_file)
    factory = pb.PBServerFactory(Echo())
    factory.protocol = _broker()
    endpoint.listen(factory).addCallback(listening)
    reactor.run()


def time_round_trips(ca_dir: str, port: int, n: int, size: int = 0, in_flight: int = 0) -> None:
    """N round trips one after another; or, with ``in_flight``, N calls carrying ``size``
    bytes each with that many in flight (a stream), timed as a whole."""
    reactor = _reactor()
    from twisted.internet import endpoints
    from twisted.internet.defer import Deferred, inlineCallbacks
    from twisted.spread import pb

    from circuit.tls import authority
    from circuit.tls.options import ClientTLS

    creds = authority.issue_host(authority.load(ca_dir), "X00000000000b0002")

    class Factory(pb.PBClientFactory):
        protocol = _broker()

        def __init__(self):
            super().__init__()
            self.ready = Deferred()

        def clientConnectionMade(self, broker):
            self.ready.callback(broker)

    def run():
        d = measure()
        d.addErrback(lambda f: print(f"bare PB: {f.getErrorMessage()}", file=sys.stderr))
        d.addBoth(lambda _: reactor.stop())

    @inlineCallbacks
    def measure():
        factory = Factory()
        endpoint = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port,
                                                ClientTLS(creds).to("X00000000000b0001"))
        yield endpoint.connect(factory).addTimeout(10, reactor)
        broker = yield factory.ready.addTimeout(10, reactor)
        root = broker.remoteForName("root")
        for _ in range(50):
            yield root.callRemote("echo", b"x")
        if in_flight:
            from twisted.internet.defer import DeferredSemaphore, gatherResults
            payload, gate = b"x" * size, DeferredSemaphore(in_flight)
            t = time.perf_counter()
            yield gatherResults([gate.run(root.callRemote, "echo_none", payload) for _ in range(n)])
            print(f"{time.perf_counter() - t:.9f}")
            return
        times = []
        for _ in range(n):
            t = time.perf_counter()
            yield root.callRemote("echo", b"x")
            times.append(time.perf_counter() - t)
        print(" ".join(f"{x:.9f}" for x in times))
    reactor.callWhenRunning(run)
    reactor.run()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "stream":
        time_round_trips(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                         int(sys.argv[6]))
    else:
        time_round_trips(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
