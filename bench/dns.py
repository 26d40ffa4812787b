"""What the DNS element costs per question, beside a bare twisted.names server, in one run.

    python bench/dns.py [--n N] [--rounds R] [--write docs/benchmarks.md]

Two servers on loopback, each answering ``db.cluster. A 10.0.0.7``:

  bare      a twisted.names DNSServerFactory over an in-memory authority, alone in its
            process (the asyncio reactor, as the host runs): the floor
  element   dc/dns/NAME of a circuit host (no mount), made and fed with the command line

A client in this process asks over UDP with questions built once (only the ID changes) and
checks each answer's ID and its NOERROR: one question at a time (the time a resolver waits),
and 32 in flight (what one server process answers per second).  Each figure is the median
over R rounds of N questions.  A benchmark, not a test: it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from local import Daemon, report  # noqa: E402

BEGIN = "<!-- dns: begin (written by bench/dns.py; edits inside are replaced) -->"
END = "<!-- dns: end -->"
ROOT = os.path.dirname(HERE)

BARE = textwrap.dedent("""
    import sys
    from twisted.internet import asyncioreactor
    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.names import authority, dns, server

    class Memory(authority.FileAuthority):
        def loadFile(self, filename):
            self.soa = (b"cluster", dns.Record_SOA(mname=b"ns.cluster", rname=b"root.cluster"))
            self.records = {b"db.cluster": [dns.Record_A("10.0.0.7", ttl=60)]}

    factory = server.DNSServerFactory(authorities=[Memory(None)])
    port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()
""")


def question(qid: int) -> bytes:
    """A standard query for db.cluster. A, by hand (the client loads no Twisted)."""
    name = b"".join(bytes([len(label)]) + label for label in (b"db", b"cluster")) + b"\0"
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"


def ask(port: int, n: int, in_flight: int) -> float:
    """Seconds per question, ``n`` questions with ``in_flight`` outstanding."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(5)
    queries = [question(i % 65536) for i in range(n)]
    sent = answered = 0
    start = time.perf_counter()
    while answered < n:
        while sent < n and sent - answered < in_flight:
            s.send(queries[sent])
            sent += 1
        reply = s.recv(512)
        if reply[3] & 0x0F != 0:
            raise RuntimeError(f"answer with rcode {reply[3] & 0x0F}")
        answered += 1
    elapsed = time.perf_counter() - start
    s.close()
    return elapsed / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="questions per series per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/dns.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="circuit-dns-") as tmp:
        bare = subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE, cwd=ROOT)
        host = Daemon("host", [sys.executable, "-m", "circuit.cli.main", "start", "--data", f"{tmp}/data"],
                      f"{tmp}/unused", ROOT, f"{tmp}/log")
        try:
            bare_port = int(bare.stdout.readline())
            host.wait_for(lambda: os.path.exists(f"{tmp}/data/url"), "its URL", 60)
            hid = open(f"{tmp}/data/url").read().strip().rsplit("/", 1)[1]
            cli = [sys.executable, "-m", "circuit.cli.main", "--data", f"{tmp}/data"]
            for words in (["mkdns", f"/{hid}/dc/dns/names", "127.0.0.1:0"],
                          ["set", f"/{hid}/dc/dns/names", "db.cluster. A 10.0.0.7"]):
                subprocess.run([*cli, *words], check=True, cwd=ROOT)
            addr = subprocess.run([*cli, "cat", f"/{hid}/dc/dns/names/addr"], check=True, cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
            element_port = int(addr.rsplit(":", 1)[1])
            series = {k: [] for k in ("bare1", "element1", "bare32", "element32")}
            for _ in range(args.rounds):
                for name, port in (("bare", bare_port), ("element", element_port)):
                    series[f"{name}1"].append(ask(port, args.n, 1))
                    series[f"{name}32"].append(ask(port, args.n, 32))
                print({k: round(v[-1] * 1e6, 1) for k, v in series.items()}, flush=True)
        finally:
            bare.terminate()
            bare.wait(30)
            host.proc.terminate()
            host.proc.wait(30)
    elapsed = time.monotonic() - started
    med = {k: statistics.median(v) for k, v in series.items()}
    rows = ["| what (UDP, loopback) | bare twisted.names | dc/dns element | element / bare |",
            "|---|---:|---:|---:|",
            f"| one question at a time: time to an answer | {med['bare1'] * 1e6:.0f} µs | "
            f"{med['element1'] * 1e6:.0f} µs | {med['element1'] / med['bare1']:.2f}x |",
            f"| 32 in flight: answers per second | {1 / med['bare32']:,.0f} | {1 / med['element32']:,.0f} | "
            f"{med['bare32'] / med['element32']:.2f}x |"]
    how = (f"Medians of {args.rounds} rounds of {args.n} questions per series; the whole run took "
           f"{elapsed:.0f} s on {time.strftime('%Y-%m-%d')}.")
    report(BEGIN, END, command, how, rows, args.write, where="with a host it may start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
