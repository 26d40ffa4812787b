"""At size across hosts: a big process output (the owner's memory stays flat), a big listing."""
import hashlib
import subprocess

import sys
from pathlib import Path

from helpers import make_client, rss_mb

ROOT = Path(__file__).resolve().parent.parent.parent

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


MANY = """
import sys
from twisted.internet import defer, task
from circuit.client import connect
url, data, verb = sys.argv[1:4]
names = [f"{i:05d}-" + "x" * 58 for i in range(6000)]
async def main(reactor):
    c = await connect(url, data=data, reactor=reactor)
    host = (await c.hosts())[0]
    gate = defer.DeferredSemaphore(32)
    op = (lambda n: host.mkchan(n)) if verb == "make" else (lambda n: host.chan(n).remove())
    await defer.gatherResults([gate.run(op, n) for n in names])
    await c.close()
task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""


def test_a_directory_too_big_for_one_answer_is_listed_whole_from_another_host(trio, tmp_path):
    """6,000 channels with long names: one answer would be over what a connection carries
    (it failed with EHOSTDOWN after 30 s); the listing comes in pages."""
    a, b, _ = trio
    me = make_client(a.data.parent.parent / "ca", tmp_path / "me")

    def many(verb):
        subprocess.run([sys.executable, "-c", MANY, a.url, str(me), verb], check=True, cwd=ROOT,
                       timeout=300)
    many("make")
    try:
        listed = subprocess.run(["ls", str(b.mount / a.host_id / "dc" / "chan")], capture_output=True,
                                text=True, timeout=60, check=True).stdout.split()
        names = {f"{i:05d}-" + "x" * 58 for i in range(6000)}
        assert set(listed) >= names
        assert len(listed) == len(set(listed))  # no name twice across pages
    finally:
        many("remove")
