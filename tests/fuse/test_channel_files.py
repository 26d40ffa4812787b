"""Channel control files through the mount: one message per open-write-close, exactly once."""
import errno
import json
import os
import subprocess

import pytest

from helpers import chan_stat, wait_for


def _chan(host, name, cap):
    host.sh(f"mkdir dc/chan/{name} && echo {cap} > dc/chan/{name}/cap")
    return host.root / "dc" / "chan" / name


def test_echo_is_one_message(host, names):
    c = _chan(host, names("c"), 10)
    host.sh(f"echo x > {c}/send; printf 'a\\nb\\nc\\n' > {c}/send; /bin/echo y >> {c}/send")
    assert json.loads((c / "stat").read_text())["len"] == 3
    assert [host.sh(f"cat {c}/recv").stdout for _ in range(3)] == ["x\n", "a\nb\nc\n", "y\n"]


def test_cap0_send_completes_only_when_received(host, names):
    c = _chan(host, names("c"), 0)
    sender = subprocess.Popen(["bash", "-c", f"echo rendezvous > {c}/send"])
    wait_for(lambda: chan_stat(c)["senders_waiting"] == 1, what="the sender to wait")
    assert sender.poll() is None, "a cap-0 send returned before anyone received"
    assert host.sh(f"cat {c}/recv").stdout == "rendezvous\n"
    assert sender.wait(10) == 0


def test_full_channel_blocks_the_sender(host, names):
    c = _chan(host, names("c"), 1)
    host.sh(f"echo one > {c}/send")
    sender = subprocess.Popen(["bash", "-c", f"echo two > {c}/send"])
    wait_for(lambda: chan_stat(c)["senders_waiting"] == 1, what="the sender to wait")
    assert sender.poll() is None
    assert host.sh(f"cat {c}/recv").stdout == "one\n"
    assert sender.wait(10) == 0
    assert host.sh(f"cat {c}/recv").stdout == "two\n"


def test_empty_message_is_told_apart_from_the_end(host, names):
    c = _chan(host, names("c"), 2)
    host.sh(f": > {c}/send; echo close > {c}/close")
    r = host.sh(f"cat {c}/recv", check=False)
    assert (r.returncode, r.stdout) == (0, "")
    r = host.sh(f"cat {c}/recv", check=False)
    assert r.returncode == 1 and "Broken pipe" in r.stderr


def test_try_and_wait_files(host, names):
    c = _chan(host, names("c"), 1)
    r = host.sh(f"cat {c}/tryrecv", check=False)
    assert r.returncode == 1 and "Resource temporarily unavailable" in r.stderr
    host.sh(f"cat {c}/waitsend")  # room in the buffer: returns at once
    host.sh(f"echo a > {c}/trysend")
    r = host.sh(f"echo b > {c}/trysend", check=False)
    assert r.returncode == 1 and "Resource temporarily unavailable" in r.stderr
    assert "would block" in (c / "error").read_text()
    host.sh(f"cat {c}/waitrecv")
    assert host.sh(f"cat {c}/tryrecv").stdout == "a\n"
    waiter = subprocess.Popen(["cat", f"{c}/waitrecv"])
    wait_for(lambda: chan_stat(c)["recv_waits"] == 1, what="the waiter to wait")
    assert waiter.poll() is None
    host.sh(f"echo c > {c}/send")
    assert waiter.wait(10) == 0
    assert host.sh(f"cat {c}/recv").stdout == "c\n"


def test_close_drains_then_epipe(host, names):
    c = _chan(host, names("c"), 5)
    host.sh(f"echo 1 > {c}/send; echo 2 > {c}/send; echo close > {c}/close")
    r = host.sh(f"echo 3 > {c}/send", check=False)
    assert r.returncode == 1 and "Broken pipe" in r.stderr
    assert host.sh(f"cat {c}/recv; cat {c}/recv").stdout == "1\n2\n"
    with pytest.raises(OSError) as e:
        (c / "recv").read_bytes()
    assert e.value.errno == errno.EPIPE


def test_parallel_shell_writers_and_readers(host, names, tmp_path):
    """Exactly once, whatever the interleaving: 60 writers and 60 readers at once."""
    for cap in (0, 7):
        c = _chan(host, names(f"c{cap}"), cap)
        out = tmp_path / f"out{cap}"
        out.mkdir()
        host.sh(f"""
for i in $(seq 1 60); do cat {c}/recv > {out}/$i & done
for i in $(seq 1 60); do echo "message $i" > {c}/send & done
wait
""", timeout=60)
        got = sorted(p.read_text() for p in out.iterdir())
        assert got == sorted(f"message {i}\n" for i in range(1, 61))


def test_order_from_one_sender(host, names):
    c = _chan(host, names("c"), 3)
    host.sh(f"""(for i in $(seq 1 200); do echo $i > {c}/send; done) &
for i in $(seq 1 200); do cat {c}/recv; done > {host.root}/fs/order
wait""", timeout=60)
    assert (host.root / "fs" / "order").read_text().split() == [str(i) for i in range(1, 201)]


def test_64_mib_message(host, names):
    c = _chan(host, names("c"), 1)
    payload = os.urandom(1 << 20) * 64
    with open(c / "send", "wb") as f:
        f.write(payload)
    with open(c / "recv", "rb") as f:
        assert f.read() == payload


def test_rmdir_wakes_waiters_and_removes(host, names):
    c = _chan(host, names("c"), 0)
    reader = subprocess.Popen(["cat", f"{c}/recv"], stderr=subprocess.PIPE)
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 1, what="the reader to wait")
    host.sh(f"rmdir {c}")
    assert reader.wait(10) == 1
    assert not c.exists()
