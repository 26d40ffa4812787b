"""The Python client and ``circuit --url`` against two real hosts, with a client certificate."""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import chan_stat, make_ca, make_client, start_daemon, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Hosts A and B (mounted, for checking state), and a client's credentials."""
    tmp = tmp_path_factory.mktemp("client")
    ca = make_ca(tmp / "ca")
    a = start_daemon(tmp / "a", "--ca", str(ca))
    b = start_daemon(tmp / "b", "--ca", str(ca), "-j", a.url)
    for h in (a, b):
        wait_for(lambda: len(list(h.mount.iterdir())) == 2, what="the two to meet")
    me = make_client(ca, tmp / "me")
    yield a, b, me
    b.stop()
    a.stop()


def script(body: str, *, url: str, data: Path, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """A plain Python script using the blocking client, as a user would write it."""
    code = "from circuit.client.blocking import connect\nfrom circuit import errors\n" + \
        f"c = connect({url!r}, data={str(data)!r})\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, **kw)


# `circuit --url` without Twisted: the host runs the command (the frames of its control
# socket, over TLS); --pb runs it here with the Python client.  The check that Twisted was
# never loaded is what shows which of the two ran.
WITHOUT_TWISTED = ("import sys\nfrom circuit.cli.main import main\ncode = main(sys.argv[1:])\n"
                   "assert 'twisted' not in sys.modules, 'the command line loaded Twisted'\n"
                   "sys.exit(code)\n")


def url_cli(url: str, me: Path, via: str) -> list:
    if via == "tls":
        return [sys.executable, "-c", WITHOUT_TWISTED, "--url", url, "--data", str(me)]
    return [sys.executable, "-m", "circuit.cli.main", "--url", url, "--pb", "--data", str(me)]


def test_the_issues_python_session_across_hosts(cluster):
    a, b, me = cluster
    r = script(f"""
        hosts = c.hosts()
        assert [h.id for h in hosts] == [{a.host_id!r}, {b.host_id!r}], hosts
        host = c.host({b.host_id!r})
        ch = host.mkchan("jobs", cap=10)
        ch.send(b"job-1")
        ch.send(b"")
        print(ch.recv(), ch.recv(), ch.stat()["received"])
        p = host.mkproc("build", path="/bin/sh", args=["-c", "echo built; exit 3"])
        print(p.wait()["exit"], p.stdout())
        try:
            host.chan("nobody").recv()
        except errors.NotFound as e:
            print("refused", e.errno)
        try:
            host.mkchan("jobs")
        except errors.CircuitError as e:
            print("refused", e.errno)
        other = host.mkchan("other", cap=1)
        s = host.mkselect("s", [("r", "chan/jobs/recv"), ("r", "chan/other/recv")])
        other.send(b"picked")
        committed = s.wait()
        print(committed["clause"], s.read(committed["clause"]))
        big = bytes(range(256)) * (64 * 4096)
        ch.send(big)
        print(ch.recv() == big)
        c.close()
    """, url=a.url, data=me)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["b'job-1' b'' 2", "3 b'built\\n'", f"refused {errno.ENOENT}",
                                     f"refused {errno.EEXIST}", "1 b'picked'", "True"]
    assert (b.root / "dc" / "chan" / "jobs").is_dir()  # made on B, seen through B's own mount


def test_a_process_made_and_waited_for_in_one_call(cluster):
    a, b, me = cluster
    r = script(f"""
        host = c.host({b.host_id!r})
        print(host.mkproc_wait("once", path="/bin/sh", args=["-c", "echo ran; exit 4"])["exit"])
        print(host.proc("once").stdout())
        host.mkproc("running", path="/bin/sleep", args=["60"])
        for name, path in (("missing", "/no/such/program"), ("running", "/bin/true")):
            try:
                host.mkproc_wait(name, path=path)
            except errors.CircuitError as e:
                print("refused", e.errno)
        host.proc("running").remove()
        c.close()
    """, url=a.url, data=me)
    assert r.returncode == 0, r.stderr
    # A name taken is refused at once, not waited on: the sleep it names runs for a minute.
    assert r.stdout.splitlines() == ["4", "b'ran\\n'", f"refused {errno.ENOENT}", f"refused {errno.EEXIST}"]
    assert not (b.root / "dc" / "proc" / "missing").exists()  # a refused make leaves nothing


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_client_that_gives_up_waiting_leaves_the_process_it_made(cluster, how):
    a, b, me = cluster
    name = f"made{how.value}"
    proc = b.root / "dc" / "proc" / name
    waiter = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from circuit.client.blocking import connect
        c = connect({a.url!r}, data={str(me)!r})
        print(c.host({b.host_id!r}).mkproc_wait({name!r}, path="/bin/sleep", args=["60"]))
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    stat = lambda: json.loads((proc / "stat").read_text())  # noqa: E731
    wait_for(lambda: proc.is_dir() and stat()["waiting"] == 1, 30, what="the client to wait on B")
    assert stat()["phase"] == "running"
    waiter.send_signal(how)
    out, _ = waiter.communicate(timeout=15)
    assert out == b""
    wait_for(lambda: stat()["waiting"] == 0, what="its wait on B to end")
    assert stat()["phase"] == "running"  # the process it made goes on
    (proc / "signal").write_text("KILL\n")
    assert json.loads((proc / "waitexit").read_text())["signal"] == "KILL"
    proc.rmdir()


@pytest.mark.parametrize("via", ["script", "tls"])
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_client_that_gives_up_takes_nothing(cluster, how, via):
    a, b, me = cluster
    name = f"giveup{how.value}{via}"
    chan = b.root / "dc" / "chan" / name
    b.sh(f"mkdir dc/chan/{name} && echo 0 > dc/chan/{name}/cap")
    if via == "script":
        reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            from circuit.client.blocking import connect
            c = connect({a.url!r}, data={str(me)!r})
            print(c.host({b.host_id!r}).chan({name!r}).recv())
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    else:  # circuit --url: host A runs the recv for a connection that then goes
        reader = subprocess.Popen(url_cli(a.url, me, via) + ["recv", f"/{b.host_id}/dc/chan/{name}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, 30, what="the client to block")
    reader.send_signal(how)
    out, _ = reader.communicate(timeout=15)
    assert out == b""
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 0, what="its wait to go")
    sender = subprocess.Popen(["bash", "-c", f"echo kept > {chan}/send"])
    assert (chan / "recv").read_text() == "kept\n"
    assert sender.wait(15) == 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_command_from_afar_that_gives_up_sends_nothing(cluster, how):
    """`circuit --url send` to a rendezvous channel with nobody reading, given up: the host
    that ran it for the connection sends nothing, then or later."""
    a, b, me = cluster
    name = f"nosend{how.value}"
    chan = b.root / "dc" / "chan" / name
    b.sh(f"mkdir dc/chan/{name} && echo 0 > dc/chan/{name}/cap")
    writer = subprocess.Popen(url_cli(a.url, me, "tls") + ["send", f"/{b.host_id}/dc/chan/{name}"],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    writer.stdin.write(b"given up")
    writer.stdin.close()
    wait_for(lambda: chan_stat(chan)["send_waits"] == 1, 30, what="the send to wait for a reader")
    writer.send_signal(how)
    writer.wait(15)
    wait_for(lambda: chan_stat(chan)["send_waits"] == 0, what="its wait to go")
    sender = subprocess.Popen(["bash", "-c", f"exec /bin/echo later > {chan}/send"])
    assert (chan / "recv").read_text() == "later\n"  # the first message a reader gets
    assert sender.wait(15) == 0
    assert chan_stat(chan)["sent"] == 1 and chan_stat(chan)["send_waits"] == 0


@pytest.mark.parametrize("via", ["tls", "pb"])
def test_the_command_line_with_url_from_a_machine_without_a_host(cluster, tmp_path, via):
    a, b, me = cluster
    cli = url_cli(a.url, me, via)
    name = f"url-{via}"
    assert subprocess.run(cli + ["mkchan", f"/{b.host_id}/dc/chan/{name}", "1"], cwd=ROOT).returncode == 0
    sent = subprocess.run(cli + ["send", f"/{b.host_id}/dc/chan/{name}"], input=b"via url", cwd=ROOT)
    assert sent.returncode == 0
    assert chan_stat(b.root / "dc" / "chan" / name)["len"] == 1
    got = subprocess.run(cli + ["recv", f"/{b.host_id}/dc/chan/{name}"], capture_output=True, cwd=ROOT)
    assert got.stdout == b"via url", got.stderr
    listed = subprocess.run(cli + ["ls", "/"], capture_output=True, text=True, cwd=ROOT)
    assert listed.stdout.split() == [a.host_id, b.host_id]
    refused = subprocess.run(cli + ["recv", f"/{b.host_id}/dc/chan/none"], capture_output=True, text=True,
                             cwd=ROOT)
    assert refused.returncode == 1 and "(ENOENT)" in refused.stderr
    # With $CIRCUIT_URL, and a data directory with no credentials: one clear line.
    env = dict(os.environ, CIRCUIT_URL=a.url)
    none = subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", str(tmp_path), "ls", "/"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    assert none.returncode == 1 and "no client credentials" in none.stderr


@pytest.mark.parametrize("how", ["tls", "pb", "script"])
def test_a_message_received_just_before_exit_is_not_given_again(cluster, how):
    """The confirm of the last message received must leave before the process exits: the
    reactor thread dies with the interpreter, and an owner that never hears the confirm gives
    the message to the next reader too (found by the checked history, 4 in 60 s)."""
    a, b, me = cluster
    name = f"exit-{how}"
    chan = b.root / "dc" / "chan" / name
    b.sh(f"mkdir dc/chan/{name} && echo 100 > dc/chan/{name}/cap")
    script = textwrap.dedent(f"""
        from circuit.client.blocking import connect
        c = connect({a.url!r}, data={str(me)!r})
        print(c.host({b.host_id!r}).chan({name!r}).recv().decode(), end="")
    """)  # no close(): the interpreter's exit closes it
    for i in range(10):
        b.sh(f"echo m{i} > dc/chan/{name}/send")
        if how != "script":
            got = subprocess.run(url_cli(a.url, me, how) + ["recv", f"/{b.host_id}/dc/chan/{name}"],
                                 capture_output=True, text=True, cwd=ROOT)
        else:
            got = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
        assert got.stdout == f"m{i}\n", got.stderr
        wait_for(lambda: chan_stat(chan)["handing_over"] == 0, what="the hand-over to settle")
        assert chan_stat(chan)["len"] == 0, f"m{i} was given back after it was received"


AHEAD_READER = """
import json, random, sys
from twisted.internet import defer, task
from circuit.client import connect
url, data, host, name, n, k, seed = sys.argv[1:8]
n, k, rnd = int(n), int(k), random.Random(int(seed))
async def main(reactor):
    c = await connect(url, data=data, reactor=reactor)
    ch = c.host(host).chan(name)
    for i in range(n):
        await ch.send(b"%d" % i)
    got, cancelled, flying = [], 0, set()
    done = defer.Deferred()
    def receive():
        d = ch.recv()
        flying.add(d)
        def took(m):
            flying.discard(d)
            got.append(int(m))
            if len(got) == n:
                done.callback(None)
            elif len(got) + len(flying) < n + k:
                receive()
        def left(f):
            f.trap(defer.CancelledError)
            flying.discard(d)
            receive()
        d.addCallbacks(took, left)
        if rnd.random() < 0.3:  # this reader gives up: at once, or a little later
            reactor.callLater(rnd.choice([0, 0, 0.0002, 0.0005, 0.001, 0.003]), d.cancel)
    for _ in range(k):
        receive()
    await done
    for d in list(flying):
        d.cancel()
    print(json.dumps({"got": got, "stat": await ch.stat()}))
    await c.close()
task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""


def test_many_receives_in_flight_some_given_up_take_each_message_once_in_order(cluster):
    """A client's receives from another host are answered several at once (offers sent
    ahead, `circuit.core.channel`); readers that give up at any moment give theirs back,
    and every later one sent beside it comes back too, so nothing is lost, doubled or
    reordered (the order the receives are answered in is the order sent)."""
    a, b, me = cluster
    name = "ahead"
    b.sh(f"mkdir dc/chan/{name} && echo 1000 > dc/chan/{name}/cap")
    for seed in range(3):
        r = subprocess.run([sys.executable, "-c", AHEAD_READER, a.url, str(me), b.host_id, name,
                            "400", "16", str(seed)], capture_output=True, text=True, cwd=ROOT,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["got"] == list(range(400)), "every message once, in the order sent"
        assert out["stat"]["len"] == 0 and out["stat"]["handing_over"] == 0


def test_a_dead_host_is_ehostdown_not_a_hang(tmp_path):
    ca = make_ca(tmp_path / "ca")
    a = start_daemon(tmp_path / "a", "--ca", str(ca))
    b = start_daemon(tmp_path / "b", "--ca", str(ca), "-j", a.url)
    try:
        wait_for(lambda: len(list(a.mount.iterdir())) == 2, what="the two to meet")
        b.sh("mkdir dc/chan/w && echo 0 > dc/chan/w/cap")
        make_client(ca, tmp_path / "me")
        waiters = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            from circuit.client.blocking import connect
            from circuit import errors
            c = connect({a.url!r}, data={str(tmp_path / "me")!r})
            try:
                c.host({b.host_id!r}).{call}
            except errors.CircuitError as e:
                print(type(e).__name__, e.errno)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            for call in ('chan("w").recv()', 'mkproc_wait("long", path="/bin/sleep", args=["60"])')]
        chan, proc = b.root / "dc" / "chan" / "w", b.root / "dc" / "proc" / "long"
        wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, 30, what="the client to block")
        wait_for(lambda: proc.is_dir() and json.loads((proc / "stat").read_text())["waiting"] == 1, 30,
                 what="the client to wait for its process")
        b.stop(signal.SIGKILL)
        for waiter in waiters:
            out, err = waiter.communicate(timeout=30)
            assert out.strip() == f"HostDown {errno.EHOSTDOWN}", err
    finally:
        a.stop()
