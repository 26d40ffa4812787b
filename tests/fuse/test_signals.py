"""Who counts as leaving: a process with a signal pending that asks it to give up."""
import os
import signal
import subprocess
import sys

from circuit.fuse.signals import leaving, signal_pending
from tests.helpers import wait_for

_CHILD = """
import signal, sys, time
signal.signal(signal.SIGCHLD, lambda *a: None)
signal.signal(signal.SIGUSR1, lambda *a: None)
print("ready", flush=True)
time.sleep(60)
"""


def _pending(pid: int) -> int:
    """Its pending signals: the thread's own and the process's shared ones (kill(2))."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)


def test_a_pending_sigchld_is_not_leaving_but_a_pending_sigusr1_is():
    # A stopped process keeps what it is sent pending: as a busy daemon, descended from
    # the caller's shell, keeps the SIGCHLD of a child that just exited.
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        parent = os.getpid()
        os.kill(child.pid, signal.SIGSTOP)
        wait_for(lambda: "\nState:\tT" in open(f"/proc/{child.pid}/status").read(), what="stopped")
        os.kill(child.pid, signal.SIGCHLD)
        wait_for(lambda: _pending(child.pid) & (1 << (signal.SIGCHLD - 1)), what="SIGCHLD pending")
        assert not signal_pending(child.pid)
        assert not leaving(parent)  # the test runner's family holds the stopped child
        os.kill(child.pid, signal.SIGUSR1)
        wait_for(lambda: _pending(child.pid) & (1 << (signal.SIGUSR1 - 1)), what="SIGUSR1 pending")
        assert signal_pending(child.pid)
        assert leaving(parent)
    finally:
        child.kill()
        child.wait()
