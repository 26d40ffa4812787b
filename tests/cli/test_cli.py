"""The ``circuit`` command line against a real host, and one table of refusals through every
way in: the mount (the shell's own tools), the command line (through the local host, and through
the Python client over PB with --url), and ssh HOST COMMAND."""
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import chan_stat, feed_until_held, make_client, rss_mb, wait_for  # noqa: E402
from ssh_clients import ssh_daemon  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    c = ssh_daemon(tmp_path_factory.mktemp("cli"))
    yield c
    c.daemon.stop()


def afar(host) -> Path:
    """A client certificate of the host's CA: with it, ``circuit --url`` has the host run the
    command (over TLS); with the host's own data directory it falls back to the Python client."""
    me = host.daemon.data.parent / "afar"
    if not me.exists():
        make_client(host.daemon.data / "ca", me)
    return me


def circuit(host, *args, input=None, timeout=30, data=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", str(data or host.daemon.data),
                           *args], input=input, capture_output=True, timeout=timeout, cwd=ROOT, **kw)


def popen(host, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "circuit.cli.main", "--data", str(host.daemon.data), *args],
                            cwd=ROOT, **kw)


def test_the_issues_session(host):
    h = host.host_id
    assert circuit(host, "ls", "/").stdout.split() == [h.encode()]
    assert circuit(host, "mkchan", f"/{h}/dc/chan/jobs", "10").returncode == 0
    script = (f"seq 3 | while read n; do echo job-$n | {sys.executable} -m circuit.cli.main "
              f"--data {host.daemon.data} send /{h}/dc/chan/jobs; done")
    subprocess.run(["bash", "-c", script], check=True, cwd=ROOT, timeout=60)
    assert json.loads(circuit(host, "peek", f"/{h}/dc/chan/jobs").stdout)["len"] == 3
    assert circuit(host, "recv", f"/{h}/dc/chan/jobs").stdout == b"job-1\n"
    made = circuit(host, "mkproc", f"/{h}/dc/proc/build", "--", "/bin/sh", "-c", "echo built; exit 3")
    assert made.returncode == 0, made.stderr
    assert json.loads(circuit(host, "wait", f"/{h}/dc/proc/build").stdout)["exit"] == 3
    assert circuit(host, "stdout", f"/{h}/dc/proc/build").stdout == b"built\n"
    waited = circuit(host, "mkproc", "-w", f"/{h}/dc/proc/once", "--", "/bin/sh", "-c", "echo once; exit 5")
    assert waited.returncode == 0 and json.loads(waited.stdout)["exit"] == 5, waited.stderr
    assert circuit(host, "stdout", f"/{h}/dc/proc/once").stdout == b"once\n"
    listing = circuit(host, "ls", "-l", f"/{h}/dc/proc", f"/{h}/dc/chan").stdout.decode()
    assert "build  [proc: exited, exit 3]" in listing and "jobs  [chan: cap 10, 2 buffered]" in listing
    run = json.dumps({"path": "/bin/cat"}).encode()
    assert circuit(host, "mkproc", f"/{h}/dc/proc/cat", input=run).returncode == 0
    assert circuit(host, "stdin", f"/{h}/dc/proc/cat", input=b"through stdin\n").returncode == 0
    assert circuit(host, "stdout", f"/{h}/dc/proc/cat").stdout == b"through stdin\n"
    assert circuit(host, "rm", f"/{h}/dc/proc/cat", f"/{h}/dc/proc/build", f"/{h}/dc/proc/once").returncode == 0
    assert circuit(host, "ls", f"/{h}/dc/proc").stdout == b""


def test_recv_in_a_read_loop_leaves_the_loops_input_alone(host):
    h = host.host_id
    circuit(host, "mkchan", f"/{h}/dc/chan/loop", "5")
    for m in ("m1", "m2"):
        circuit(host, "send", f"/{h}/dc/chan/loop", input=m.encode())
    script = (f"printf 'a\\nb\\n' | while read x; do {sys.executable} -m circuit.cli.main "
              f"--data {host.daemon.data} recv /{h}/dc/chan/loop; echo \" $x\"; done")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert out == "m1 a\nm2 b\n"


@pytest.mark.parametrize("afar_", [False, True], ids=["local", "url"])
def test_a_64_mib_message_binary_safe(host, afar_):
    """Through the local socket, and over TLS from afar (records of 16 KiB, read whole)."""
    h = host.host_id
    extra, data = (("--url", host.daemon.url), afar(host)) if afar_ else ((), None)
    name = f"big{int(afar_)}"
    circuit(host, "mkchan", f"/{h}/dc/chan/{name}", "1")
    message = os.urandom(64 * 1024 * 1024)
    sent = circuit(host, *extra, "send", f"/{h}/dc/chan/{name}", input=message, timeout=120, data=data)
    assert sent.returncode == 0, sent.stderr
    got = circuit(host, *extra, "recv", f"/{h}/dc/chan/{name}", timeout=120, data=data)
    assert got.returncode == 0 and got.stdout == message


def test_stdout_streams_while_the_process_runs(host):
    h = host.host_id
    circuit(host, "mkproc", f"/{h}/dc/proc/slow", "--", "/bin/sh", "-c", "echo first; exec sleep 30")
    reader = popen(host, "stdout", f"/{h}/dc/proc/slow", stdout=subprocess.PIPE)
    assert reader.stdout.readline() == b"first\n"  # while the process still runs
    assert json.loads(circuit(host, "peek", f"/{h}/dc/proc/slow").stdout)["phase"] == "running"
    circuit(host, "signal", "KILL", f"/{h}/dc/proc/slow")
    assert reader.wait(15) == 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_reader_that_gives_up_takes_nothing(host, how):
    h, c = host.host_id, f"giveup{how.value}"
    chan = host.daemon.root / "dc" / "chan" / c
    circuit(host, "mkchan", f"/{h}/dc/chan/{c}", "0")
    reader = popen(host, "recv", f"/{h}/dc/chan/{c}", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   stdin=subprocess.DEVNULL)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, what="the reader to block")
    reader.send_signal(how)
    out, _ = reader.communicate(timeout=15)
    assert out == b"" and reader.returncode == (130 if how == signal.SIGINT else -9)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 0, what="its wait to go")
    sender = subprocess.Popen(["bash", "-c", f"echo kept > {chan}/send"])
    assert circuit(host, "recv", f"/{h}/dc/chan/{c}").stdout == b"kept\n"
    assert sender.wait(15) == 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_make_and_wait_given_up_leaves_the_process_running(host, how):
    h, p = host.host_id, f"mw{how.value}"
    proc = host.daemon.root / "dc" / "proc" / p
    stat = lambda: json.loads((proc / "stat").read_text())  # noqa: E731
    waiter = popen(host, "mkproc", "-w", f"/{h}/dc/proc/{p}", "--", "/bin/sleep", "60",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wait_for(lambda: proc.is_dir() and stat()["waiting"] == 1, what="the command to wait")
    waiter.send_signal(how)
    out, _ = waiter.communicate(timeout=15)
    assert out == b"" and waiter.returncode == (130 if how == signal.SIGINT else -9)
    wait_for(lambda: stat()["waiting"] == 0, what="its wait to go")
    assert stat()["phase"] == "running"
    assert circuit(host, "rm", f"/{h}/dc/proc/{p}").returncode == 0


def test_timeout_gives_up_and_takes_nothing(host):
    h = host.host_id
    circuit(host, "mkchan", f"/{h}/dc/chan/late", "1")
    r = circuit(host, "recv", "--timeout", "0.3", f"/{h}/dc/chan/late")
    assert r.returncode == 1 and b"(ETIMEDOUT)" in r.stderr
    assert chan_stat(host.daemon.root / "dc" / "chan" / "late")["receivers_waiting"] == 0


def test_exit_statuses_help_and_usage(host, tmp_path):
    assert circuit(host, "recv", "--help").stdout.startswith(b"usage: circuit recv PATH")
    assert circuit(host, "help").returncode == 0
    assert circuit(host, "frobnicate").returncode == 2
    assert circuit(host, "mkchan").returncode == 2
    assert circuit(host, "recv", "/a", "/b").returncode == 2
    none = circuit(host, "ls", "/", data=tmp_path / "no-host")
    assert none.returncode == 1 and b"no circuit host is running" in none.stderr


def test_no_twisted_in_a_commands_process(host):
    """A command costs about a Python start: the command line loads no Twisted."""
    code = ("import sys; sys.argv = ['circuit', '--data', %r, 'ls', '/']; from circuit.cli.main import main; "
            "main(); print(sorted(m for m in sys.modules if m.startswith('twisted')))" % str(host.daemon.data))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_long_data_path_puts_the_socket_in_a_private_directory(tmp_path):
    from helpers import start_daemon
    data = tmp_path / ("d" * 90)
    daemon = start_daemon(data, mount=False)
    try:
        r = subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", str(data / "data"), "ls", "/"],
                           capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert r.stdout.split() == [daemon.host_id]
        private = Path(f"/tmp/circuit-{os.getuid()}")
        assert private.is_dir() and private.stat().st_mode & 0o777 == 0o700
    finally:
        daemon.stop()


# -- one table of refusals, through every way in ---------------------------------------------
# (setup as shell lines in the host's directory, the operation as (circuit argv, ssh command,
# mount shell line, Python client call on `host`), the errno)
CASES = [
    ("mkdir dc/chan/c1 && echo 1 > dc/chan/c1/cap",  # the command line has no verb that sets cap again
     (None, "echo 2 > {h}/dc/chan/c1/cap", "echo 2 > dc/chan/c1/cap", None),
     errno.EBUSY),
    ("mkdir dc/chan/c0",
     (["mkchan", "{h}/dc/chan/c0", "2"], "mkdir {h}/dc/chan/c0", "mkdir dc/chan/c0", 'host.mkchan("c0", 2)'),
     errno.EEXIST),
    ("mkdir dc/chan/c2",
     (["mkchan", "{h}/dc/chan/c2b", "x"], "echo x > {h}/dc/chan/c2/cap", "echo x > dc/chan/c2/cap",
      'host.mkchan("c2c", "x")'),
     errno.EINVAL),
    ("mkdir dc/chan/c3 && echo 1 > dc/chan/c3/cap && echo > dc/chan/c3/close",
     (["send", "{h}/dc/chan/c3"], "echo m > {h}/dc/chan/c3/send", "echo m > dc/chan/c3/send",
      'host.chan("c3").send(b"m")'),
     errno.EPIPE),
    ("mkdir dc/proc/p4",
     (["signal", "TERM", "{h}/dc/proc/p4"], "echo TERM > {h}/dc/proc/p4/signal", "echo TERM > dc/proc/p4/signal",
      'host.proc("p4").signal("TERM")'),
     errno.ESRCH),
    ("mkdir dc/proc/p5",
     (["mkproc", "{h}/dc/proc/p5b", "--", "/no/such/program"],
      "echo '{{\"path\": \"/no/such/program\"}}' > {h}/dc/proc/p5/run",
      "echo '{\"path\": \"/no/such/program\"}' > dc/proc/p5/run",
      'host.mkproc("p5c", path="/no/such/program")'),
     errno.ENOENT),
    ("true",  # made and waited for in one: refused, nothing is left to wait for (nor to make again)
     (["mkproc", "-w", "{h}/dc/proc/p5w", "--", "/no/such/program"],
      "mkproc -w {h}/dc/proc/p5x -- /no/such/program",
      "mkdir dc/proc/p5y && echo '{\"path\": \"/no/such/program\"}' > dc/proc/p5y/run",
      'host.mkproc_wait("p5z", path="/no/such/program")'),
     errno.ENOENT),
    ("mkdir dc/proc/p6",
     (None, "echo '{{\"path\": 5}}' > {h}/dc/proc/p6/run", "echo '{\"path\": 5}' > dc/proc/p6/run",
      'host.mkproc("p6c", path=5)'),
     errno.EINVAL),
    ("true",
     (["recv", "{h}/dc/chan/nobody"], "cat {h}/dc/chan/nobody/recv", "cat dc/chan/nobody/recv",
      'host.chan("nobody").recv()'),
     errno.ENOENT),
    ("true",
     (["mkchan", "{h}/dc/chan/.bad"], "mkdir {h}/dc/chan/.bad", "mkdir dc/chan/.bad", 'host.mkchan(".bad")'),
     errno.EINVAL),
]


# The host's own commands (waitall, stop, join): the mount's form of each is a file (a select
# over waitexit files, a host's sys/stop, sys/join).
HOST_CASES = [
    ("true",
     (["waitall", "{h}/dc/proc/nobody"], "waitall {h}/dc/proc/nobody", "cat dc/proc/nobody/waitexit",
      'c.waitall(["/" + host.id + "/dc/proc/nobody"])'),
     errno.ENOENT),
    ("mkdir dc/chan/w1",
     (["waitall", "{h}/dc/chan/w1"], "waitall {h}/dc/chan/w1",
      """mkdir dc/select/w1s; echo '[{"op": "r", "file": "chan/w1/waitexit"}]' > dc/select/w1s/select;"""
      """ r=$?; rmdir dc/select/w1s; exit $r""",
      'c.waitall(["/" + host.id + "/dc/chan/w1"])'),
     errno.EINVAL),
    ("true",
     (["stop", "/X0123456789abcdef"], "stop /X0123456789abcdef", "echo stop > ../X0123456789abcdef/sys/stop",
      None),
     errno.ENOENT),
    ("true",  # (through the client a put into sys/stop is EPERM: tests/cluster/test_hostctl.py)
     (None, "echo go > {h}/sys/stop", "echo go > sys/stop", None),
     errno.EINVAL),
    ("true",
     (["join", "circuit://nowhere"], "join circuit://nowhere", "echo circuit://nowhere > sys/join", None),
     errno.EINVAL),
    ("true",
     (None, "cat {h}/sys/stop", "cat sys/stop", None),
     errno.EACCES),
]


def _through_the_python_client(host, call: str) -> subprocess.CompletedProcess:
    code = (f"from circuit import errors\nfrom circuit.client.blocking import connect\n"
            f"c = connect({host.daemon.url!r}, data={str(host.daemon.data)!r})\n"
            f"host = c.host({host.host_id!r})\n"
            f"try:\n    {call}\nexcept errors.CircuitError as e:\n    print(e.errno, e.message)\n"
            f"else:\n    print('accepted')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("setup, ways, code", CASES + HOST_CASES)
def test_one_table_of_refusals_through_every_way_in(host, setup, ways, code):
    h = "/" + host.host_id
    host.daemon.sh(setup)
    argv, ssh_line, shell_line, api_call = ways
    name = errno.errorcode[code]
    if argv is not None:
        words = [a.format(h=h) for a in argv]
        via_cli = circuit(host, *words)
        assert via_cli.returncode == 1 and f"({name})".encode() in via_cli.stderr, via_cli.stderr
        # The same from "another machine" (circuit --url): the host runs it, over TLS; and the
        # Python client over PB runs it (--pb).
        for extra in (("--url", host.daemon.url), ("--url", host.daemon.url, "--pb")):
            via_url = circuit(host, *extra, *words, data=afar(host))
            assert via_url.returncode == 1 and f"({name})".encode() in via_url.stderr, (extra, via_url.stderr)
    if api_call is not None:  # the client's own API: one whole-file operation each
        via_api = _through_the_python_client(host, api_call)
        assert via_api.returncode == 0 and via_api.stdout.split()[:1] == [str(code)], via_api
    via_ssh = host.ssh(ssh_line.format(h=h))
    assert via_ssh.returncode == 1 and f"({name})" in via_ssh.stderr, via_ssh.stderr
    via_mount = host.daemon.sh(shell_line, check=False)
    assert via_mount.returncode != 0 and os.strerror(code) in via_mount.stderr, via_mount.stderr


def test_a_select_from_the_command_line(host):
    h = host.host_id
    for c in ("sa", "sb"):
        circuit(host, "mkchan", f"/{h}/dc/chan/{c}", "0")
    made = circuit(host, "mkselect", f"/{h}/dc/select/s", "r:chan/sa/recv", f"w:/{h}/dc/chan/sb/send")
    assert made.returncode == 0, made.stderr
    reader = popen(host, "recv", f"/{h}/dc/chan/sb", stdout=subprocess.PIPE)  # makes clause 1 ready
    committed = json.loads(circuit(host, "wait", f"/{h}/dc/select/s").stdout)
    assert committed == {"clause": 1, "file": "write.1"}
    assert circuit(host, "put", f"/{h}/dc/select/s/write.1", input=b"chosen").returncode == 0
    assert reader.communicate(timeout=15)[0] == b"chosen"
    bad = circuit(host, "mkselect", f"/{h}/dc/select/bad", "r:chan/none/recv")
    assert bad.returncode == 1 and b"(EINVAL)" in bad.stderr
    assert circuit(host, "ls", f"/{h}/dc/select").stdout.split() == [b"s"]  # nothing left behind


def test_input_faster_than_the_command_takes_it_is_held_back(host):
    """A process that never reads its stdin, fed by a command line without end: the host holds
    a few MiB of it and stops reading the socket; the writer blocks instead of the host growing."""
    h = host.host_id
    circuit(host, "mkproc", f"/{h}/dc/proc/deaf", "--", "/bin/sleep", "60")
    feeder = popen(host, "stdin", f"/{h}/dc/proc/deaf", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    sent = feed_until_held(feeder)
    rss = rss_mb(host.daemon.proc.pid)
    try:
        assert sent < 64 << 20, f"{sent >> 20} MiB taken from a reader-less stdin"
        assert rss < 200, f"the host holds {rss} MiB"
    finally:
        circuit(host, "signal", "KILL", f"/{h}/dc/proc/deaf")
        feeder.kill()
        feeder.wait(10)
