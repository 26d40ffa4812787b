"""Cross-host benchmarks for circuit, each beside baselines measured in the same run.

    python bench/cluster.py [--n N] [--rounds R] [--sizes 2,8,32] [--compare REV] [--write docs/benchmarks.md]

In a temporary directory, on loopback, it starts:

  floors    a bare PB round trip over mutual TLS (bench/bare_pb.py: same TLS options,
            certificates and reactor as circuit, no semantics) and a bare pyfuse3
            queue (bench/bare_queue_fs.py)
  two hosts A and B with their trees mounted, and measures through B's mount:
            a message through a channel on A (cap 0 and cap 100; writer and reader
            threads both on B's mount), the lookup of a name not there (one round
            trip), making a channel on A, and mkdir+run+waitexit of /bin/true on A
  clusters  of N hosts (each mounted, each reading its own sys/events): the time for
            a new host's join to reach all N-1 others, the time for a kill -9 to be
            noticed by all, and each host's CPU use while idle

With --compare REV a second pair of hosts runs the code of git revision REV (a temporary
worktree) and the series through B's mount are measured on both, each beside its counterpart in
every round (which goes first alternates): the cost of a change, before and after, in one run.

With --write the results go into FILE between its "cluster" markers.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from local import (Daemon, Round, Series, _mounted, machine, messages, ms, read_file,  # noqa: E402
                   timed, write_file, write_section)

BEGIN = "<!-- cluster: begin (written by bench/cluster.py; edits inside are replaced) -->"
END = "<!-- cluster: end -->"
CIRCUIT = [sys.executable, "-m", "circuit.cli.main"]
TICK = os.sysconf("SC_CLK_TCK")


def start_host(tmp: str, name: str, ca: str, join: str | None = None,
               tree: str = os.path.dirname(HERE)) -> tuple[Daemon, str]:
    """A host running the code of ``tree`` (this checkout unless told otherwise)."""
    argv = CIRCUIT + ["start", "-m", f"{tmp}/{name}/mnt", "--data", f"{tmp}/{name}/data", "--ca", ca]
    if join:
        argv += ["-j", join]
    os.makedirs(f"{tmp}/{name}", exist_ok=True)
    d = Daemon(name, argv, f"{tmp}/{name}/mnt", tree, f"{tmp}/{name}/log")
    url_file = f"{tmp}/{name}/data/url"
    d.wait_for(lambda: os.path.exists(url_file), "its URL", 60)
    with open(url_file) as f:
        url = f.read().strip()
    d.wait_for(lambda: os.path.isdir(f"{tmp}/{name}/mnt/{url.rsplit('/', 1)[1]}"), "its mount", 60)
    return d, url


def host_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


# -- floors --------------------------------------------------------------------------------

def bare_pb(tmp: str, ca: str, n: int, now: bool = False) -> Round:
    """Stock PB; with ``now``, each message written as it is sent, as circuit's brokers do."""
    port_file = f"{tmp}/pb.port"
    if os.path.exists(port_file):
        os.unlink(port_file)  # the last round's server is gone
    env = dict(os.environ, BARE_PB_NOW="1" if now else "0")
    server = subprocess.Popen([sys.executable, f"{HERE}/bare_pb.py", "serve", ca, port_file],
                              cwd=os.path.dirname(HERE), env=env)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if time.monotonic() > deadline:
                raise RuntimeError("the bare PB server did not start")
            time.sleep(0.05)
        out = subprocess.run([sys.executable, f"{HERE}/bare_pb.py", "time", ca,
                              open(port_file).read(), str(n)], cwd=os.path.dirname(HERE), env=env,
                             capture_output=True, text=True, check=True, timeout=120).stdout
        times = [float(x) for x in out.split()]
        return Round(times, sum(times))
    finally:
        server.terminate()
        server.wait()


# -- membership -------------------------------------------------------------------------

class EventLog:
    """Reads one host's sys/events in a thread, stamping each line as it arrives."""

    def __init__(self, path: str):
        self.seen: list[tuple[float, dict]] = []
        self._proc = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self.seen.append((time.monotonic(), json.loads(line)))

    def first(self, event: dict, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, e in list(self.seen):
                if all(e.get(k) == v for k, v in event.items()):
                    return t
            time.sleep(0.005)
        raise RuntimeError(f"no {event} within {timeout}s")

    def close(self) -> None:
        self._proc.kill()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


def cluster_round(tmp: str, ca: str, n: int) -> dict:
    """Form a cluster of n-1, time a join to reach all, idle CPU, then time a kill."""
    base = f"{tmp}/c{n}"
    hosts: list[tuple[Daemon, str]] = []
    logs: list[EventLog] = []
    try:
        first = start_host(base, "h0", ca)
        hosts.append(first)
        for i in range(1, n - 1):
            hosts.append(start_host(base, f"h{i}", ca, first[1]))
        time.sleep(2)  # let the gossip of the joins settle
        logs = [EventLog(f"{d.mountpoint}/{host_id(u)}/sys/events") for d, u in hosts]
        time.sleep(0.3)
        launched = time.monotonic()
        joiner, joiner_url = start_host(base, f"h{n - 1}", ca, first[1])
        ready = time.monotonic()  # its URL is written once the join exchange is done
        hosts.append((joiner, joiner_url))
        arrivals = [log.first({"joined": host_id(joiner_url)}) for log in logs]
        # idle CPU of every host over 10 s
        time.sleep(2)
        pids = [d.proc.pid for d, _ in hosts]
        before = [cpu_seconds(p) for p in pids]
        time.sleep(10)
        idle = [(cpu_seconds(p) - b) / 10 * 100 for p, b in zip(pids, before)]
        rss = [_rss_mb(p) for p in pids]
        # kill the joiner
        killed = time.monotonic()
        joiner.proc.kill()
        noticed = [log.first({"left": host_id(joiner_url), "reason": "failed"}) for log in logs]
        return {
            "n": n,
            "startup": ready - launched,
            "join_all": max(arrivals) - launched,
            "join_after_ready": max(max(arrivals) - ready, 0.0),
            "kill_median": statistics.median(t - killed for t in noticed),
            "kill_all": max(noticed) - killed,
            "idle_mean": statistics.mean(idle),
            "idle_max": max(idle),
            "rss_mean": statistics.mean(rss),
            "rss_max": max(rss),
        }
    finally:
        for log in logs:
            log.close()
        for d, _ in reversed(hosts):
            d.stop()


# -- the two-host figures ------------------------------------------------------------------

class Pair:
    def __init__(self, tmp: str, ca: str, tree: str = os.path.dirname(HERE)):
        self.tmp = tmp
        self.a, self.a_url = start_host(tmp, "a", ca, tree=tree)
        try:
            self.b, self.b_url = start_host(tmp, "b", ca, self.a_url, tree=tree)
        except BaseException:
            self.a.stop()
            raise
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise

    def _setup(self):
        tmp = self.tmp
        self.remote = f"{tmp}/b/mnt/{host_id(self.a_url)}/dc"   # A's dc/ through B's mount
        self.local = f"{tmp}/a/mnt/{host_id(self.a_url)}/dc"    # A's dc/ through A's own
        deadline = time.monotonic() + 30
        while not os.path.isdir(self.remote):
            if time.monotonic() > deadline:
                raise RuntimeError("B never saw A")
            time.sleep(0.05)
        for cap in (0, 100):
            os.mkdir(f"{self.remote}/chan/m{cap}")
            write_file(f"{self.remote}/chan/m{cap}/cap", b"%d\n" % cap)
        self._serial = 0

    def _name(self, prefix):
        self._serial += 1
        return f"{prefix}{self._serial}"

    def msg(self, cap: int, n: int) -> Round:
        c = f"{self.remote}/chan/m{cap}"
        return messages(f"{c}/send", f"{c}/recv", n)

    def msg_half(self, n: int) -> Round:
        """Sender on A's own mount, receiver on B's: one side local, one remote."""
        return messages(f"{self.local}/chan/m100/send", f"{self.remote}/chan/m100/recv", n)

    def missing(self, n: int, here: bool = False) -> Round:
        """stat of a name not there in A's dc/chan: through B's mount one FUSE lookup and one
        PB call to A, the cost of one round trip through the mount (through A's own: none)."""
        base = f"{self.local if here else self.remote}/chan"

        def look(path):
            try:
                os.stat(path)
            except FileNotFoundError:
                return
            raise RuntimeError(f"{path} is there")
        return timed((lambda p=f"{base}/{self._name('none')}": look(p)) for _ in range(n))

    def make_chan(self, k: int, here: bool = False) -> Round:
        """mkdir + cap of k channels on A, through B's mount (or A's own: the floor's part)."""
        names = [f"{self.local if here else self.remote}/chan/{self._name('c')}" for _ in range(k)]
        r = timed((lambda d=d: (os.mkdir(d), write_file(f"{d}/cap", b"0\n"))) for d in names)
        for d in names:
            os.rmdir(d)
        return r

    def proc(self, k: int) -> Round:
        names = [f"{self.remote}/proc/{self._name('p')}" for _ in range(k)]

        def op(d):
            os.mkdir(d)
            write_file(f"{d}/run", b'{"path":"/bin/true"}\n')
            if b'"exit": 0' not in read_file(f"{d}/waitexit"):
                raise RuntimeError("/bin/true failed")
        r = timed((lambda d=d: op(d)) for d in names)
        for d in names:
            os.rmdir(d)
        return r

    def requests(self) -> tuple[dict, dict]:
        """(PB messages A has served, FUSE requests B's mount has served) so far, by kind:
        the counts in their sys/stat, less membership's own messages."""
        a = json.loads(read_file(f"{self.tmp}/a/mnt/{host_id(self.a_url)}/sys/stat"))["requests"]
        b = json.loads(read_file(f"{self.tmp}/b/mnt/{host_id(self.b_url)}/sys/stat"))["requests"]
        pb = {k[3:]: v for k, v in a.items() if k.startswith("pb ") and k[3:] not in MEMBERSHIP}
        return pb, {k[5:]: v for k, v in b.items() if k.startswith("fuse ")}

    def costs(self, run, per: int) -> dict:
        """Run ``run`` and answer what one of its ``per`` operations cost in PB messages from
        B to A and in FUSE requests on B, by kind (reading B's stat is taken out)."""
        before = self.requests()
        reading = _minus(self.requests()[1], before[1])  # what one read of the stats costs B
        before = self.requests()
        result = run()
        after = self.requests()
        pb = _minus(after[0], before[0])
        fuse = _minus(_minus(after[1], before[1]), reading)
        return {"result": result, "pb": {k: v / per for k, v in pb.items() if v},
                "fuse": {k: v / per for k, v in fuse.items() if v}}

    def stop(self):
        self.b.stop()
        self.a.stop()


MEMBERSHIP = {"ping", "ping_req", "sync", "hello", "greet"}

# What --compare measures on both pairs: (label, this code's series, the other revision's)
COMPARED = [("a name not there (one round trip)", "xrt", "brt"),
            ("message, cap 0", "x0", "b0"), ("message, cap 100", "x100", "b100"),
            ("message, cap 100, sent on A's own mount", "xhalf", "bhalf"),
            ("make a channel (mkdir + cap)", "xchan", "bchan"),
            ("mkdir+run+waitexit of /bin/true", "xproc", "bproc")]


def _minus(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
            if after.get(k, 0) - before.get(k, 0) > 0}


def spawn(k: int) -> Round:
    return timed((lambda: subprocess.Popen(["/bin/true"]).wait()) for _ in range(k))


def bare_queue(tmp: str, n: int) -> tuple[Daemon, str]:
    d = Daemon("bare", [sys.executable, f"{HERE}/bare_queue_fs.py", f"{tmp}/bare"], f"{tmp}/bare",
               tmp, f"{tmp}/bare.log")
    d.wait_for(lambda: _mounted(f"{tmp}/bare") and os.path.exists(f"{tmp}/bare/send"), "mount")
    return d, f"{tmp}/bare"


# -- report ----------------------------------------------------------------------------------

def report(series: dict[str, Series], clusters: list[dict], command: str, elapsed: float, args,
           costs: dict) -> str:
    def t(key):
        return series[key].typical().mean

    pb_rt, fuse_rt = t("pb"), t("bare")
    floor = pb_rt + fuse_rt
    rows = [
        ("bare PB round trip over mutual TLS", "pb", "floor"),
        ("the same, each message written as it is sent (as circuit's brokers do)", "pbnow", "floor"),
        ("bare pyfuse3 queue: send+recv", "bare", "floor"),
        ("across hosts, cap 0: send+recv via B's mount to A's channel", "x0", "floor"),
        ("across hosts, cap 100: send+recv via B's mount", "x100", "floor"),
        ("across hosts, cap 100: send on A's mount, recv on B's", "xhalf", "floor"),
        ("a name not there, looked up through A's own mount", "lrt", "lrt"),
        ("a name not there, looked up through B's mount (one round trip)", "xrt", "rt_floor"),
        ("make a channel on A through its own mount (mkdir + cap)", "lchan", "lchan"),
        ("make a channel on A from B (mkdir + cap)", "xchan", "chan_floor"),
        ("local spawn+wait of /bin/true", "spawn", "spawn"),
        ("mkdir+run+waitexit of /bin/true on A from B", "xproc", "spawn_floor"),
    ]
    base = {"floor": floor, "pb": pb_rt, "spawn": t("spawn"), "lchan": t("lchan"), "lrt": t("lrt"),
            "rt_floor": t("lrt") + pb_rt,
            "chan_floor": t("lchan") + pb_rt, "spawn_floor": t("spawn") + pb_rt}
    names = {"floor": "bare FUSE + bare PB", "pb": "bare PB", "spawn": "local spawn",
             "lchan": "the same on A", "chan_floor": "the same on A + bare PB",
             "lrt": "the same on A", "rt_floor": "the same on A + bare PB",
             "spawn_floor": "local spawn + bare PB"}
    lines = ["| operation | ms (mean) | ms (median op) | ratio | to |", "|---|---:|---:|---:|---|"]
    for label, key, against in rows:
        r = series[key].typical()
        ratio = "" if key in ("pb", "pbnow", "bare") else f"{r.mean / base[against]:.2f}x"
        lines.append(f"| {label} | {ms(r.mean)} | {ms(r.median)} | {ratio} | "
                     f"{'' if not ratio else names[against]} |")
    def kinds(d: dict) -> str:
        return ", ".join(f"{k} {v:.2f}" if v % 1 else f"{k} {v:.0f}" for k, v in sorted(d.items())
                         if v >= 0.005) or "none"
    counted = ["| operation | PB messages B to A | by kind | FUSE requests on B | by kind |",
               "|---|---:|---|---:|---|"]
    for label, key, _ in rows:
        if key in costs:
            c = costs[key]
            counted.append(f"| {label} | {sum(c['pb'].values()):.2f} | {kinds(c['pb'])} | "
                           f"{sum(c['fuse'].values()):.2f} | {kinds(c['fuse'])} |")
    compare = ""
    if args.compare:
        rows_c = ["| through B's mount | before (ms) | now (ms) | now / before (median of rounds) |",
                  "|---|---:|---:|---:|"]
        for label, now, before in COMPARED:
            ratios = [n.mean / b.mean for n, b in zip(series[now].rounds, series[before].rounds)]
            rows_c.append(f"| {label} | {ms(series[before].typical().mean)} | {ms(series[now].typical().mean)} | "
                          f"{statistics.median(ratios):.2f} |")
        compare = (f"\nThe same series against revision `{args.compare}` (a second pair of hosts "
                   "running that code), each beside its counterpart in every round, which goes "
                   "first alternating from round to round:\n\n" + "\n".join(rows_c) + "\n")
    cl = ["| hosts | join reaches all (from launch) | of which the joiner's own start | "
          "kill -9 noticed by all | median | idle CPU per host (mean / max) | RSS per host (mean / max) |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    for c in clusters:
        cl.append(f"| {c['n']} | {c['join_all']:.2f} s | {c['startup']:.2f} s | {c['kill_all']:.2f} s | "
                  f"{c['kill_median']:.2f} s | {c['idle_mean']:.2f}% / {c['idle_max']:.2f}% | "
                  f"{c['rss_mean']:.0f} / {c['rss_max']:.0f} MB |")
    facts = "\n".join(f"| {k} | {v} |" for k, v in machine())
    return f"""{BEGIN}

Produced by (from the repository root, as root or a user who may mount FUSE):

    {command}

{args.rounds} rounds of {args.n} messages, {args.k} channels and processes per round; the whole
run took {elapsed:.0f} s on {time.strftime('%Y-%m-%d')}.

| machine | |
|---|---|
{facts}

Two hosts on loopback (the floor for a message across hosts is a bare FUSE round trip plus a
bare PB+TLS round trip, {ms(floor)} ms here; gocircuit's FUSE view took 7.6 ms a message across
hosts and 11.5 ms to make a remote channel; its Go client 1.5 ms to spawn and wait a remote
/bin/true). Each operation across hosts is set against its floor: the same on one host plus one
bare PB round trip:

{chr(10).join(lines)}

What each operation cost, counted by the hosts themselves (`requests` in `sys/stat`) over one
series after the warm-up: PB messages A served from B (an answered call is a round trip; a
`confirm` or `release` is one-way, answered by nobody), and FUSE requests B's mount served.
The two that make elements include the `rmdir` that removes each afterwards, which is not timed:

{chr(10).join(counted)}
{compare}
Membership at default timings (every host mounted and reading its own `sys/events`; a join is
timed from launching the new host's process, a kill from the SIGKILL; gocircuit noticed a killed
host in 3-5 s):

{chr(10).join(cl)}

{END}"""


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="messages per series per round")
    parser.add_argument("--k", type=int, default=100, help="channels and processes per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="2,8,32", help="cluster sizes for the membership figures")
    parser.add_argument("--compare", metavar="REV", help="also measure the series through B's mount "
                        "with revision REV")
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = " ".join(["python", "bench/cluster.py"] + [shlex.quote(a) for a in
                                                         (sys.argv[1:] if argv is None else argv)])
    signal.signal(signal.SIGTERM, _raise_exit)
    began = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="circuit-cluster-bench-")
    ca = f"{tmp}/ca"
    subprocess.run(CIRCUIT + ["ca", "init", ca], check=True, capture_output=True,
                   cwd=os.path.dirname(HERE))
    bare = pair = base = None
    try:
        bare, bare_dir = bare_queue(tmp, args.n)
        pair = Pair(tmp, ca)
        if args.compare:
            worktree = f"{tmp}/base-tree"
            subprocess.run(["git", "worktree", "add", "--detach", worktree, args.compare], check=True,
                           cwd=os.path.dirname(HERE), capture_output=True)
            base = Pair(f"{tmp}/base", ca, tree=worktree)
        plan = [
            ("pb", lambda: bare_pb(tmp, ca, args.n)),
            ("pbnow", lambda: bare_pb(tmp, ca, args.n, now=True)),
            ("bare", lambda: messages(f"{bare_dir}/send", f"{bare_dir}/recv", args.n)),
            ("lrt", lambda: pair.missing(args.n, here=True)),
            ("xrt", lambda: pair.missing(args.n)),
            ("x0", lambda: pair.msg(0, args.n)),
            ("x100", lambda: pair.msg(100, args.n)),
            ("xhalf", lambda: pair.msg_half(args.n)),
            ("lchan", lambda: pair.make_chan(args.k, here=True)),
            ("xchan", lambda: pair.make_chan(args.k)),
            ("spawn", lambda: spawn(args.k)),
            ("xproc", lambda: pair.proc(args.k)),
        ]
        if base is not None:  # each beside its counterpart
            theirs = {"xrt": ("brt", lambda: base.missing(args.n)),
                      "x0": ("b0", lambda: base.msg(0, args.n)),
                      "x100": ("b100", lambda: base.msg(100, args.n)),
                      "xhalf": ("bhalf", lambda: base.msg_half(args.n)),
                      "xchan": ("bchan", lambda: base.make_chan(args.k)),
                      "xproc": ("bproc", lambda: base.proc(args.k))}
            plan = [step for key, run in plan for step in [(key, run)] + ([theirs[key]] if key in theirs else [])]
        paired = {key for key, _ in theirs.values()} if base is not None else set()
        series = {key: Series(key, key) for key, _ in plan}
        for key, run in plan:  # warm up
            if key not in ("pb", "pbnow"):
                run()
        per = {"xrt": args.n, "x0": args.n, "x100": args.n, "xhalf": args.n, "xchan": args.k, "xproc": args.k}
        costs = {key: pair.costs(run, per[key]) for key, run in plan if key in per}
        for i in range(args.rounds):
            order = list(plan)
            if i % 2:  # the other revision first in every other round: neither always goes second
                for j, (key, _) in enumerate(order):
                    if key in paired:  # right after its counterpart: swap the two
                        order[j - 1], order[j] = order[j], order[j - 1]
            for key, run in order:
                r = run()
                series[key].rounds.append(r)
                print(f"round {i + 1}/{args.rounds} {key:<6} mean {r.mean * 1e3:8.3f} ms", file=sys.stderr,
                      flush=True)
    finally:
        if base is not None:
            base.stop()
            subprocess.run(["git", "worktree", "remove", "--force", f"{tmp}/base-tree"], check=False,
                           cwd=os.path.dirname(HERE), capture_output=True)
        if pair is not None:
            pair.stop()
        if bare is not None:
            bare.stop()
    clusters = []
    for n in [int(x) for x in args.sizes.split(",")]:
        c = cluster_round(tmp, ca, n)
        print(f"cluster of {n}: {c}", file=sys.stderr, flush=True)
        clusters.append(c)
    block = report(series, clusters, command, time.monotonic() - began, args, costs)
    print(block)
    if args.write:
        write_section(args.write, BEGIN, END, block, heading="## Across hosts\n\n")
    subprocess.run(["rm", "-rf", "--one-file-system", tmp], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
