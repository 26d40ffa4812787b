"""Big messages: one send and one receive of 1, 16, 64 and 256 MiB, on one host and across two,
beside a local pipe moving the same bytes with the same client code, in the same run.

    python bench/big.py [--sizes 1,16,64,256] [--rounds R] [--write docs/benchmarks.md]

Two hosts A and B on loopback, both mounted.  A channel of cap 1 on A, so a send completes when
the message is buffered: "send" times one open, the writes of the whole message in 128 KiB
pieces and the close; "recv" times one open, reads to end of file and the close.  "one host"
writes and reads through A's own mount; "across hosts" through B's.  The baseline is an
os.pipe() between two threads moving the same bytes in the same pieces.  The owner's peak
memory (VmHWM, reset before each size through /proc/PID/clear_refs) is shown beside the size:
it should grow with the message, not with its square.

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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cluster import host_id, start_host  # noqa: E402
from local import report  # noqa: E402

BEGIN = "<!-- big: begin (written by bench/big.py; edits inside are replaced) -->"
END = "<!-- big: end -->"
PIECE = 128 * 1024
MiB = 1024 * 1024


def send(path: str, data: bytes) -> float:
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        for i in range(0, len(data), PIECE):
            os.write(fd, view[i:i + PIECE])
    finally:
        os.close(fd)
    return time.perf_counter() - t


def recv(path: str, size: int) -> float:
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    got = 0
    try:
        while True:
            chunk = os.read(fd, PIECE)
            if not chunk:
                break
            got += len(chunk)
    finally:
        os.close(fd)
    if got != size:
        raise RuntimeError(f"received {got} bytes of {size}")
    return time.perf_counter() - t


def pipe(data: bytes) -> float:
    r, w = os.pipe()
    got = []

    def reader():
        n = 0
        while True:
            chunk = os.read(r, PIECE)
            if not chunk:
                break
            n += len(chunk)
        got.append(n)
    t = time.perf_counter()
    th = threading.Thread(target=reader)
    th.start()
    view = memoryview(data)
    for i in range(0, len(data), PIECE):
        os.write(w, view[i:i + PIECE])
    os.close(w)
    th.join()
    elapsed = time.perf_counter() - t
    os.close(r)
    assert got == [len(data)]
    return elapsed


def peak_reset(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,16,64,256", help="MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    command = "python bench/big.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="circuit-big-") as tmp:
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "init", f"{tmp}/ca"],
                       check=True, cwd=os.path.dirname(HERE), capture_output=True)
        a, a_url = start_host(tmp, "a", f"{tmp}/ca")
        try:
            b, _ = start_host(tmp, "b", f"{tmp}/ca", a_url)
        except BaseException:
            a.stop()
            raise
        try:
            own = f"{tmp}/a/mnt/{host_id(a_url)}/dc/chan"
            other = f"{tmp}/b/mnt/{host_id(a_url)}/dc/chan"
            deadline = time.monotonic() + 30
            while not os.path.isdir(other):
                if time.monotonic() > deadline:
                    raise RuntimeError("B never saw A")
                time.sleep(0.05)
            os.mkdir(f"{own}/big")
            with open(f"{own}/big/cap", "w") as f:
                f.write("1\n")
            for size in sizes:
                data = os.urandom(size * MiB)
                figures: dict[str, list[float]] = {k: [] for k in ("pipe", "send1", "recv1", "sendx", "recvx")}
                peak_reset(a.proc.pid)
                for _ in range(args.rounds):
                    figures["pipe"].append(pipe(data))
                    figures["send1"].append(send(f"{own}/big/send", data))
                    figures["recv1"].append(recv(f"{own}/big/recv", len(data)))
                    figures["sendx"].append(send(f"{other}/big/send", data))
                    figures["recvx"].append(recv(f"{other}/big/recv", len(data)))
                med = {k: statistics.median(v) for k, v in figures.items()}
                rows.append((size, med, peak_mib(a.proc.pid)))
                print(size, {k: round(v, 3) for k, v in med.items()}, flush=True)
        finally:
            b.stop()
            a.stop()
    elapsed = time.monotonic() - started

    def cell(size, seconds, pipe_s):
        return f"{seconds:.3f} s ({size / seconds:.0f} MiB/s, {seconds / pipe_s:.1f}x)"
    lines = ["| MiB | pipe | send, one host | recv, one host | send, across | recv, across | owner's peak RSS |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for size, m, peak in rows:
        lines.append(f"| {size} | {m['pipe']:.3f} s | " + " | ".join(
            cell(size, m[k], m["pipe"]) for k in ("send1", "recv1", "sendx", "recvx")) + f" | {peak:.0f} MiB |")
    how = (f"Medians of {args.rounds} rounds; the whole run took {elapsed:.0f} s on "
           f"{time.strftime('%Y-%m-%d')}.\nEach cell: seconds, throughput, and the ratio to the pipe moving the same "
           "bytes in the same run.")
    report(BEGIN, END, command, how, lines, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
