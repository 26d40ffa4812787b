"""A process's output read across hosts, however big: the owner's memory stays flat."""
import hashlib
import subprocess

from helpers import rss_mb

SIZE = 256 << 20


def peak_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) // 1024


def test_a_big_output_read_on_another_host_is_whole_and_the_owner_does_not_hold_it(trio):
    a, b, _ = trio
    before = rss_mb(a.proc.pid)
    with open(f"/proc/{a.proc.pid}/clear_refs", "w") as f:
        f.write("5")  # the peak from here on
    proc = b.mount / a.host_id / "dc" / "proc" / "big-output"
    b.sh(f"mkdir {proc} && echo '{{\"path\": \"/usr/bin/head\", \"args\": [\"-c\", \"{SIZE}\", "
         f"\"/dev/zero\"]}}' > {proc}/run")
    read = subprocess.run(f"cat {proc}/stdout | md5sum", shell=True, capture_output=True,
                          text=True, timeout=300, check=True)
    assert read.stdout.split()[0] == hashlib.md5(bytes(SIZE)).hexdigest()
    # Read again from its start, after the process exited: still all there.
    again = subprocess.run(f"cat {proc}/stdout | wc -c", shell=True, capture_output=True,
                           text=True, timeout=300, check=True)
    assert int(again.stdout) == SIZE
    # Kept whole, it would have cost the owner 256 MiB; a few chunks is what it may cost.
    assert peak_mb(a.proc.pid) - before < 48, (before, peak_mb(a.proc.pid))
    b.sh(f"rmdir {proc}")
