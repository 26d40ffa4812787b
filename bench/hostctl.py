"""What host control costs, beside what the same outcome costs another way, in one run.

    python bench/hostctl.py [--n N] [--rounds R] [--write docs/benchmarks.md]

Two hosts, A and B, on loopback with one CA, A's tree mounted.  Each figure is the median over
R rounds:

  waitall     ``circuit waitall`` of 2N exited processes, N on each host, run by A: one
              command, every record fetched at once; beside ``cat`` of the same 2N
              ``waitexit`` files through A's mount in one process, one after the other
  stop        ``circuit stop /C`` on A for a third host C, until it returns (A has seen C
              leave); beside a SIGTERM to C, until A's ``sys/events`` says C left, and
              beside ``circuit true`` (what any command costs as a process)

A benchmark, not a test: it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from local import Daemon, report  # noqa: E402

BEGIN = "<!-- hostctl: begin (written by bench/hostctl.py; edits inside are replaced) -->"
END = "<!-- hostctl: end -->"
ROOT = os.path.dirname(HERE)


def start(tmp: str, name: str, ca: str, *extra: str, mount: bool = False) -> tuple[Daemon, str]:
    data = f"{tmp}/{name}"
    argv = [sys.executable, "-m", "circuit.cli.main", "start", "--data", data, "--ca", ca, *extra]
    if mount:
        argv += ["-m", f"{tmp}/{name}.mnt"]
    host = Daemon(name, argv, f"{tmp}/{name}.mnt", ROOT, f"{tmp}/{name}.log")
    host.wait_for(lambda: os.path.exists(f"{data}/url") and (
        not mount or len(os.listdir(f"{tmp}/{name}.mnt")) > 0), "its URL", 60)
    return host, open(f"{data}/url").read().strip()


def cli(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", data, *args],
                          capture_output=True, text=True, cwd=ROOT, check=True, timeout=120)


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


class Events:
    """A host's sys/events, line by line, read straight from the pipe (no buffer to hide a
    line from select)."""

    def __init__(self, path: str):
        self.proc = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
        self._buffer = b""

    def left(self, host_id: str) -> None:
        while True:
            while b"\n" not in self._buffer:
                if not select.select([self.proc.stdout], [], [], 30)[0]:
                    raise RuntimeError(f"no left event for {host_id}")
                self._buffer += os.read(self.proc.stdout.fileno(), 65536)
            line, self._buffer = self._buffer.split(b"\n", 1)
            if json.loads(line).get("left") == host_id:
                return


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="exited processes per host for waitall")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/hostctl.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    daemons = []
    with tempfile.TemporaryDirectory(prefix="circuit-hostctl-") as tmp:
        try:
            subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "init", f"{tmp}/ca"],
                           check=True, capture_output=True, cwd=ROOT)
            a, a_url = start(tmp, "a", f"{tmp}/ca", mount=True)
            daemons.append(a)
            b, b_url = start(tmp, "b", f"{tmp}/ca", "-j", a_url)
            daemons.append(b)
            a_id, b_id = a_url.rsplit("/", 1)[1], b_url.rsplit("/", 1)[1]
            data = f"{tmp}/a"
            paths = [f"/{h}/dc/proc/p{i}" for h in (a_id, b_id) for i in range(args.n)]
            for p in paths:
                cli(data, "mkproc", p, "--", "/bin/true")
            waitexits = [f"{tmp}/a.mnt{p}/waitexit" for p in paths]
            cli(data, "waitall", *paths)  # all exited, and everything warm

            def by_waitall():
                assert len(cli(data, "waitall", *paths).stdout.splitlines()) == len(paths)

            def by_cat():
                out = subprocess.run(["cat", *waitexits], capture_output=True, check=True, timeout=120)
                assert out.stdout.count(b'"phase": "exited"') == len(paths)
            waits = [(timed(by_waitall), timed(by_cat)) for _ in range(args.rounds)]

            stops = []
            events = Events(f"{tmp}/a.mnt/{a_id}/sys/events")
            try:
                for r in range(args.rounds):
                    pair = []
                    for how in ("stop", "sigterm"):
                        c, c_url = start(tmp, f"c{r}{how}", f"{tmp}/ca", "-j", a_url)
                        daemons.append(c)
                        c_id = c_url.rsplit("/", 1)[1]
                        a.wait_for(lambda: c_id in os.listdir(f"{tmp}/a.mnt"), "A to see C", 30)
                        if how == "stop":
                            pair.append(timed(lambda: cli(data, "stop", f"/{c_id}")))
                            events.left(c_id)
                        else:
                            pair.append(timed(lambda: (c.proc.send_signal(signal.SIGTERM),
                                                       events.left(c_id))))
                        c.proc.wait(30)
                    pair.append(timed(lambda: cli(data, "true")))  # the command line's own cost
                    stops.append(tuple(pair))
            finally:
                events.proc.kill()
        finally:
            for d in daemons:
                if d.proc.poll() is None:
                    d.proc.send_signal(signal.SIGTERM)
                    d.proc.wait(30)

    def row(what: str, pairs: list, base: str) -> list:
        ours = statistics.median(p[0] for p in pairs)
        theirs = statistics.median(p[1] for p in pairs)
        return [f"| {what} | {ours * 1000:.0f} ms | {base} | {theirs * 1000:.0f} ms | {ours / theirs:.2f}x |"]

    rows = ["| what | median | beside | its median | ratio |", "|---|---:|---|---:|---:|"]
    rows += row(f"`circuit waitall` of {2 * args.n} exited processes, half on another host", waits,
                f"`cat` of their {2 * args.n} `waitexit` files through the mount")
    rows += row("`circuit stop /C` on A, until it returns", stops,
                "SIGTERM to C, until A's `sys/events` says it left")
    rows += row("`circuit stop /C` on A, until it returns", [(p[0], p[2]) for p in stops],
                "`circuit true` on A (a command that does nothing)")
    how = (f"Medians of {args.rounds} rounds; the whole run took {time.monotonic() - started:.0f} s on "
           f"{time.strftime('%Y-%m-%d')}.")
    report(BEGIN, END, command, how, rows, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
