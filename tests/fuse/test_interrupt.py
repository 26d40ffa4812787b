"""Ctrl-C and timeout on blocked files: prompt return, nothing lost, nothing half-taken."""
import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import chan_stat, reader_gives_up, wait_for, writer_gives_up


def _chan(host, name, cap):
    host.sh(f"mkdir dc/chan/{name} && echo {cap} > dc/chan/{name}/cap")
    return host.root / "dc" / "chan" / name


def test_timeout_on_recv_loses_nothing(host, names):
    c = _chan(host, names("c"), 0)
    start = time.monotonic()
    r = host.sh(f"timeout 0.3 cat {c}/recv", check=False)
    assert r.returncode == 124 and time.monotonic() - start < 5
    # The next message goes to the next reader, not to the one that left.
    sender = subprocess.Popen(["bash", "-c", f"echo kept > {c}/send"])
    assert host.sh(f"cat {c}/recv").stdout == "kept\n"
    assert sender.wait(10) == 0
    stat = json.loads((c / "stat").read_text())
    assert stat["received"] == 1 and stat["receivers_waiting"] == 0


def test_ctrl_c_on_recv_then_message_goes_to_next_reader(host, names):
    c = _chan(host, names("c"), 4)
    reader = subprocess.Popen(["cat", f"{c}/recv"], stdout=subprocess.PIPE)
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 1, what="the reader to wait")
    reader.send_signal(signal.SIGINT)
    assert reader.wait(5) != 0
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 0, what="its wait to go")
    host.sh(f"echo one > {c}/send")
    assert host.sh(f"cat {c}/recv").stdout == "one\n"


def test_interrupted_cap0_send_is_withdrawn(host, names):
    c = _chan(host, names("c"), 0)
    r = host.sh(f"timeout 0.3 bash -c 'echo withdrawn > {c}/send'", check=False)
    assert r.returncode == 124
    assert json.loads((c / "stat").read_text())["senders_waiting"] == 0
    r = host.sh(f"cat {c}/tryrecv", check=False)
    assert r.returncode == 1  # nobody is offering anything


def test_timeout_on_waitexit_and_wait(host, names):
    p, s = names("p"), names("s")
    host.sh(f"""mkdir dc/proc/{p} dc/select/{s} dc/chan/{s}; echo 0 > dc/chan/{s}/cap
echo '{{"path": "/bin/sleep", "args": ["30"]}}' > dc/proc/{p}/run
echo '[{{"op": "r", "file": "chan/{s}/recv"}}]' > dc/select/{s}/select""")
    for f in (f"dc/proc/{p}/waitexit", f"dc/select/{s}/wait"):
        r = host.sh(f"timeout 0.3 cat {f}", check=False)
        assert r.returncode == 124
    # The select is still armed: a message sent now is committed to it.
    host.sh(f"echo later > dc/chan/{s}/send")
    assert json.loads(host.sh(f"cat dc/select/{s}/wait").stdout)["clause"] == 0
    assert host.sh(f"cat dc/select/{s}/read.0").stdout == "later\n"
    host.sh(f"echo KILL > dc/proc/{p}/signal")


def test_hundreds_of_blocked_readers_do_not_freeze_the_mount(host, names):
    c = _chan(host, names("c"), 0)
    readers = [subprocess.Popen(["cat", f"{c}/recv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(300)]
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 300, 30, what="300 readers to wait")
    assert host.sh("ls dc/chan && cat sys/id", timeout=10).returncode == 0
    host.sh(f"for i in $(seq 1 10); do echo m$i > {c}/send; done", timeout=30)
    host.sh(f"echo close > {c}/close")
    outs = [r.communicate(timeout=30)[0] for r in readers]
    assert sorted(o for o in outs if o) == sorted(f"m{i}\n".encode() for i in range(1, 11))
    assert sum(r.returncode == 1 for r in readers) == 290  # EPIPE once closed and drained


def test_a_descriptor_inherited_from_an_exited_opener_still_reads(host, names):
    """The process that opened recv has exited; its child reads through the same descriptor."""
    c = _chan(host, names("c"), 1)
    reader = subprocess.Popen(["bash", "-c", f"exec 3< {c}/recv; (sleep 0.3; cat <&3) & exit 0"],
                              stdout=subprocess.PIPE)
    reader.wait(10)
    wait_for(lambda: chan_stat(c)["receivers_waiting"] == 1, what="the child to read")
    host.sh(f"echo inherited > {c}/send")
    assert reader.stdout.read() == b"inherited\n"


# -- giving up at the moment of hand-over, on the channel's own host (the rest of these rows
#    are in tests/cluster/test_edges.py) --------------------------------------------------------

@pytest.mark.parametrize("cap", [0, 5])
def test_a_reader_killed_as_the_message_arrives_takes_nothing(host, names, cap):
    for i in range(5):
        c = _chan(host, names(f"{cap}c{i}"), cap)
        printed, nxt = reader_gives_up(c, c, c)
        assert (printed, nxt) == ("", "sent\n")


def test_a_writer_killed_as_a_reader_arrives_sends_nothing(host, names):
    for i in range(5):
        c = _chan(host, names(f"c{i}"), 0)
        assert writer_gives_up(c, c, c) == "kept\n"


def test_a_writer_killed_while_the_channel_is_full_sends_nothing(host, names):
    for i in range(5):
        c = _chan(host, names(f"c{i}"), 1)
        assert writer_gives_up(c, c, c, prefill=1) == "first0\nkept\n"


def test_a_writer_whose_opener_is_its_parent_is_still_seen_to_give_up(host, names):
    """`timeout 1 /bin/echo x > send`: the shell opens the file for `timeout`, whose child writes
    and blocks in close, and `timeout` signals the child, not itself.  The child is the caller."""
    c = _chan(host, names("c"), 0)
    writer = subprocess.Popen(["bash", "-c", f"exec timeout 1 /bin/echo gave-up > {c}/send"])
    assert writer.wait(15) == 124  # it gave up, and was let go
    assert json.loads((c / "stat").read_text())["senders_waiting"] == 0
    reader = subprocess.Popen(["cat", f"{c}/recv"], stdout=subprocess.PIPE)
    host.sh(f"echo kept > {c}/send")
    assert reader.communicate(timeout=15)[0] == b"kept\n"


def test_a_reader_with_a_killed_child_not_yet_reaped_still_reads(host, names):
    """A zombie keeps the SIGKILL that ended it pending for good.  A reader whose family is
    asked "still there?" must not be taken for leaving because of it: before, every hand-over
    to it was answered EINTR, which Python's read retries, for ever."""
    c = names("chan")
    host.sh(f"mkdir dc/chan/{c} && echo 1 > dc/chan/{c}/cap && echo kept > dc/chan/{c}/send")
    reader = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "100"])
        child.kill()  # and not reaped: a zombie child, its SIGKILL pending
        while "State:\\tZ" not in open(f"/proc/{{child.pid}}/status").read():
            time.sleep(0.01)
        print(open("{host.root}/dc/chan/{c}/recv").read(), end="")
        """)], capture_output=True, text=True, timeout=20)
    assert reader.stdout == "kept\n", reader.stderr
