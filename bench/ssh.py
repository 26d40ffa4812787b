"""The SSH view against its own floors, in one run: what an exec command and an sftp get cost
beside ``ssh HOST true`` on the same server, and beside a message through the local mount.

    python bench/ssh.py [--n N] [--rounds R] [--write docs/benchmarks.md]

One host on loopback with its tree mounted and ``--sftp``; a fresh client key.  Each figure is
the median over R rounds of the mean over N operations, each a whole client process:

  ssh true          ``ssh HOST true``: connection, key exchange, public-key login, one exec
  ssh cat recv      ``ssh HOST cat /X.../dc/chan/c/recv`` of a message already buffered
  echo | ssh cat >  ``ssh HOST 'cat > /X.../dc/chan/c/send'``, the message on its stdin
  sftp get recv     ``sftp -b`` with one ``get`` of a buffered message's recv
  sftp ls /         ``sftp -b`` with one ``ls /``: the sftp client's own floor
  multiplexed       the same true and cat recv over one OpenSSH master connection
                    (ControlMaster): a command's cost without the handshake
  local mount       one message written into send and read from recv through the mount

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

BEGIN = "<!-- ssh: begin (written by bench/ssh.py; edits inside are replaced) -->"
END = "<!-- ssh: end -->"


def mean_of(n: int, op) -> float:
    start = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - start) / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="operations per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    command = "python bench/ssh.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="circuit-ssh-") as tmp:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/id"], check=True)
        os.rename(f"{tmp}/id.pub", f"{tmp}/authorized_keys")
        argv_ = [sys.executable, "-m", "circuit.cli.main", "start", "-m", f"{tmp}/mnt",
                 "--data", f"{tmp}/data", "--sftp", "127.0.0.1:0", "--authorized-keys", f"{tmp}/authorized_keys"]
        host = Daemon("host", argv_, f"{tmp}/mnt", os.path.dirname(HERE), f"{tmp}/log")
        try:
            host.wait_for(lambda: os.path.exists(f"{tmp}/data/ssh") and os.path.exists(f"{tmp}/data/url"),
                          "its SSH server", 60)
            port = open(f"{tmp}/data/ssh").read().strip().rsplit(":", 1)[1]
            hid = open(f"{tmp}/data/url").read().strip().rsplit("/", 1)[1]
            chan = f"{tmp}/mnt/{hid}/dc/chan/c"
            host.wait_for(lambda: os.path.isdir(f"{tmp}/mnt/{hid}"), "its mount", 60)
            os.mkdir(chan)
            with open(f"{chan}/cap", "w") as f:
                f.write("1000000\n")
            tree = f"/{hid}/dc/chan/c"
            base = ["-p", port, "-i", f"{tmp}/id", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "-o", f"UserKnownHostsFile={tmp}/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
                    "-o", "LogLevel=ERROR"]
            mux = ["-o", f"ControlPath={tmp}/mux", "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]
            ssh = ["ssh", *base, "me@127.0.0.1"]
            ssh_mux = ["ssh", *base, *mux, "me@127.0.0.1"]
            with open(f"{tmp}/get", "w") as f:
                f.write(f"get {tree}/recv {tmp}/got\n")
            with open(f"{tmp}/ls", "w") as f:
                f.write("ls /\n")
            sftp = ["sftp", "-P", port, "-i", f"{tmp}/id", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "-o", f"UserKnownHostsFile={tmp}/known_hosts", "-o", "LogLevel=ERROR"]

            def run(argv, input=b""):
                r = subprocess.run(argv, input=input, capture_output=True)
                if r.returncode != 0:
                    raise RuntimeError(f"{argv}: {r.returncode} {r.stderr!r}")
                return r.stdout

            def put_one():
                with open(f"{chan}/send", "wb") as f:
                    f.write(b"message\n")

            def fill(n):
                for _ in range(n):
                    put_one()

            def local_round_trip():
                put_one()
                with open(f"{chan}/recv", "rb") as f:
                    f.read()

            run(ssh + ["true"])  # known_hosts filled, caches warm
            run(ssh_mux + ["true"])
            series = {k: [] for k in ("true", "cat", "send", "get", "ls", "mux_true", "mux_cat", "local")}
            for _ in range(args.rounds):
                series["true"].append(mean_of(args.n, lambda: run(ssh + ["true"])))
                fill(args.n)
                series["cat"].append(mean_of(args.n, lambda: run(ssh + [f"cat {tree}/recv"])))
                series["send"].append(mean_of(args.n, lambda: run(ssh + [f"cat > {tree}/send"], b"message\n")))
                series["get"].append(mean_of(args.n, lambda: run(sftp + ["-b", f"{tmp}/get", "me@127.0.0.1"])))
                series["ls"].append(mean_of(args.n, lambda: run(sftp + ["-b", f"{tmp}/ls", "me@127.0.0.1"])))
                series["mux_true"].append(mean_of(args.n, lambda: run(ssh_mux + ["true"])))
                fill(args.n)
                series["mux_cat"].append(mean_of(args.n, lambda: run(ssh_mux + [f"cat {tree}/recv"])))
                series["local"].append(mean_of(args.n, local_round_trip))
                print({k: round(v[-1] * 1e3, 2) for k, v in series.items()}, flush=True)
            subprocess.run(["ssh", *base, *mux, "-O", "exit", "me@127.0.0.1"], capture_output=True)
        finally:
            host.proc.terminate()
            host.proc.wait(30)
    elapsed = time.monotonic() - started
    med = {k: statistics.median(v) for k, v in series.items()}

    def row(label, key, against, against_label):
        return f"| {label} | {med[key] * 1e3:.1f} ms | {med[key] / med[against]:.2f}x {against_label} |"
    rows = [
        "| what (one whole client process each) | median | ratio |",
        "|---|---:|---:|",
        row("`ssh HOST true`", "true", "true", "(the floor)"),
        row("`ssh HOST cat .../recv` of a buffered message", "cat", "true", "`ssh true`"),
        row("`ssh HOST 'cat > .../send'` < message", "send", "true", "`ssh true`"),
        row("`sftp -b` one `get .../recv`", "get", "ls", "`sftp` `ls /`"),
        row("`sftp -b` one `ls /`", "ls", "true", "`ssh true`"),
        row("multiplexed `ssh HOST true`", "mux_true", "mux_true", "(the floor)"),
        row("multiplexed `ssh HOST cat .../recv`", "mux_cat", "mux_true", "multiplexed `true`"),
        row("local mount: send + recv", "local", "mux_cat", "multiplexed `cat recv`"),
    ]
    how = (f"Medians of {args.rounds} rounds of {args.n} operations; the whole run took {elapsed:.0f} s "
           f"on {time.strftime('%Y-%m-%d')}.  The OpenSSH client is "
           f"{subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}.")
    report(BEGIN, END, command, how, rows, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
