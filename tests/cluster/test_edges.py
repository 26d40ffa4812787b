"""Exactly once at the edges, across hosts: a caller that gives up at the moment of hand-over
takes nothing and sends nothing, whichever host it is on (the same rows on one host are in
tests/fuse/test_interrupt.py).  Each case runs several times: before the hand-over was asked of
the caller's own host, every one of them lost or leaked a message every time."""
import json
import signal
import subprocess
import sys

import pytest

from conftest import met_cluster
from helpers import chan_stat, make_client, reader_gives_up, wait_for, writer_gives_up
from ssh_clients import keypair

ROUNDS = 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Hosts A (owning the channels) and B, both mounted, with SSH servers taking one key."""
    tmp = tmp_path_factory.mktemp("pair")
    keypair(tmp / "key")
    (tmp / "authorized_keys").write_text((tmp / "key.pub").read_text())
    yield from met_cluster(tmp, 2, "--sftp", "127.0.0.1:0", "--authorized-keys", str(tmp / "authorized_keys"))


def _chan(a, name: str, cap: int):
    a.sh(f"mkdir dc/chan/{name} && echo {cap} > dc/chan/{name}/cap")
    return a.root / "dc" / "chan" / name


def _via(host, owner, chan):
    return host.mount / owner.host_id / "dc" / "chan" / chan.name


@pytest.mark.parametrize("cap", [0, 5])
def test_a_reader_on_another_host_killed_as_the_message_arrives_takes_nothing(pair, cap):
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"r{cap}-{i}", cap)
        printed, nxt = reader_gives_up(c, _via(b, a, c), c)
        assert (printed, nxt) == ("", "sent\n")
        assert chan_stat(c)["received"] == 1


@pytest.mark.parametrize("where", ["owner", "other"])
def test_a_writer_killed_as_a_reader_arrives_sends_nothing(pair, where):
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"w{where}-{i}", 0)
        writer = c if where == "owner" else _via(b, a, c)
        assert writer_gives_up(c, writer, _via(b, a, c)) == "kept\n"


@pytest.mark.parametrize("leased", [False, True], ids=["checked", "leased"])
def test_a_writer_on_another_host_killed_while_the_channel_is_full_sends_nothing(pair, leased):
    # leased: the message that fills the channel went through B too, so B holds a lease and
    # the writer's send is one put, answered EAGAIN, then a wait for room on A.
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"full-{leased}-{i}", 1)
        via = _via(b, a, c)
        assert writer_gives_up(c, via, c, prefill=1, prefill_chan=via if leased else None) \
            == "first0\nkept\n"


def test_a_big_message_from_a_writer_on_another_host_that_gave_up_is_not_sent(pair, tmp_path):
    """8 MiB through B's mount: most writes go behind the writer; it is killed at close."""
    a, b = pair
    big = tmp_path / "big"
    big.write_bytes(b"x" * (8 << 20))
    for i in range(ROUNDS):
        c = _chan(a, f"big-{i}", 0)
        # exec: the signalled process must be the writer (bash forks for a redirected command,
        # and a shell killed while its child writes leaves the child writing, as it should).
        assert writer_gives_up(c, _via(b, a, c), c, source=f"exec cat {big}") == "kept\n"
        assert chan_stat(c)["received"] == 1


def test_a_select_on_one_host_over_a_recv_on_another_loses_nothing_when_aborted(pair):
    a, b = pair
    c = _chan(a, "sel", 1)
    b.sh(f"mkdir dc/select/s && echo '[{{\"op\": \"r\", \"file\": \"/{a.host_id}/dc/chan/sel/recv\"}}]'"
         " > dc/select/s/select")
    a.sh("echo one > dc/chan/sel/send")
    wait_for(lambda: "committed" in b.sh("cat dc/select/s/stat").stdout, what="the select to commit")
    assert chan_stat(c)["len"] == 0  # the select took it
    b.sh("echo abort > dc/select/s/abort")
    assert a.sh("cat dc/chan/sel/recv").stdout == "one\n"


@pytest.mark.parametrize("view", ["cli", "ssh"])
def test_a_reader_killed_while_its_host_is_stopped_takes_nothing(pair, view):
    """The reader's host hears of its death only when it reads the end of the client's
    socket, which may come after the message: B is stopped, the offer reaches it, then the
    client is killed; when B resumes it must ask the socket itself (else the message goes to
    the dead reader, lost)."""
    import signal
    import subprocess
    import sys

    a, b = pair
    chan = _chan(a, f"stopped-{view}", 5)
    element = f"/{a.host_id}/dc/chan/{chan.name}"
    if view == "cli":
        argv = [sys.executable, "-m", "circuit.cli.main", "--data", str(b.data), "recv", element]
    else:
        wait_for(lambda: (b.data / "ssh").exists(), what="B's SSH server")
        port = (b.data / "ssh").read_text().strip().rsplit(":", 1)[1]
        argv = ["ssh", "-p", port, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-i", str(b.data.parent.parent / "key"), "me@127.0.0.1", f"cat {element}/recv"]
    for i in range(3):
        reader = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, 30, what="B's reader to wait")
        b.proc.send_signal(signal.SIGSTOP)
        try:
            a.sh(f"echo m{i} > dc/chan/{chan.name}/send")
            wait_for(lambda: chan_stat(chan)["handing_over"] == 1, what="the offer to B")
            reader.kill()
            reader.wait(10)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: chan_stat(chan)["handing_over"] == 0, what="B to settle the offer")
        assert chan_stat(chan)["len"] == 1, f"m{i} went to a reader that was dead"
        assert a.sh(f"cat dc/chan/{chan.name}/recv").stdout == f"m{i}\n"


def test_a_reader_whose_host_dies_the_moment_the_reader_has_the_message_took_it(pair, tmp_path):
    """The confirm leaves before the reader has the bytes.  A client program that dies right
    after its hand-over (as a host killed at that moment would) has taken the message: it is
    not left in the channel for the next reader too (a duplicate).  Before, the confirm waited
    in the connection's buffer for the reactor's next turn, and died with the process."""
    import subprocess
    import sys
    import textwrap

    a, b = pair
    me = make_client(a.data.parent.parent / "ca", tmp_path / "me")
    for i in range(3):
        chan = _chan(a, f"dies-{i}", 1)
        (chan / "send").write_text(f"m{i}\n")
        program = textwrap.dedent(f"""
            import os, signal
            from circuit.tree import whole
            given = whole.hand_over

            def hand_over(handle, caller):
                given(handle, caller)  # the reader has it: this process dies before anything else
                os.write(1, b"handed")
                os.kill(os.getpid(), signal.SIGKILL)
            whole.hand_over = hand_over
            from circuit.client.blocking import connect
            connect({a.url!r}, data={str(me)!r}).host({a.host_id!r}).chan({chan.name!r}).recv()
            """)
        p = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
        assert (p.returncode, p.stdout) == (-9, b"handed"), p.stderr
        wait_for(lambda: chan_stat(chan)["handing_over"] == 0, what="A to settle the offer")
        assert (chan_stat(chan)["received"], chan_stat(chan)["len"]) == (1, 0), f"m{i} is there to read again"


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """Hosts A and B that wait 30 s before they call a silent host dead: A may be paused."""
    yield from met_cluster(tmp_path_factory.mktemp("patient"), 2, "--suspicion-min", "30",
                           "--suspicion-max", "60")


_WRITER = """
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)  # a signal that asks the write to give up
fd = os.open(sys.argv[1], os.O_WRONLY)
print("open", flush=True)
sys.stdin.readline()
print(os.write(fd, b'{"path": "/bin/echo", "args": ["once"]}\\n'), flush=True)
os.close(fd)
print("closed", flush=True)
"""


def test_a_run_whose_writer_gives_up_on_its_way_is_made_and_said_so(patient):
    """`run` takes effect where it lands: a writer on B interrupted while its write is on
    its way to A hears that it was written, and the process starts once (it used to hear
    EINTR, write again, and fail at close with EBUSY for the process its first write started)."""
    a, b = patient
    a.sh("mkdir dc/proc/p1")
    run = b.mount / a.host_id / "dc" / "proc" / "p1" / "run"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "open\n"  # opened through B (the open goes with the write)
    writes = json.loads(b.sh("cat sys/stat").stdout)["requests"].get("fuse write", 0)
    a.proc.send_signal(signal.SIGSTOP)
    try:
        writer.stdin.write("go\n")
        writer.stdin.flush()
        wait_for(lambda: json.loads(b.sh("cat sys/stat").stdout)["requests"].get("fuse write", 0) > writes,
                 what="the write to reach B")
        writer.send_signal(signal.SIGUSR1)
        assert writer.stdout.readline() == "40\n"  # answered by B, A still paused
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert writer.stdout.readline() == "closed\n"
    assert writer.wait(15) == 0
    p = a.root / "dc" / "proc" / "p1"
    assert json.loads(a.sh("cat dc/proc/p1/waitexit").stdout)["exit"] == 0
    assert (p / "stdout").read_text() == "once\n"
