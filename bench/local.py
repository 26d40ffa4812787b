"""Local FUSE benchmarks for circuit, each beside a baseline measured in the same run.

    python bench/local.py [--n N] [--rounds R] [--write docs/benchmarks.md]

Starts, in a temporary directory, a bare pyfuse3 queue (bench/bare_queue_fs.py,
same loop, no semantics) and a circuit host, both mounted, and measures with
one and the same client code (os.open/os.write/os.close, os.open/os.read to
EOF/os.close):

  message   one send+recv through the bare queue, a cap 0 and a cap 100 channel
            (a writer thread and a reader thread; time per message), and through the
            same bare queue on circuit's own pyfuse3 loop layer (circuit/fuse/shim.py)
  channel   mkdir chan/NAME + write cap, beside mkdir + write of a file in the bare fs
  process   mkdir proc/NAME + write run + read waitexit of /bin/true, beside a
            local spawn+wait of /bin/true (and the same three FUSE calls on the bare fs)

Every measurement is warmed up, then repeated in R rounds (interleaved, so
drift hits all alike); the tables show each series' median round, and a ratio
is the median over the rounds of circuit/baseline within the same round.  The
serving daemon's CPU time per operation is reported too.  Elements made in a
round are removed afterwards, outside the timing.  With --write the results go
into the file between its "measured" markers (the whole file if it has none).

This is a benchmark, not a test: it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "<!-- measured: begin (written by bench/local.py; edits inside are replaced) -->"
END = "<!-- measured: end -->"

# gocircuit's FUSE view, as reported in the issue that asked for this suite.
GOCIRCUIT = {
    "msg": "1.6–2.4",
    "chan": "2",
    "proc": "5–6.5",
}
GOCIRCUIT_PROC_MS = 5.0  # the low end: "under half of gocircuit" means under 2.5 ms
FLOOR_FACTOR = 2.0       # messages: within 2x of the bare queue


# -- the one client ------------------------------------------------------------------

def write_file(path: str, data: bytes) -> None:
    """One open-write-close: one message, one cap, one run."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path: str) -> bytes:
    """One open, read to EOF, close: one message, one exit record."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# -- daemons ---------------------------------------------------------------------------

def _mounted(path: str) -> bool:
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Daemon:
    def __init__(self, name: str, argv: list[str], mountpoint: str, cwd: str, log: str):
        self.name = name
        self.mountpoint = mountpoint
        self.log_path = log
        self._log = open(log, "wb")
        os.makedirs(mountpoint, exist_ok=True)
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_for(self, ready, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before {what}; "
                                   f"see its log:\n{self.tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no {what} after {timeout:.0f}s; log:\n{self.tail()}")

    def cpu(self) -> float:
        """CPU seconds the daemon has used so far, all its threads.

        From schedstat (nanoseconds); from utime+stime (clock ticks) on kernels
        that do not keep it.
        """
        total = 0
        base = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(base):
            try:
                with open(f"{base}/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        if total:
            return total / 1e9
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, wait for the unmount; then force it (lazy unmount, SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if _mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", self.mountpoint], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._log.close()


# -- measurements ------------------------------------------------------------------------

@dataclass
class Round:
    times: list[float]            # seconds per op
    total: float                  # wall time of the round
    cpu: float | None = None      # CPU seconds the file system's daemon used in the round

    @property
    def mean(self) -> float:
        return self.total / len(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_per_op(self) -> float | None:
        return None if self.cpu is None else self.cpu / len(self.times)


@dataclass
class Series:
    key: str
    label: str
    rounds: list[Round] = field(default_factory=list)

    def typical(self) -> Round:
        """The median round, by mean time per op."""
        ordered = sorted(self.rounds, key=lambda r: r.mean)
        return ordered[(len(ordered) - 1) // 2]

    def spread(self) -> tuple[float, float]:
        means = [r.mean for r in self.rounds]
        return min(means), max(means)


def messages(send: str, recv: str, n: int, timeout: float = 300.0) -> Round:
    """n messages from a writer thread to a reader thread; the reader's clock per message."""
    payloads = [b"message %06d\n" % i for i in range(n)]
    stamps: list[float] = []
    failure: list[BaseException] = []
    go = threading.Barrier(3)

    def writer():
        try:
            go.wait()
            for p in payloads:
                write_file(send, p)
        except BaseException as e:
            failure.append(e)

    def reader():
        try:
            go.wait()
            for p in payloads:
                got = read_file(recv)
                stamps.append(time.perf_counter())
                if got != p:
                    raise RuntimeError(f"expected {p!r}, received {got!r}")
        except BaseException as e:
            failure.append(e)

    threads = [threading.Thread(target=writer, daemon=True),
               threading.Thread(target=reader, daemon=True)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(timeout)
        if t.is_alive():
            raise RuntimeError(f"messages through {send}: stuck after {len(stamps)} of {n}")
    if failure:
        raise failure[0]
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)]
    return Round(times, stamps[-1] - start)


def timed(ops) -> Round:
    """Run each op (a no-argument callable) in turn, timing each."""
    times = []
    clock = time.perf_counter
    start = clock()
    for op in ops:
        t = clock()
        op()
        times.append(clock() - t)
    return Round(times, clock() - start)


class Bench:
    def __init__(self, bare: str, dc: str, n: int, channels: int, procs: int,
                 daemons: dict[str, Daemon] | None = None, bare_shim: str | None = None):
        self.bare, self.dc = bare, dc
        self.bare_shim = bare_shim  # the same bare queue on circuit's pyfuse3 loop (fuse/shim.py)
        self.daemons = daemons or {}
        self._made: list[str] = []  # directories to remove after the measurement
        self.n, self.channels, self.procs = n, channels, procs
        self._serial = 0
        self.series: dict[str, Series] = {}

    def _name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    def setup(self) -> None:
        for cap in (0, 100):
            os.mkdir(f"{self.dc}/chan/m{cap}")
            write_file(f"{self.dc}/chan/m{cap}/cap", b"%d\n" % cap)

    # Each measurement returns a Round; what it made is removed by measure(), untimed.
    def msg_bare(self, n: int) -> Round:
        return messages(f"{self.bare}/send", f"{self.bare}/recv", n)

    def msg_bare_shim(self, n: int) -> Round:
        return messages(f"{self.bare_shim}/send", f"{self.bare_shim}/recv", n)

    def msg_cap(self, cap: int, n: int) -> Round:
        return messages(f"{self.dc}/chan/m{cap}/send", f"{self.dc}/chan/m{cap}/recv", n)

    def chan_bare(self, k: int) -> Round:
        names = [f"{self.bare}/{self._name('d')}" for _ in range(k)]

        def make(d):
            return lambda: (os.mkdir(d), write_file(f"{d}/ctl", b"0\n"))
        self._made += names
        return timed(make(d) for d in names)

    def chan_circuit(self, k: int) -> Round:
        names = [f"{self.dc}/chan/{self._name('c')}" for _ in range(k)]

        def make(d):
            return lambda: (os.mkdir(d), write_file(f"{d}/cap", b"0\n"))
        self._made += names
        return timed(make(d) for d in names)

    def proc_spawn(self, k: int) -> Round:
        def spawn():
            code = subprocess.Popen(["/bin/true"]).wait()
            if code != 0:
                raise RuntimeError(f"/bin/true exited {code}")
        return timed(spawn for _ in range(k))

    def proc_bare(self, k: int) -> Round:
        names = [f"{self.bare}/{self._name('q')}" for _ in range(k)]
        run = b'{"path":"/bin/true"}\n'

        def three(d):
            return lambda: (os.mkdir(d), write_file(f"{d}/ctl", run), read_file(f"{d}/ctl"))
        self._made += names
        return timed(three(d) for d in names)

    def proc_circuit(self, k: int) -> Round:
        names = [f"{self.dc}/proc/{self._name('p')}" for _ in range(k)]
        run = b'{"path":"/bin/true"}\n'

        def three(d):
            def op():
                os.mkdir(d)
                write_file(f"{d}/run", run)
                record = read_file(f"{d}/waitexit")
                if json.loads(record).get("exit") != 0:
                    raise RuntimeError(f"{d}: unexpected exit record {record!r}")
            return op
        self._made += names
        return timed(three(d) for d in names)

    PLAN = [
        # key, label, measurement(bench, size), size attribute, daemon whose CPU is counted
        ("msg_bare", "bare pyfuse3 queue: send+recv", lambda b, k: b.msg_bare(k), "n", "bare"),
        ("msg_bare_shim", "bare pyfuse3 queue on circuit's loop shim: send+recv",
         lambda b, k: b.msg_bare_shim(k), "n", "bare_shim"),
        ("msg_cap0", "circuit chan cap 0: send+recv", lambda b, k: b.msg_cap(0, k), "n", "circuit"),
        ("msg_cap100", "circuit chan cap 100: send+recv", lambda b, k: b.msg_cap(100, k), "n",
         "circuit"),
        ("chan_bare", "bare fs: mkdir + write a file", lambda b, k: b.chan_bare(k), "channels",
         "bare"),
        ("chan_circuit", "circuit: mkdir chan/NAME + write cap", lambda b, k: b.chan_circuit(k),
         "channels", "circuit"),
        ("proc_spawn", "local spawn+wait of /bin/true", lambda b, k: b.proc_spawn(k), "procs", None),
        ("proc_bare", "bare fs: mkdir + write + read (no spawn)", lambda b, k: b.proc_bare(k),
         "procs", "bare"),
        ("proc_circuit", "circuit: mkdir proc/NAME + run + waitexit /bin/true",
         lambda b, k: b.proc_circuit(k), "procs", "circuit"),
    ]

    def measure(self, run, size: int, daemon: str | None) -> Round:
        """One round of one series, with the daemon's CPU; then remove what it made."""
        d = self.daemons.get(daemon) if daemon else None
        before = d.cpu() if d else None
        try:
            r = run(self, size)
            if d is not None:
                r.cpu = d.cpu() - before
            return r
        finally:
            made, self._made = self._made, []
            for path in made:
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass

    def warm_up(self, guard) -> None:
        for key, label, run, size, daemon in self.PLAN:
            with guard(f"warm-up: {label}"):
                self.measure(run, max(20, getattr(self, size) // 10), daemon)

    def run(self, rounds: int, progress, guard) -> None:
        for key, label, *_ in self.PLAN:
            self.series[key] = Series(key, label)
        for i in range(rounds):
            for key, label, run, size, daemon in self.PLAN:
                with guard(label):
                    r = self.measure(run, getattr(self, size), daemon)
                self.series[key].rounds.append(r)
                cpu = "" if r.cpu is None else f"  daemon CPU {r.cpu_per_op * 1e3:7.3f} ms"
                progress(f"round {i + 1}/{rounds}  {label:<52} mean {r.mean * 1e3:7.3f} ms"
                         f"  median {r.median * 1e3:7.3f} ms{cpu}")


class Guard:
    """Stops the daemons if one series takes longer than ``limit`` seconds.

    A request that never gets its answer (a hang in the file system under test)
    would otherwise block the benchmark forever; stopping the daemons fails the
    blocked calls (circuit answers them with EHOSTDOWN, the bare fs's unmount
    with ENOTCONN), and the benchmark reports which series stalled.
    """

    def __init__(self, limit: float, daemons: list[Daemon]):
        self.limit = limit
        self.daemons = daemons
        self.stalled: str | None = None

    def __call__(self, label: str):
        guard = self

        class _Scope:
            def __enter__(self):
                self.timer = threading.Timer(guard.limit, guard._stall, (label,))
                self.timer.daemon = True
                self.timer.start()

            def __exit__(self, *exc):
                self.timer.cancel()
                if guard.stalled is not None:
                    raise RuntimeError(f"{guard.stalled}: no result after {guard.limit:.0f}s; "
                                       "stopped the daemons")
                return False
        return _Scope()

    def _stall(self, label: str) -> None:
        self.stalled = label
        print(f"{label}: stalled for {self.limit:.0f}s, stopping the daemons", file=sys.stderr,
              flush=True)
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGTERM)


# -- reporting ---------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def machine() -> list[tuple[str, str]]:
    def first(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import pyfuse3
    import twisted
    return [
        ("CPUs (nproc)", f"{len(os.sched_getaffinity(0))} ({cpu})"),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("pyfuse3 / Twisted", f"{pyfuse3.__version__} / {twisted.__version__}"),
        ("libfuse (fusermount3)", first(["fusermount3", "-V"])),
        ("load average at the end (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


def ratio(bench: Bench, key: str, base: str) -> float:
    """Median over the rounds of (mean of ``key`` / mean of ``base``) within the same round."""
    pairs = zip(bench.series[key].rounds, bench.series[base].rounds)
    return statistics.median(c.mean / b.mean for c, b in pairs)


ROWS = [
    # operation, circuit series, baseline series, gocircuit figure
    ("message, cap 0", "msg_cap0", "msg_bare", GOCIRCUIT["msg"]),
    ("message, cap 100", "msg_cap100", "msg_bare", GOCIRCUIT["msg"]),
    ("message, cap 0, against the same shim", "msg_cap0", "msg_bare_shim", GOCIRCUIT["msg"]),
    ("message, cap 100, against the same shim", "msg_cap100", "msg_bare_shim", GOCIRCUIT["msg"]),
    ("make a channel (mkdir + cap)", "chan_circuit", "chan_bare", GOCIRCUIT["chan"]),
    ("mkdir + run + waitexit of /bin/true", "proc_circuit", "proc_spawn", GOCIRCUIT["proc"]),
]


def table(bench: Bench) -> str:
    s = bench.series
    out = ["| operation | circuit median ms | circuit mean ms | baseline (same run) | "
           "baseline mean ms | ratio | gocircuit ms |",
           "|---|---:|---:|---|---:|---:|---:|"]
    for label, key, base, go in ROWS:
        c, b = s[key].typical(), s[base].typical()
        out.append(f"| {label} | {ms(c.median)} | {ms(c.mean)} | {s[base].label} | "
                   f"{ms(b.mean)} | {ratio(bench, key, base):.2f}x | {go} |")
    out += ["",
            "Every series, median round.  \"round means\" is the lowest and highest round; "
            "\"daemon CPU\" is the CPU time the serving daemon (bare fs or circuit host) used "
            "per operation in that round:",
            "",
            "| series | ops per round | median ms | mean ms | round means ms | daemon CPU ms |",
            "|---|---:|---:|---:|---:|---:|"]
    for key, label, *_ in Bench.PLAN:
        r, (lo, hi) = s[key].typical(), s[key].spread()
        cpu = "—" if r.cpu_per_op is None else ms(r.cpu_per_op)
        out.append(f"| {label} | {len(r.times)} | {ms(r.median)} | {ms(r.mean)} | "
                   f"{ms(lo)}–{ms(hi)} | {cpu} |")
    return "\n".join(out)


def verdicts(bench: Bench) -> str:
    s = bench.series
    floor = s["msg_bare"].typical().mean
    lines = []
    for key, what in (("msg_cap0", "cap 0"), ("msg_cap100", "cap 100")):
        m, k = s[key].typical().mean, ratio(bench, key, "msg_bare")
        ok = "meets" if k <= FLOOR_FACTOR else "misses"
        lines.append(f"- Message, {what}: {ms(m)} ms, {k:.2f}x the bare queue measured beside it "
                     f"({ms(floor)} ms in its median round); {ok} the aim of "
                     f"{FLOOR_FACTOR:.0f}x.")
    c, cb = s["chan_circuit"].typical().mean, s["chan_bare"].typical().mean
    lines.append(f"- Making a channel: {ms(c)} ms, {ratio(bench, 'chan_circuit', 'chan_bare'):.2f}x "
                 f"the same two FUSE calls on the bare fs ({ms(cb)} ms); gocircuit took "
                 f"{GOCIRCUIT['chan']} ms.")
    p = s["proc_circuit"].typical().mean
    sp, pb = s["proc_spawn"].typical().mean, s["proc_bare"].typical().mean
    limit = GOCIRCUIT_PROC_MS / 2 / 1e3
    ok = "meets" if p < limit else "misses"
    lines.append(f"- mkdir+run+waitexit: {ms(p)} ms, where a local spawn+wait of /bin/true "
                 f"takes {ms(sp)} ms and the same three FUSE calls on the bare fs {ms(pb)} ms "
                 f"(together {ms(sp + pb)} ms); {ok} the aim of under half of gocircuit's "
                 f"{GOCIRCUIT['proc']} ms (< {ms(limit)} ms, half the low end).")
    return "\n".join(lines)


def measured_block(bench: Bench, command: str, args, elapsed: float) -> str:
    facts = "\n".join(f"| {k} | {v} |" for k, v in machine())
    return f"""{BEGIN}

Produced by (from the repository root):

    {command}

{args.rounds} rounds of {args.n} messages per series, {args.channels} channels and
{args.procs} processes per round; the whole run took {elapsed:.0f} s on
{time.strftime('%Y-%m-%d')}.

| machine | |
|---|---|
{facts}

{table(bench)}

{verdicts(bench)}

{END}"""


TEMPLATE = """# Benchmarks

`bench/local.py` measures the local FUSE view of one circuit host against
baselines measured in the same run, so that the figures say how far circuit
is from what this machine allows rather than how fast the machine is:

- **a message**: one open-write-close of `send` and one open-read-to-EOF-close
  of `recv` (a writer thread and a reader thread), through a cap 0 and a
  cap 100 channel, beside the same client code moving the same messages
  through `bench/bare_queue_fs.py`, a pyfuse3 file system on the same kind of
  loop (Twisted's asyncio reactor on a fresh asyncio loop, pyfuse3's asyncio
  mode, `pyfuse3.main` as a task; direct_io, no page cache, nonseekable files)
  whose `send` and `recv` are an unbounded queue and nothing else;
- **making a channel**: `mkdir chan/NAME` and one write of `cap`, beside a
  `mkdir` and one write of a file in the bare file system;
- **a process**: `mkdir proc/NAME`, one write of `run` with
  `{{"path":"/bin/true"}}` and reading `waitexit` to EOF, beside spawning and
  waiting for `/bin/true` from the benchmark itself (Python's `subprocess`),
  and beside the same three FUSE calls on the bare file system.

All writes open with `O_WRONLY` (no `O_TRUNC`), all reads read 64 KiB at a
time to EOF.  Times are per operation in milliseconds.  "median" is the median
single operation of a round (for messages: the time between consecutive
receipts), "mean" the round's wall time divided by its operations.  Every
series is warmed up, then run in several rounds, the series interleaved within
each round so that drift hits all alike; the tables show each series' median
round, and a ratio is the median over the rounds of (circuit / baseline)
measured in the same round.  "daemon CPU" is the CPU time the serving
process (the bare file system or the circuit host) used per operation.

The reference figures for gocircuit's FUSE view are 1.6–2.4 ms a message,
2 ms to make a channel and 5–6.5 ms for mkdir+run+waitexit; a bare pyfuse3
queue was quoted at 0.3 ms a message.  The aims: a message within 2x of the
bare queue, a process in under half of gocircuit's time.

Run it from the repository root, as root or as a user who may mount FUSE,
with circuit installed in the Python that runs it (`pip install .`):

    python bench/local.py                             # print the tables
    python bench/local.py --write docs/benchmarks.md  # and update this file

`--n`, `--rounds`, `--channels` and `--procs` change the sizes; `--help` lists
the rest.  Only the part between the "measured" markers below is rewritten.

## Results

{block}

## Reading the numbers

(Written by hand after a run: what the ratios mean and where the time goes.)
"""


def report(begin: str, end: str, command: str, how: str, rows: list, write: str | None,
           where: str = "as root or a user who may mount FUSE") -> str:
    """A benchmark's markdown block (how it was made, the machine, its table), printed, and
    put into ``write`` between its markers when asked."""
    facts = "\n".join(f"| {k} | {v} |" for k, v in machine())
    text = (f"{begin}\n\nProduced by (from the repository root, {where}):\n\n    {command}\n\n{how}\n\n"
            f"| machine | |\n|---|---|\n{facts}\n\n" + "\n".join(rows) + f"\n\n{end}")
    print(text)
    if write:
        write_section(write, begin, end, text)
    return text


def write_section(path: str, begin: str, end: str, block: str, heading: str = "") -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) into the markdown file
    at ``path`` in place of the one there, or at its end under ``heading``."""
    with open(path) as f:
        text = f.read()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + heading + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def write_doc(path: str, block: str) -> None:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = None
    if text is not None and BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = TEMPLATE.format(block=block)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# -- main --------------------------------------------------------------------------------

def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per series per round")
    parser.add_argument("--rounds", type=int, default=11, help="rounds of every series")
    parser.add_argument("--channels", type=int, default=300, help="channels made per round")
    parser.add_argument("--procs", type=int, default=100, help="processes run per round")
    parser.add_argument("--write", metavar="FILE", help="put the results into FILE (markdown)")
    parser.add_argument("--circuit", default=None,
                        help="command that runs circuit (default: this python -m circuit.cli.main)")
    parser.add_argument("--stall", type=float, default=120.0, metavar="SECONDS",
                        help="give up (stopping the daemons) when one series takes this long")
    parser.add_argument("--keep", action="store_true", help="leave the temporary directory")
    args = parser.parse_args(argv)
    command = " ".join(["python", "bench/local.py"] + [shlex.quote(a) for a in
                                                       (sys.argv[1:] if argv is None else argv)])

    signal.signal(signal.SIGTERM, _raise_exit)
    began = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="circuit-bench-")
    daemons: list[Daemon] = []
    try:
        bare = Daemon("bare queue", [sys.executable, os.path.join(HERE, "bare_queue_fs.py"),
                                      f"{tmp}/bare"], f"{tmp}/bare", tmp, f"{tmp}/bare.log")
        daemons.append(bare)
        bare_shim = Daemon("bare queue, shim", [sys.executable, os.path.join(HERE, "bare_queue_fs.py"),
                                                "--circuit-shim", f"{tmp}/bare_shim"],
                           f"{tmp}/bare_shim", tmp, f"{tmp}/bare_shim.log")
        daemons.append(bare_shim)
        circuit_cmd = (shlex.split(args.circuit) if args.circuit
                       else [sys.executable, "-m", "circuit.cli.main"])
        host = Daemon("circuit", circuit_cmd + ["start", "-m", f"{tmp}/mnt", "--data", f"{tmp}/data"],
                      f"{tmp}/mnt", tmp, f"{tmp}/circuit.log")
        daemons.append(host)
        bare.wait_for(lambda: _mounted(f"{tmp}/bare") and os.path.exists(f"{tmp}/bare/send"),
                      "mount")
        bare_shim.wait_for(lambda: _mounted(f"{tmp}/bare_shim") and
                           os.path.exists(f"{tmp}/bare_shim/send"), "mount")
        url_file = f"{tmp}/data/url"
        host.wait_for(lambda: os.path.exists(url_file), "URL")
        with open(url_file) as f:
            host_id = re.sub(r".*/", "", f.read().strip())
        dc = f"{tmp}/mnt/{host_id}/dc"
        host.wait_for(lambda: _mounted(f"{tmp}/mnt") and os.path.isdir(f"{dc}/chan"), "mount")
        print(f"bare queue pid {bare.proc.pid} at {tmp}/bare; circuit pid {host.proc.pid} at "
              f"{tmp}/mnt/{host_id}", file=sys.stderr, flush=True)

        bench = Bench(f"{tmp}/bare", dc, args.n, args.channels, args.procs,
                      {"bare": bare, "bare_shim": bare_shim, "circuit": host},
                      bare_shim=f"{tmp}/bare_shim")
        bench.setup()
        guard = Guard(args.stall, daemons)
        bench.warm_up(guard)
        bench.run(args.rounds, lambda line: print(line, file=sys.stderr, flush=True), guard)
        elapsed = time.monotonic() - began

        print(table(bench))
        print()
        print(verdicts(bench))
        if args.write:
            write_doc(args.write, measured_block(bench, command, args, elapsed))
            print(f"\nwrote {args.write}", file=sys.stderr)
        return 0
    finally:
        for d in reversed(daemons):
            d.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", "--one-file-system", tmp], check=False)


if __name__ == "__main__":
    sys.exit(main())
