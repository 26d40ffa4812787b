"""circuit at size: a stream of 64 KiB messages across hosts, a 1 GB output read across hosts,
and 100,000 elements on one host, each beside a floor measured in the same run.

    python bench/scale.py [--messages N] [--output-mib M] [--elements E] [--write docs/benchmarks.md]

In a temporary directory, on loopback: hosts A and B (one CA, both mounted) and a client
certificate.  Measured:

  stream      N messages of 64 KiB from a client into a channel on B (cap N), K in flight,
              then received by the client, K in flight; and through the mounts, a writer on
              A's mount and a reader on B's (one message per open/write/close).  Floor: a bare
              PB+mTLS stream of the same calls (bench/bare_pb.py stream), the same K in flight.
  output      a process on B writing M MiB to stdout, read through A's mount while it runs,
              then again after it exited.  Floor: the same bytes through a local pipe
              (head | cat).  B's peak RSS over its RSS before.
  connections K connections held to a host of its own (a client program dialling it K
              times, as K members would after a round of probes): the host's RSS and open
              files per connection, and what a spawn through its mount (mkdir, run,
              waitexit of /bin/true) costs with them beside without them.
  elements    E elements on a host of their own, 4 channels to every finished process, made
              through the client: RSS per element, `ls` of dc/chan through the mount beside `ls`
              of a plain directory with as many entries, `cat sys/stat` beside the same on an
              empty host, and the RSS once they are all removed.

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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cluster import host_id, start_host  # noqa: E402
from local import report  # noqa: E402

BEGIN = "<!-- scale: begin (written by bench/scale.py; edits inside are replaced) -->"
END = "<!-- scale: end -->"
KB64 = 65536

STREAM = r'''
import json, sys, time
from twisted.internet import defer, task
from circuit.client import connect
url, data, b_id, n, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
async def main(reactor):
    c = await connect(url, data=data, reactor=reactor)
    ch = await c.host(b_id).mkchan("stream%d" % k, cap=n)
    payload, out = b"x" * 65536, {}
    for _ in range(2):  # a warm-up, untimed: a new connection starts slow (its TCP buffers grow)
        await defer.gatherResults([ch.send(payload) for _ in range(k)])
        await defer.gatherResults([ch.recv() for _ in range(k)])
    # Each message received is looked at and dropped, as a consumer would: keeping all
    # of them would time the first touch of their memory too.
    for name, op in (("send", lambda: ch.send(payload)), ("recv", lambda: ch.recv().addCallback(len))):
        gate = defer.DeferredSemaphore(k)
        t = time.perf_counter()
        got = await defer.gatherResults([gate.run(op) for _ in range(n)])
        out[name] = time.perf_counter() - t
    assert all(size == 65536 for size in got)
    await ch.remove()
    await c.close()
    print(json.dumps(out))
task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
'''

ELEMENTS = r'''
import json, sys, time
from twisted.internet import defer, task
from circuit.client import connect
url, data, n, verb = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
async def main(reactor):
    c = await connect(url, data=data, reactor=reactor)
    host = (await c.hosts())[0]
    gate = defer.DeferredSemaphore(64)
    procs = n // 5
    async def make(i):
        if i < procs:
            p = await host.mkproc(f"p{i}", path="/bin/true")
            await p.wait()
        else:
            await host.mkchan(f"c{i}", cap=1)
    async def remove(i):
        await (host.proc(f"p{i}") if i < procs else host.chan(f"c{i}")).remove()
    op = make if verb == "make" else remove
    t = time.perf_counter()
    await defer.gatherResults([gate.run(lambda i=i: defer.ensureDeferred(op(i))) for i in range(n)])
    print(json.dumps({"seconds": time.perf_counter() - t}))
    await c.close()
task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
'''


CONNECTIONS = r'''
import os, sys
from twisted.internet import defer, task
from circuit.client.credentials import load_credentials
from circuit.pb.peers import Peers
from circuit.pb.server import PeerRoot
from circuit.tls.options import ClientTLS
from circuit.tree.circuit import Circuit
url, data, k, held = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class Node:  # what a host serves on a connection it dialled: a session for the member's calls
    circuit, host_id, peers = Circuit(), "dialler", None
root = PeerRoot(Node())
def rss():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])
async def main(reactor):
    credentials = load_credentials(data)
    tls = ClientTLS(credentials)  # one context for all, as a host's Peers dials every member
    first = Peers(reactor, credentials, tls=tls, serve=root.rootObject)
    await first.call(None, url, "getattr", "sys")
    before = rss()
    peers = [Peers(reactor, credentials, tls=tls, serve=root.rootObject) for _ in range(k)]  # K connections
    for i in range(0, k, 50):  # fifty handshakes at a time: each is about 1 ms of the host's CPU
        await defer.gatherResults([p.call(None, url, "getattr", "sys") for p in peers[i:i + 50]])
    with open(held, "w") as f:
        f.write(str((rss() - before) / k))  # KiB a connection dialled
    open(held + ".up", "w").close()
    while os.path.exists(held):  # until the host has been measured
        await task.deferLater(reactor, 0.05, lambda: None)
    for p in peers + [first]:
        p.disconnect_all()
task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
'''


def spawn_ms(root: str, n: int, tag: str) -> float:
    """mkdir + run + waitexit of /bin/true through the mount, ms each."""
    t = time.perf_counter()
    for i in range(n):
        d = f"{root}/dc/proc/{tag}{i}"
        os.mkdir(d)
        with open(f"{d}/run", "w") as f:
            f.write('{"path": "/bin/true"}\n')
        with open(f"{d}/waitexit") as f:
            f.read()
    return (time.perf_counter() - t) / n * 1e3


def connections(tmp: str, k: int) -> dict:
    h, h_url = start_host(tmp, "conn", f"{tmp}/ca")
    root = f"{tmp}/conn/mnt/{host_id(h_url)}"
    try:
        time.sleep(2)  # settled after its start
        spawn_ms(root, 50, "warm")
        spawn0 = statistics.median(spawn_ms(root, 100, f"a{r}_") for r in range(3))
        rss0, fds0 = rss_mb(h.proc.pid), len(os.listdir(f"/proc/{h.proc.pid}/fd"))
        held = f"{tmp}/held"
        client = subprocess.Popen([sys.executable, "-c", CONNECTIONS, h_url, f"{tmp}/me", str(k), held], cwd=ROOT)
        t = time.perf_counter()
        while not os.path.exists(held + ".up"):
            if client.poll() is not None:
                raise RuntimeError(f"the connecting client failed ({client.returncode})")
            time.sleep(0.02)
        dialled = time.perf_counter() - t
        time.sleep(2)
        rss1, fds1 = rss_mb(h.proc.pid), len(os.listdir(f"/proc/{h.proc.pid}/fd"))
        dialled_kib = float(open(held).read())
        spawn1 = statistics.median(spawn_ms(root, 100, f"b{r}_") for r in range(3))
        os.unlink(held)
        client.wait(60)
        return {"k": k, "rss0": rss0, "rss1": rss1, "fds0": fds0, "fds1": fds1, "dialled": dialled,
                "dialled_kib": dialled_kib, "spawn0": spawn0, "spawn1": spawn1}
    finally:
        h.stop()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1]) / 1024


def python(script: str, *args, timeout: float = 3600) -> dict:
    res = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                         text=True, cwd=ROOT, timeout=timeout)
    if res.returncode != 0 or not res.stdout.strip():
        raise RuntimeError(f"a workload failed ({res.returncode}): {res.stderr[-3000:]}")
    return json.loads(res.stdout.splitlines()[-1])


def bare_stream(tmp: str, n: int, k: int) -> float:
    port_file = f"{tmp}/pb.port"
    server = subprocess.Popen([sys.executable, f"{HERE}/bare_pb.py", "serve", f"{tmp}/ca", port_file],
                              cwd=ROOT)
    try:
        while not os.path.exists(port_file):
            time.sleep(0.05)
        out = subprocess.run([sys.executable, f"{HERE}/bare_pb.py", "stream", f"{tmp}/ca",
                              open(port_file).read(), str(n), str(KB64), str(k)], cwd=ROOT,
                             capture_output=True, text=True, check=True, timeout=600).stdout
        return float(out.split()[-1])
    finally:
        server.terminate()
        server.wait()
        os.unlink(port_file)


def mount_stream(a_mnt: str, b_mnt: str, b_id: str, n: int) -> float:
    """A writer on A's mount and a reader on B's, through a channel on B: seconds for n."""
    os.mkdir(f"{b_mnt}/{b_id}/dc/chan/mstream")
    with open(f"{b_mnt}/{b_id}/dc/chan/mstream/cap", "w") as f:
        f.write("100")
    payload = b"x" * KB64

    def write():
        for _ in range(n):
            fd = os.open(f"{a_mnt}/{b_id}/dc/chan/mstream/send", os.O_WRONLY)
            os.write(fd, payload)
            os.close(fd)
    writer = threading.Thread(target=write)
    t = time.perf_counter()
    writer.start()
    for _ in range(n):
        with open(f"{b_mnt}/{b_id}/dc/chan/mstream/recv", "rb") as f:
            assert len(f.read()) == KB64
    writer.join()
    seconds = time.perf_counter() - t
    os.rmdir(f"{b_mnt}/{b_id}/dc/chan/mstream")
    return seconds


def timed_shell(script: str, times: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(times):
        subprocess.run(["bash", "-c", script], check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) / times


def output_across(a_mnt: str, b, b_id: str, mib: int) -> dict:
    proc = f"{a_mnt}/{b_id}/dc/proc/big-output"
    before = rss_mb(b.proc.pid)
    with open(f"/proc/{b.proc.pid}/clear_refs", "w") as f:
        f.write("5")  # the peak from here on
    os.mkdir(proc)
    with open(f"{proc}/run", "w") as f:
        json.dump({"path": "/usr/bin/head", "args": ["-c", str(mib << 20), "/dev/zero"]}, f)
    during = timed_shell(f"cat {proc}/stdout > /dev/null")
    after = timed_shell(f"cat {proc}/stdout > /dev/null")
    peak = rss_mb(b.proc.pid, "VmHWM")
    os.rmdir(proc)
    pipe = timed_shell(f"head -c {mib << 20} /dev/zero | cat > /dev/null")
    return {"during": during, "after": after, "pipe": pipe, "before": before, "peak": peak}


def elements(tmp: str, n: int) -> dict:
    s, s_url = start_host(tmp, "s", f"{tmp}/ca")
    t, _ = start_host(tmp, "t", f"{tmp}/ca", s_url)
    root = f"{tmp}/s/mnt/{host_id(s_url)}"
    remote = f"{tmp}/t/mnt/{host_id(s_url)}"
    try:
        s.wait_for(lambda: os.path.isdir(remote), "T to see S", 30)
        stat_empty = timed_shell(f"cat {root}/sys/stat", 50)
        rss0 = rss_mb(s.proc.pid)
        made = python(ELEMENTS, s_url, f"{tmp}/me", n, "make")["seconds"]
        time.sleep(3)  # past the collection a host runs after removals (none here) and spawns
        rss1 = rss_mb(s.proc.pid)
        stat_full = timed_shell(f"cat {root}/sys/stat", 50)
        chans = n - n // 5
        plain = f"{tmp}/plain"
        os.mkdir(plain)
        for i in range(chans):
            os.mkdir(f"{plain}/c{i}")
        ls_plain = min(timed_shell(f"ls {plain} | wc -l") for _ in range(3))
        ls_before = rss_mb(s.proc.pid)
        ls_circuit = [timed_shell(f"ls {root}/dc/chan | wc -l") for _ in range(3)]
        ls_rss = rss_mb(s.proc.pid)
        t_before = rss_mb(t.proc.pid)
        ls_remote = [timed_shell(f"ls {remote}/dc/chan | wc -l") for _ in range(2)]
        t_rss = rss_mb(t.proc.pid) - t_before
        removed = python(ELEMENTS, s_url, f"{tmp}/me", n, "remove")["seconds"]
        time.sleep(4)  # the collection after removals runs 2 s after them
        rss2 = rss_mb(s.proc.pid)
        # Once more: memory the allocator kept after the first removal is used again, or grows.
        python(ELEMENTS, s_url, f"{tmp}/me", n, "make")
        python(ELEMENTS, s_url, f"{tmp}/me", n, "remove")
        time.sleep(4)
        rss3 = rss_mb(s.proc.pid)
        return {"n": n, "made": made, "removed": removed, "rss0": rss0, "rss1": rss1, "rss2": rss2,
                "rss3": rss3,
                "stat_empty": stat_empty, "stat_full": stat_full, "ls_plain": ls_plain,
                "ls_first": ls_circuit[0], "ls_again": min(ls_circuit[1:]), "ls_rss": ls_rss - ls_before,
                "ls_remote": ls_remote, "t_rss": t_rss}
    finally:
        t.stop()
        s.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="64 KiB messages per stream")
    parser.add_argument("--in-flight", default="1,8,32", help="calls in flight for the streams")
    parser.add_argument("--output-mib", type=int, default=1024)
    parser.add_argument("--elements", type=int, default=100000)
    parser.add_argument("--connections", type=int, default=1000, help="connections held to one host")
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/scale.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="circuit-scale-") as tmp:
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "init", f"{tmp}/ca"],
                       check=True, cwd=ROOT, capture_output=True)
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "client", "--ca", f"{tmp}/ca",
                        f"{tmp}/me"], check=True, cwd=ROOT, capture_output=True)
        a, a_url = start_host(tmp, "a", f"{tmp}/ca")
        b, b_url = start_host(tmp, "b", f"{tmp}/ca", a_url)
        b_id = host_id(b_url)
        try:
            a.wait_for(lambda: os.path.isdir(f"{tmp}/a/mnt/{b_id}"), "A to see B", 30)
            n, mb = args.messages, args.messages * KB64 / 1e6
            rows += ["**A stream of 64 KiB messages** (a client on A's side, the channel on B):", "",
                     "| calls in flight | bare PB+mTLS stream | client send | client recv | "
                     "send / floor | recv / floor |", "|---:|---:|---:|---:|---:|---:|"]
            for k in [int(x) for x in args.in_flight.split(",")]:
                floor = mb / bare_stream(tmp, n, k)
                got = python(STREAM, a_url, f"{tmp}/me", b_id, n, k)
                send, recv = mb / got["send"], mb / got["recv"]
                rows.append(f"| {k} | {floor:.0f} MB/s | {send:.0f} MB/s | {recv:.0f} MB/s | "
                            f"{send / floor:.2f} | {recv / floor:.2f} |")
                print(rows[-1], flush=True)
            m = min(n, 1000)
            through = m * KB64 / 1e6 / mount_stream(f"{tmp}/a/mnt", f"{tmp}/b/mnt", b_id, m)
            rows += ["", f"Through the mounts (a writer on A's, a reader on B's, one message per open): "
                     f"{through:.0f} MB/s.", ""]
            out = output_across(f"{tmp}/a/mnt", b, b_id, args.output_mib)
            size = args.output_mib * 1.048576
            rows += [f"**{args.output_mib} MiB of a process's output on B, read through A's mount:**", "",
                     "| | seconds | MB/s | to a local pipe |", "|---|---:|---:|---:|",
                     f"| local pipe (`head \\| cat`) | {out['pipe']:.2f} | {size / out['pipe']:.0f} | 1.00x |",
                     f"| while the process writes | {out['during']:.2f} | {size / out['during']:.0f} | "
                     f"{out['during'] / out['pipe']:.1f}x |",
                     f"| again, after it exited | {out['after']:.2f} | {size / out['after']:.0f} | "
                     f"{out['after'] / out['pipe']:.1f}x |", "",
                     f"B's RSS: {out['before']:.0f} MB before, peak {out['peak']:.0f} MB while serving it.", ""]
            print("\n".join(rows[-8:]), flush=True)
        finally:
            b.stop()
            a.stop()
        c = connections(tmp, args.connections)
        rows += [f"**{c['k']:,} connections held to one host** (a client dialling it {c['k']:,} times, "
                 f"as that many members would after a round of probes): the host's RSS {c['rss0']:.0f} MB "
                 f"-> {c['rss1']:.0f} MB, {(c['rss1'] - c['rss0']) * 1024 / c['k']:.0f} KiB a connection "
                 f"accepted; the dialler's, {c['dialled_kib']:.0f} KiB a connection dialled; the host's open "
                 f"files {c['fds0']} -> {c['fds1']}; dialled in {c['dialled']:.1f} s, 50 at a time "
                 f"({c['dialled'] / c['k'] * 1e3:.1f} ms a connection). A spawn through its mount "
                 f"(mkdir, run, waitexit of /bin/true) took {c['spawn0']:.2f} ms without them and "
                 f"{c['spawn1']:.2f} ms with them ({c['spawn1'] / c['spawn0']:.2f}x, "
                 f"{(c['spawn1'] - c['spawn0']) / (c['fds1'] - c['fds0']) * 1e3:+.2f} us a descriptor): the "
                 f"host's keeper, which holds none of them, starts the process.", ""]
        print(rows[-2], flush=True)
        e = elements(tmp, args.elements)
        per = (e["rss1"] - e["rss0"]) * 1024 * 1024 / e["n"]
        chans = e["n"] - e["n"] // 5
        rows += [f"**{e['n']:,} elements on one host** ({chans:,} channels, {e['n'] // 5:,} finished "
                 f"processes of /bin/true), made through the client, 64 at a time:", "",
                 "| | figure | beside |", "|---|---:|---|",
                 f"| made | {e['made']:.0f} s ({e['made'] / e['n'] * 1e3:.2f} ms each) | |",
                 f"| RSS | {e['rss0']:.0f} MB -> {e['rss1']:.0f} MB: {per / 1024:.1f} KiB an element | |",
                 f"| `ls dc/chan \\| wc -l` ({chans:,} entries), first | {e['ls_first']:.2f} s | "
                 f"{e['ls_first'] / e['ls_plain']:.0f}x `ls` of a plain directory as big ({e['ls_plain']:.3f} s) |",
                 f"| the same, again | {e['ls_again']:.2f} s | {e['ls_again'] / e['ls_plain']:.0f}x |",
                 f"| the host's RSS after the listings | +{e['ls_rss']:.0f} MB | |",
                 f"| the same `ls` through another host's mount, first / again | {e['ls_remote'][0]:.2f} s / "
                 f"{e['ls_remote'][1]:.2f} s | {e['ls_remote'][1] / e['ls_plain']:.0f}x; that host's RSS "
                 f"+{e['t_rss']:.0f} MB |",
                 f"| `cat sys/stat` | {e['stat_full'] * 1e3:.1f} ms | {e['stat_full'] / e['stat_empty']:.2f}x "
                 f"on an empty host ({e['stat_empty'] * 1e3:.1f} ms) |",
                 f"| removed, all | {e['removed']:.0f} s | |",
                 f"| RSS after removing them all | {e['rss2']:.0f} MB | |",
                 f"| RSS after making and removing them all a second time | {e['rss3']:.0f} MB | |"]
        print("\n".join(rows[-10:]), flush=True)
    how = f"The whole run took {time.monotonic() - started:.0f} s on {time.strftime('%Y-%m-%d')}."
    report(BEGIN, END, command, how, rows, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
