"""The Python client across hosts, beside a bare PB round trip over mutual TLS, in one run.

    python bench/client.py [--n N] [--rounds R] [--write docs/benchmarks.md]

Two hosts A and B on loopback (one CA); a client certificate; the client connects through A
and works on elements on B.  Measured (``client`` runs in a process of its own, with its own
reactor, as a program would):

  bare PB       one PB call over mutual TLS (bench/bare_pb.py): the floor
  cap 0         a message through a rendezvous channel on B: recv started, then send; both done
  cap 100       send, then recv, through a buffered channel on B
  pipelined     100 sends of 100 bytes (or 64 KiB) in flight at once, then 100 receives
  mkchan        making a channel on B (and, untimed, removing it)
  spawn+wait    mkproc of /bin/true on B and waiting for its exit record
  in one        the same as one call, mkproc_wait (the owner makes it, then waits)
  local spawn   the client's own reactor spawning /bin/true and seeing it end: the floor of
                a remote spawn, with the round trips it needs
  CLI           `circuit --url URL ls /` as a whole process (host A runs it, over TLS), the
                same with --pb (the Python client runs it) and `circuit ls /` through A's own
                control socket, beside `python -c pass`

A benchmark, not a test: it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cluster import bare_pb, host_id, start_host  # noqa: E402
from local import report  # noqa: E402

BEGIN = "<!-- client: begin (written by bench/client.py; edits inside are replaced) -->"
END = "<!-- client: end -->"

WORKLOAD = r'''
import asyncio, json, sys, time
from twisted.internet import asyncioreactor
asyncioreactor.install(asyncio.new_event_loop())
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.protocol import ProcessProtocol
from circuit.client import connect

url, data, b_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = {}

async def timed(name, op, count):
    times = []
    for i in range(count):
        t = time.perf_counter()
        await op(i)
        times.append(time.perf_counter() - t)
    out[name] = times

async def main():
    c = await connect(url, data=data)
    b = c.host(b_id)
    zero = await b.mkchan("zero", cap=0)
    hundred = await b.mkchan("hundred", cap=100)
    wide = await b.mkchan("wide", cap=1000000)

    async def rendezvous(i):
        got = zero.recv()
        await zero.send(b"message")
        await got
    async def buffered(i):
        await hundred.send(b"message")
        await hundred.recv()
    def pipelined(size):
        async def op(i):
            payload = b"x" * size
            await gatherResults([wide.send(payload) for _ in range(100)])
            await gatherResults([wide.recv() for _ in range(100)])
        return op
    made = iter(range(10**9))
    async def mkchan(i):
        ch = await b.mkchan(f"m{next(made)}")
        out.setdefault("_made", []).append(ch)
    async def spawn(i):
        p = await b.mkproc(f"p{next(made)}", path="/bin/true")
        await p.wait()
        out.setdefault("_procs", []).append(p)
    async def spawn_one(i):
        name = f"p{next(made)}"
        await b.mkproc_wait(name, path="/bin/true")
        out.setdefault("_procs", []).append(b.proc(name))
    async def local_spawn(i):
        ended = Deferred()
        class Ended(ProcessProtocol):
            def processEnded(self, reason):
                ended.callback(None)
        reactor.spawnProcess(Ended(), "/bin/true", ["/bin/true"], env={})
        await ended
    for name, op, count in [("cap0", rendezvous, n), ("cap100", buffered, n),
                            ("pipe100", pipelined(100), max(1, n // 20)),
                            ("pipe64k", pipelined(65536), max(1, n // 50)),
                            ("mkchan", mkchan, n), ("spawn", spawn, n), ("spawn_one", spawn_one, n),
                            ("local_spawn", local_spawn, n)]:
        await op(0)  # warm
        await timed(name, op, count)
    for e in out.pop("_made", []) + out.pop("_procs", []) + [zero, hundred, wide]:
        await e.remove()
    print(json.dumps(out))
    c.close()

failed = []
def run():
    d = ensureDeferred(main())
    d.addErrback(lambda f: (f.printTraceback(file=sys.stderr), failed.append(f)))
    d.addBoth(lambda _: reactor.stop())
reactor.callWhenRunning(run)
reactor.run()
sys.exit(1 if failed else 0)
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="operations per series per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/client.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    series: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="circuit-client-") as tmp:
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "init", f"{tmp}/ca"],
                       check=True, cwd=ROOT, capture_output=True)
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "client", "--ca", f"{tmp}/ca",
                        f"{tmp}/me"], check=True, cwd=ROOT, capture_output=True)
        a, a_url = start_host(tmp, "a", f"{tmp}/ca")
        b, b_url = start_host(tmp, "b", f"{tmp}/ca", a_url)
        try:
            # The client reads A's members once: wait until A lists B.
            a.wait_for(lambda: os.path.isdir(f"{tmp}/a/mnt/{host_id(b_url)}"), "A to see B", 30)
            for r in range(args.rounds):
                floor = bare_pb(tmp, f"{tmp}/ca", args.n)
                series.setdefault("bare", []).append(statistics.median(floor.times))
                res = subprocess.run([sys.executable, "-c", WORKLOAD, a_url, f"{tmp}/me", host_id(b_url),
                                      str(args.n)], capture_output=True, text=True, cwd=ROOT, timeout=600)
                if res.returncode != 0 or not res.stdout.strip():
                    raise RuntimeError(f"the client workload failed ({res.returncode}): {res.stderr[-3000:]}")
                for name, times in json.loads(res.stdout.splitlines()[-1]).items():
                    per = statistics.median(times) / (100 if name.startswith("pipe") else 1)
                    series.setdefault(name, []).append(per)
                cli = [sys.executable, "-m", "circuit.cli.main", "--url", a_url, "--data", f"{tmp}/me"]
                local = [sys.executable, "-m", "circuit.cli.main", "--data", f"{tmp}/a/data"]
                for key, cmd in (("cli", cli + ["ls", "/"]), ("cli_pb", cli + ["--pb", "ls", "/"]),
                                 ("cli_local", local + ["ls", "/"]), ("python", [sys.executable, "-c", "pass"])):
                    t = time.perf_counter()
                    for _ in range(10):
                        subprocess.run(cmd, capture_output=True, cwd=ROOT, check=True)
                    series.setdefault(key, []).append((time.perf_counter() - t) / 10)
                print({k: round(v[-1] * 1e3, 3) for k, v in series.items()}, flush=True)
        finally:
            b.stop()
            a.stop()
    elapsed = time.monotonic() - started
    med = {k: statistics.median(v) for k, v in series.items()}
    bare = med["bare"]
    rows = ["| what (client on its own machine, elements on B) | median | PB round trips | "
            "ratio to its floor | gocircuit |", "|---|---:|---:|---:|---:|"]
    rows.append(f"| bare PB call over mutual TLS (the floor's unit) | {bare * 1e3:.3f} ms | 1 | 1.00x | |")
    rows.append(f"| local spawn+wait of /bin/true (in the client's reactor) | {med['local_spawn'] * 1e3:.3f} ms "
                "| 0 | | |")
    # The floor of each: its round trips of a bare PB call, plus a local spawn for a spawn.
    for key, label, trips, go in [("cap0", "a message, cap 0 (recv waiting, then send)", 1, "0.9 ms"),
                                  ("cap100", "a message, cap 100 (send, then recv)", 2, "0.9 ms"),
                                  ("mkchan", "make a channel", 1, "0.3 ms"),
                                  ("spawn", "spawn and wait /bin/true", 2, "1.5 ms"),
                                  ("spawn_one", "the same in one call (`mkproc_wait`)", 1, "1.5 ms")]:
        floor = trips * bare + (med["local_spawn"] if key.startswith("spawn") else 0)
        rows.append(f"| {label} | {med[key] * 1e3:.3f} ms | {trips} | {med[key] / floor:.2f}x | {go} |")
    for key, label in [("pipe100", "a 100-byte message, 100 in flight (per message)"),
                       ("pipe64k", "a 64 KiB message, 100 in flight (per message)")]:
        rows.append(f"| {label} | {med[key] * 1e3:.3f} ms | | {med[key] / bare:.2f}x a bare call | |")
    for key, label in [("cli", "`circuit --url URL ls /` (host A runs it, over TLS)"),
                       ("cli_pb", "`circuit --url URL --pb ls /` (the Python client, here)"),
                       ("cli_local", "`circuit ls /` on A's machine (its control socket)")]:
        rows.append(f"| {label}, whole process | {med[key] * 1e3:.0f} ms | | "
                    f"{med[key] / med['python']:.1f}x `python -c pass` | 9-13 ms |")
    how = (f"Medians over {args.rounds} rounds (each round: the median of {args.n} operations); the "
           f"whole run took {elapsed:.0f} s on {time.strftime('%Y-%m-%d')}.")
    report(BEGIN, END, command, how, rows, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
