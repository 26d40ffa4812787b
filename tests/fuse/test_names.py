"""A name removed while the kernel still holds it (a file open under it, a shell inside) can be
made again at once, and is a new directory to the kernel: a new inode, whatever it is called."""
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import chan_stat, wait_for  # noqa: E402


def test_a_channel_made_again_after_rmdir_with_a_reader_inside(host, names):
    name = names("q")
    c = host.root / "dc" / "chan" / name
    host.sh(f"mkdir {c} && echo 0 > {c}/cap")
    reader = subprocess.Popen(["cat", f"{c}/recv"], stderr=subprocess.PIPE)
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 1, what="the reader to block")
    host.sh(f"rmdir {c}")
    assert reader.wait(10) == 1  # woken: the channel went
    host.sh(f"mkdir {c} && echo 3 > {c}/cap")
    assert {"cap", "send", "recv", "stat"} <= set(os.listdir(c))
    assert chan_stat(c)["cap"] == 3
    host.sh(f"echo again > {c}/send")
    assert (c / "recv").read_text() == "again\n"


def test_a_process_made_again_after_rmdir_with_a_waiter_inside(host, names):
    p = host.root / "dc" / "proc" / names("p")
    host.sh(f"mkdir {p}")
    waiter = subprocess.Popen(["cat", f"{p}/waitexit"], stderr=subprocess.PIPE)
    wait_for(lambda: any(os.path.realpath(f"/proc/{waiter.pid}/fd/{fd}") == f"{p}/waitexit"
                         for fd in os.listdir(f"/proc/{waiter.pid}/fd")), what="the waiter to open")
    host.sh(f"rmdir {p}")
    assert waiter.wait(10) == 1
    host.sh(f"mkdir {p} && echo '{{\"path\": \"/bin/true\"}}' > {p}/run")
    assert json.loads((p / "waitexit").read_text())["exit"] == 0


def test_an_fs_folder_made_again_after_rm_with_a_shell_inside(host, names):
    d = host.root / "fs" / names("d")
    d.mkdir()
    shell = subprocess.Popen(["sleep", "60"], cwd=d)
    try:
        wait_for(lambda: os.readlink(f"/proc/{shell.pid}/cwd") == str(d), what="the shell to sit inside")
        host.sh(f"rm -r {d}")
        host.sh(f"mkdir {d} && touch {d}/x")
        assert os.listdir(d) == ["x"]
    finally:
        shell.kill()
        shell.wait()
