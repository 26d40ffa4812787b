"""What a ``circuit`` command costs as a whole process, beside starting Python, in one run.

    python bench/cli.py [--n N] [--rounds R] [--write docs/benchmarks.md]

One host on loopback (no mount needed).  Each figure is the median over R rounds of the mean
over N whole processes, run as a shell loop would run them:

  python -c pass        the floor: starting this Python
  circuit true          a command that does nothing on the host: the command line's own cost
  circuit ls /X...      a listing
  circuit send + recv   one message into a channel (cap 1000000) and out again: two commands
  circuit mkchan + rm   making a channel and removing it: two commands
  circuit mkproc + wait a process of /bin/true and its exit record: two commands
  circuit mkproc -w     the same as one command

A benchmark, not a test: it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from local import Daemon, report  # noqa: E402

BEGIN = "<!-- cli: begin (written by bench/cli.py; edits inside are replaced) -->"
END = "<!-- cli: end -->"
ROOT = os.path.dirname(HERE)


def mean_of(n: int, op) -> float:
    start = time.perf_counter()
    for i in range(n):
        op(i)
    return (time.perf_counter() - start) / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="processes per series per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/cli.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="circuit-cli-") as tmp:
        host = Daemon("host", [sys.executable, "-m", "circuit.cli.main", "start", "--data", f"{tmp}/data"],
                      f"{tmp}/unused", ROOT, f"{tmp}/log")
        try:
            host.wait_for(lambda: os.path.exists(f"{tmp}/data/url"), "its URL", 60)
            hid = open(f"{tmp}/data/url").read().strip().rsplit("/", 1)[1]
            # As a user's shell runs it: the script pip installs, in its own Python.
            cli = [sys.executable, "-c", "import sys; from circuit.cli.main import main; sys.exit(main())",
                   "--data", f"{tmp}/data"]

            def run(*words, input=b""):
                r = subprocess.run([*cli, *words], input=input, capture_output=True, cwd=ROOT)
                if r.returncode != 0:
                    raise RuntimeError(f"{words}: {r.returncode} {r.stderr!r}")

            run("mkchan", f"/{hid}/dc/chan/c", "1000000")
            series = {k: [] for k in ("python", "true", "ls", "sendrecv", "mkrm", "mkwait", "mkw")}
            for _ in range(args.rounds):
                series["python"].append(mean_of(args.n, lambda i: subprocess.run(
                    [sys.executable, "-c", "pass"], capture_output=True)))
                series["true"].append(mean_of(args.n, lambda i: run("true")))
                series["ls"].append(mean_of(args.n, lambda i: run("ls", f"/{hid}")))
                series["sendrecv"].append(mean_of(args.n, lambda i: (
                    run("send", f"/{hid}/dc/chan/c", input=b"message"), run("recv", f"/{hid}/dc/chan/c"))))
                series["mkrm"].append(mean_of(args.n, lambda i: (
                    run("mkchan", f"/{hid}/dc/chan/m{i}", "0"), run("rm", f"/{hid}/dc/chan/m{i}"))))
                made = len(series["mkwait"])  # process names are not reused: they stay until the end
                series["mkwait"].append(mean_of(args.n, lambda i: (
                    run("mkproc", f"/{hid}/dc/proc/p{made}_{i}", "--", "/bin/true"),
                    run("wait", f"/{hid}/dc/proc/p{made}_{i}"))))
                series["mkw"].append(mean_of(args.n, lambda i: run(
                    "mkproc", "-w", f"/{hid}/dc/proc/w{made}_{i}", "--", "/bin/true")))
                print({k: round(v[-1] * 1e3, 2) for k, v in series.items()}, flush=True)
        finally:
            host.proc.terminate()
            host.proc.wait(30)
    elapsed = time.monotonic() - started
    med = {k: statistics.median(v) for k, v in series.items()}
    py = med["python"]
    rows = ["| what (whole processes) | median | per command | ratio to `python -c pass` |",
            "|---|---:|---:|---:|"]
    for key, label, commands in [("python", "`python -c pass`", 1), ("true", "`circuit true`", 1),
                                 ("ls", "`circuit ls /X...`", 1),
                                 ("sendrecv", "`circuit send` + `circuit recv`, one message", 2),
                                 ("mkrm", "`circuit mkchan` + `circuit rm`", 2),
                                 ("mkwait", "`circuit mkproc` + `circuit wait`, /bin/true", 2),
                                 ("mkw", "`circuit mkproc -w`, /bin/true", 1)]:
        per = med[key] / commands
        rows.append(f"| {label} | {med[key] * 1e3:.1f} ms | {per * 1e3:.1f} ms | {per / py:.2f}x |")
    how = (f"Medians of {args.rounds} rounds of {args.n} processes; the whole run took {elapsed:.0f} s "
           f"on {time.strftime('%Y-%m-%d')}.")
    report(BEGIN, END, command, how, rows, args.write, where="with a host it may start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
