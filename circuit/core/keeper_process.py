"""The keeper process itself (standard library only: it runs as a script, ``python -I``).

It reads, on its standard input, ``+PID START`` for each process its host starts
and ``-PID`` for each the host has reaped.  At the end of its input (the host
stopped, or died and the kernel closed the pipe) it kills each process still
listed whose start time is still ``START``: the very process, never another that
was given the same PID since.
"""
import os
import signal
import sys


def start_time(pid: int):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    # Ctrl-C at a terminal, and a service manager's SIGTERM (systemd's stop signals the
    # whole control group), reach the keeper with its host: the host then stops its
    # processes itself, and the keeper waits for the end of its input as always.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    kept = {}
    for line in sys.stdin.buffer:
        words = line.split()
        try:
            if line.startswith(b"+") and len(words) == 2:
                kept[int(words[0][1:])] = int(words[1])
            elif line.startswith(b"-"):
                kept.pop(int(words[0][1:]), None)
        except ValueError:
            print(f"circuit keeper: a bad line {line!r}", file=sys.stderr, flush=True)
    for pid, started in kept.items():
        if start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # gone in the meantime


if __name__ == "__main__":
    main()
