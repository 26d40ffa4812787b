"""Every element of another host, through the local mount, with the same semantics."""
import errno
import json
import os
import subprocess

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import members
from helpers import chan_stat, wait_for


def test_every_host_sees_every_host(trio):
    ids = sorted(h.host_id for h in trio)
    for h in trio:
        assert members(h) == ids
        urls = h.sh("cat sys/members").stdout.splitlines()
        assert urls[0] == h.url and sorted(urls) == sorted(x.url for x in trio)


def test_channel_made_remotely_send_here_receive_there(trio):
    a, b, _ = trio
    remote = b.mount / a.host_id / "dc" / "chan" / "c-remote"
    b.sh(f"mkdir {remote} && echo 0 > {remote}/cap")
    assert (a.root / "dc" / "chan" / "c-remote").is_dir()  # it lives on A
    sender = subprocess.Popen(["bash", "-c", f"echo over > {remote}/send"])
    # A writer on another host waits on its own host, for the owner's word that a send could go.
    wait_for(lambda: chan_stat(a.root / "dc/chan/c-remote")["send_waits"] == 1, what="the sender to wait")
    assert sender.poll() is None  # cap 0 across hosts: waits for the receiver
    assert a.sh("cat dc/chan/c-remote/recv").stdout == "over\n"
    assert sender.wait(10) == 0
    # A counts what it served B (sys/stat): the mkdir, the writes and flushes of cap and send.
    served = json.loads(a.sh("cat sys/stat").stdout)["requests"]
    assert served["pb mkdir"] >= 1 and served["pb flush"] >= 1, served


def test_receive_remotely_and_errors_cross(trio):
    a, b, c = trio
    a.sh("mkdir dc/chan/c2 && echo 3 > dc/chan/c2/cap && echo one > dc/chan/c2/send")
    path = c.mount / a.host_id / "dc" / "chan" / "c2"
    assert c.sh(f"cat {path}/recv").stdout == "one\n"
    r = c.sh(f"echo 9 > {path}/cap", check=False)
    assert r.returncode == 1 and "Device or resource busy" in r.stderr
    assert (path / "error").read_text() == "cap is already set to 3 (EBUSY)\n"
    r = c.sh(f"cat {path}/tryrecv", check=False)
    assert "Resource temporarily unavailable" in r.stderr
    assert "No such file" in c.sh(f"cat {c.mount / a.host_id}/dc/chan/nope/recv", check=False).stderr


def test_order_and_exactly_once_across_three_hosts(trio, tmp_path):
    a, b, c = trio
    a.sh("mkdir dc/chan/many && echo 2 > dc/chan/many/cap")
    out = tmp_path / "out"
    out.mkdir()
    senders = []
    for host, tag in ((b, "b"), (c, "c")):
        ch = host.mount / a.host_id / "dc" / "chan" / "many"
        senders.append(subprocess.Popen(
            ["bash", "-c", f"for i in $(seq 1 40); do echo {tag}$i > {ch}/send; done"]))
    readers = []
    for host, tag in ((a, "a"), (b, "b"), (c, "c")):
        ch = host.mount / a.host_id / "dc" / "chan" / "many"
        readers.append(subprocess.Popen(
            ["bash", "-c", f"for i in $(seq 1 40); do cat {ch}/recv >> {out}/{tag} || exit 1; done"]))
    for p in senders:
        assert p.wait(60) == 0
    a.sh("sleep 0.5; echo close > dc/chan/many/close")
    for p in readers:
        p.wait(60)
    got = [line for f in out.iterdir() for line in f.read_text().split()]
    assert sorted(got) == sorted([f"b{i}" for i in range(1, 41)] + [f"c{i}" for i in range(1, 41)])
    # each reader saw each sender's messages in the order they were sent
    for f in out.iterdir():
        seq = f.read_text().split()
        for tag in "bc":
            mine = [int(x[1:]) for x in seq if x[0] == tag]
            assert mine == sorted(mine)


def test_64_mib_message_across_hosts(trio):
    a, b, _ = trio
    a.sh("mkdir dc/chan/big && echo 1 > dc/chan/big/cap")
    payload = os.urandom(1 << 20) * 64
    with open(b.mount / a.host_id / "dc/chan/big/send", "wb") as f:
        f.write(payload)
    with open(b.mount / a.host_id / "dc/chan/big/recv", "rb") as f:
        assert f.read() == payload


def test_ctrl_c_on_a_remote_recv_takes_nothing(trio):
    a, b, _ = trio
    a.sh("mkdir dc/chan/cc && echo 1 > dc/chan/cc/cap")
    ch = b.mount / a.host_id / "dc/chan/cc"
    r = b.sh(f"timeout 0.4 cat {ch}/recv", check=False)
    assert r.returncode == 124
    a.sh("echo kept > dc/chan/cc/send")
    assert b.sh(f"cat {ch}/recv").stdout == "kept\n"
    assert json.loads((a.root / "dc/chan/cc/stat").read_text())["receivers_waiting"] == 0


def test_remote_process_with_large_output(trio):
    a, b, _ = trio
    p = b.mount / a.host_id / "dc/proc/big"
    b.sh(f"mkdir {p}")
    (p / "run").write_text(json.dumps({"path": "/usr/bin/head", "args": ["-c", "200000000", "/dev/zero"]}))
    assert json.loads(b.sh(f"cat {p}/waitexit", timeout=120).stdout)["exit"] == 0
    assert b.sh(f"wc -c < {p}/stdout", timeout=120).stdout.strip() == "200000000"


def test_remote_process_stdin_and_signal(trio):
    a, _, c = trio
    p = c.mount / a.host_id / "dc/proc/cat"
    c.sh(f"""mkdir {p} && echo '{{"path": "/bin/cat"}}' > {p}/run
echo through > {p}/stdin""")
    assert json.loads(c.sh(f"cat {p}/waitexit").stdout)["exit"] == 0
    assert c.sh(f"cat {p}/stdout").stdout == "through\n"
    q = c.mount / a.host_id / "dc/proc/sleeper"
    c.sh(f"""mkdir {q} && echo '{{"path": "/bin/sleep", "args": ["30"]}}' > {q}/run
echo TERM > {q}/signal""")
    assert json.loads(c.sh(f"cat {q}/waitexit").stdout)["signal"] == "TERM"


def test_select_across_hosts(trio):
    a, b, c = trio
    a.sh("mkdir dc/chan/sa && echo 1 > dc/chan/sa/cap")
    c.sh("mkdir dc/chan/sc && echo 0 > dc/chan/sc/cap")
    b.sh(f"""mkdir dc/select/s && cat > dc/select/s/select << EOF
[{{"op": "r", "file": "/{a.host_id}/dc/chan/sa/recv"}},
 {{"op": "r", "file": "{b.mount}/{c.host_id}/dc/chan/sc/recv"}}]
EOF""")
    subprocess.Popen(["bash", "-c", f"echo from-c > {c.root}/dc/chan/sc/send"])
    assert json.loads(b.sh("cat dc/select/s/wait").stdout) == {"clause": 1, "file": "read.1"}
    assert b.sh("cat dc/select/s/read.1").stdout == "from-c\n"
    a.sh("echo stays > dc/chan/sa/send")
    assert a.sh("cat dc/chan/sa/recv").stdout == "stays\n"  # only one clause committed


def test_abort_of_a_remote_select_gives_the_message_back(trio):
    a, b, _ = trio
    a.sh("mkdir dc/chan/ab && echo 2 > dc/chan/ab/cap && echo first > dc/chan/ab/send")
    b.sh(f"""mkdir dc/select/ab
echo '[{{"op": "r", "file": "/{a.host_id}/dc/chan/ab/recv"}}]' > dc/select/ab/select
cat dc/select/ab/wait > /dev/null
echo abort > dc/select/ab/abort""")
    assert a.sh("cat dc/chan/ab/recv").stdout == "first\n"


def test_select_refuses_remote_files_it_cannot_wait_on(trio):
    a, b, _ = trio
    a.sh("mkdir dc/chan/rs && echo 1 > dc/chan/rs/cap")
    r = b.sh(f"mkdir dc/select/bad && echo '[{{\"op\": \"r\", \"file\": \"/{a.host_id}/dc/chan/rs/stat\"}}]'"
             " > dc/select/bad/select", check=False)
    assert r.returncode == 1 and "Invalid argument" in r.stderr


def test_a_rename_cannot_cross_hosts(trio):
    import errno
    a, b, _ = trio
    (a.root / "fs" / "moving").write_text("here\n")
    src, dst = b.mount / a.host_id / "fs" / "moving", b.mount / b.host_id / "fs" / "moving"
    try:
        os.rename(src, dst)
        raise AssertionError("a rename crossed hosts")
    except OSError as e:
        assert e.errno == errno.EXDEV  # mv then copies and removes, as across file systems
    assert (a.root / "fs" / "moving").read_text() == "here\n"
    os.rename(src, b.mount / a.host_id / "fs" / "moved")  # within one host it works
    assert (a.root / "fs" / "moved").read_text() == "here\n"


def _served(host) -> dict:
    return json.loads(host.sh("cat sys/stat").stdout)["requests"]


def _more(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after
            if k.startswith("pb ") and after[k] != before.get(k, 0)}


def test_a_send_that_passed_the_check_lets_the_next_go_in_one_trip_until_the_channel_ends(trio):
    a, b, _ = trio
    a.sh("mkdir dc/chan/leased && echo 10 > dc/chan/leased/cap")
    ch = b.mount / a.host_id / "dc" / "chan" / "leased"
    first = _served(a)
    b.sh(f"echo one > {ch}/send")  # its first write waits for A's check: a lease
    second = _served(a)
    b.sh(f"echo two > {ch}/send")  # under the lease: open, write and deliver in one message
    third = _served(a)
    assert _more(second, first).get("pb opened") == 1, _more(second, first)
    assert _more(third, second) == {"pb put": 1}, _more(third, second)
    # A descriptor written, flushed (a duplicate closed), written again: two messages, the
    # second in a new file on A after the put closed the first.
    fd = os.open(ch / "send", os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"two-a\n")
    os.close(os.dup(fd))
    os.write(fd, b"two-b\n")
    os.close(fd)
    # Closed from B: A says the lease ended before it answers the close, so bash's builtin
    # echo, which ignores close(2), sees the refusal at its write again.
    b.sh(f"echo > {ch}/close")
    r = b.sh(f"echo three > {ch}/send", check=False)
    assert r.returncode == 1 and "Broken pipe" in r.stderr, r
    assert "closed" in (ch / "error").read_text()
    assert a.sh("cat dc/chan/leased/recv").stdout == "one\n"
    assert a.sh("cat dc/chan/leased/recv").stdout == "two\n"
    assert a.sh("cat dc/chan/leased/recv").stdout == "two-a\n"
    assert a.sh("cat dc/chan/leased/recv").stdout == "two-b\n"
    # Removed and made again: a new channel, checked again, leased again.
    b.sh(f"rmdir {ch} && mkdir {ch} && echo 1 > {ch}/cap")
    before = _served(a)
    b.sh(f"echo four > {ch}/send")
    assert _more(_served(a), before).get("pb opened") == 1
    assert a.sh("cat dc/chan/leased/recv").stdout == "four\n"


def test_a_channel_and_a_process_made_from_afar_take_effect_at_the_write(trio):
    # `cap` and `run` written whole take effect at write(2) on the owner, whose answer
    # says so: the close asks nothing more (no `flush`), one round trip less each.
    a, b, _ = trio
    there = b.mount / a.host_id / "dc"
    before = _served(a)
    b.sh(f"mkdir {there}/chan/made && echo 4 > {there}/chan/made/cap")
    cost = _more(_served(a), before)
    assert "pb flush" not in cost and cost.get("pb opened") == 1, cost
    assert a.sh("cat dc/chan/made/cap").stdout == "4\n"
    before = _served(a)
    b.sh(f"mkdir {there}/proc/made && echo '{{\"path\": \"/bin/true\"}}' > {there}/proc/made/run")
    cost = _more(_served(a), before)
    assert "pb flush" not in cost and cost.get("pb opened") == 1, cost
    assert json.loads(b.sh(f"cat {there}/proc/made/waitexit").stdout)["exit"] == 0
    # Refused at the write, from afar as here: bash's builtin echo sees it.
    r = b.sh(f"echo 5 > {there}/chan/made/cap", check=False)
    assert r.returncode == 1 and "Device or resource busy" in r.stderr, r
    assert a.sh("cat dc/chan/made/cap").stdout == "4\n"


def test_a_rendezvous_is_not_leased(trio):
    # A put would mostly find no reader yet and wait a round trip more (EAGAIN, then
    # flush_ready) than a send whose first write is checked while the reader comes.
    a, b, _ = trio
    a.sh("mkdir dc/chan/meet && echo 0 > dc/chan/meet/cap")
    ch = b.mount / a.host_id / "dc" / "chan" / "meet"
    for word in ("one", "two"):
        reader = subprocess.Popen(["cat", str(a.root / "dc/chan/meet/recv")], stdout=subprocess.PIPE)
        wait_for(lambda: chan_stat(a.root / "dc/chan/meet")["receivers_waiting"] == 1, what="the reader")
        before = _served(a)
        b.sh(f"echo {word} > {ch}/send")
        assert "pb put" not in _more(_served(a), before)
        assert reader.communicate(timeout=10)[0] == f"{word}\n".encode()


_examples = iter(range(1_000_000))
_op = st.tuples(st.sampled_from(["send", "send", "recv", "close", "remake"]), st.sampled_from("ab"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, max_size=14), cap=st.integers(1, 3))
@example(ops=[("send", "b"), ("send", "b"), ("close", "b"), ("send", "b")], cap=3)  # leased, then closed
@example(ops=[("send", "b"), ("remake", "b"), ("send", "b"), ("send", "b"), ("recv", "b"),
              ("close", "a"), ("send", "b"), ("recv", "a")], cap=2)  # a new channel of the same name
def test_sends_with_and_without_leases_each_accepted_once_in_order(trio, ops, cap):
    """Sends from B (leased after the first) and from A, closes, receives and a channel removed
    and made again, in any order: every send accepted is received once, in order; a send after
    a close is refused, at write(2) when the close came through the sender's own host."""
    a, b, _ = trio
    name = f"prop{next(_examples)}"
    paths = {"a": a.root / "dc" / "chan" / name, "b": b.mount / a.host_id / "dc" / "chan" / name}

    def make(host):
        paths[host].mkdir()
        (paths[host] / "cap").write_text(f"{cap}\n")
    make("a")
    queue, closed_by, words = [], None, iter(range(100))
    for op, host in ops:
        ch = paths[host]
        if op == "send":
            if closed_by is None and len(queue) == cap:
                continue  # it would wait for a receive
            word = f"m{next(words)}\n".encode()
            fd = os.open(ch / "send", os.O_WRONLY | os.O_TRUNC)
            wrote = closed = None
            try:
                os.write(fd, word)
                wrote = True
            except OSError as e:
                wrote = e.errno
            try:
                os.close(fd)
                closed = True
            except OSError as e:
                closed = e.errno
            if closed_by is None:
                assert (wrote, closed) == (True, True)
                queue.append(word)
            elif closed_by == host or host == "a":
                assert wrote == errno.EPIPE, (wrote, closed)
            else:  # closed on A, sent from B: B hears of it one one-way trip later
                assert errno.EPIPE in (wrote, closed), (wrote, closed)
        elif op == "recv" and queue:
            assert (ch / "recv").read_bytes() == queue.pop(0)
        elif op == "close" and closed_by is None:
            (ch / "close").write_text("\n")
            closed_by = host
        elif op == "remake":
            os.rmdir(ch)
            make(host)
            queue, closed_by = [], None
    while queue:
        assert (paths["a"] / "recv").read_bytes() == queue.pop(0)
    assert chan_stat(paths["a"])["len"] == 0
    os.rmdir(paths["a"])
