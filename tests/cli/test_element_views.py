"""The DNS server and the subscription through every way in, from one table of cases: the
mount (the shell's own tools), the command line (through the local host, and through the
Python client with --url), the client's own API, and ssh HOST COMMAND.  The same files give the
same bytes, and the same refusals the same errno, whichever way in."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_cli import afar, circuit  # the command line against the module's host
from ssh_clients import ssh_daemon

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    c = ssh_daemon(tmp_path_factory.mktemp("views"))
    c.daemon.sh("mkdir dc/dns/busy && echo 127.0.0.1:0 > dc/dns/busy/addr")  # a port in use: {busy}
    yield c
    c.daemon.stop()


def _client(host, call: str) -> subprocess.CompletedProcess:
    """Run ``call`` with ``host`` the Python client's Host: its refusal printed as
    ``ERRNO message``, else whatever it printed."""
    code = (f"import sys\nfrom circuit import errors\nfrom circuit.client.blocking import connect\n"
            f"c = connect({host.daemon.url!r}, data={str(host.daemon.data)!r})\n"
            f"host = c.host({host.host_id!r})\n"
            f"try:\n    {call}\nexcept errors.CircuitError as e:\n    print(e.errno, e.message)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


# (setup as shell lines in the host's directory; the operation as (circuit argv, ssh command,
# mount shell line, Python client call on `host`), None where a way has no such operation;
# the errno).  {h} is /HOSTID, {busy} an address a DNS server of the host listens on.
REFUSALS = [
    ("mkdir dc/dns/d1",
     (["set", "{h}/dc/dns/d1", "x.cluster. A 10.0.0"], "echo 'x.cluster. A 10.0.0' > {h}/dc/dns/d1/set",
      "echo 'x.cluster. A 10.0.0' > dc/dns/d1/set", 'host.dns("d1").set("x.cluster. A 10.0.0")'),
     errno.EINVAL),
    ("mkdir dc/dns/d2",
     (["mkdns", "{h}/dc/dns/d2b", "{busy}"], "echo {busy} > {h}/dc/dns/d2/addr",
      "echo {busy} > dc/dns/d2/addr", 'host.mkdns("d2c", "{busy}")'),
     errno.EADDRINUSE),
    ("mkdir dc/dns/d3",
     (["mkdns", "{h}/dc/dns/d3b", "localhost:53"], "echo localhost:53 > {h}/dc/dns/d3/addr",
      "echo localhost:53 > dc/dns/d3/addr", 'host.mkdns("d3c", "localhost:53")'),
     errno.EINVAL),
    ("mkdir dc/dns/d6",  # 192.0.2.1: TEST-NET-1, no host's address
     (["mkdns", "{h}/dc/dns/d6b", "192.0.2.1:0"], "echo 192.0.2.1:0 > {h}/dc/dns/d6/addr",
      "echo 192.0.2.1:0 > dc/dns/d6/addr", 'host.mkdns("d6c", "192.0.2.1:0")'),
     errno.EADDRNOTAVAIL),
    ("mkdir dc/dns/d4",
     (["unset", "{h}/dc/dns/d4", "nobody.cluster."], "echo nobody.cluster. > {h}/dc/dns/d4/unset",
      "echo nobody.cluster. > dc/dns/d4/unset", 'host.dns("d4").unset("nobody.cluster.")'),
     errno.ENOENT),
    ("mkdir dc/dns/d5",
     (None, "echo x > {h}/dc/dns/d5/records", "echo x > dc/dns/d5/records", None),
     errno.EACCES),
    ("true",
     (["set", "{h}/dc/dns/nobody", "a.cluster. A 10.0.0.1"], "echo 'a.cluster. A 10.0.0.1' > {h}/dc/dns/nobody/set",
      "echo 'a.cluster. A 10.0.0.1' > dc/dns/nobody/set", 'host.dns("nobody").set("a.cluster. A 10.0.0.1")'),
     errno.ENOENT),
    ("mkdir dc/subs/s1",
     (["mksubs", "{h}/dc/subs/s1b", "joins"], "echo joins > {h}/dc/subs/s1/on", "echo joins > dc/subs/s1/on",
      'host.mksubs("s1c", "joins")'),
     errno.EINVAL),
    ("mkdir dc/subs/s2 && echo join > dc/subs/s2/on",
     (None, "echo leave > {h}/dc/subs/s2/on", "echo leave > dc/subs/s2/on", None),
     errno.EBUSY),
    ("mkdir dc/subs/s3",
     (["recv", "{h}/dc/subs/s3"], "cat {h}/dc/subs/s3/recv", "cat dc/subs/s3/recv",
      'host.subscription("s3").recv()'),
     errno.EINVAL),
    ("mkdir dc/subs/s4",
     (["mk@join", "{h}/dc/subs/s4"], "mkdir {h}/dc/subs/s4", "mkdir dc/subs/s4", 'host.mksubs("s4", "join")'),
     errno.EEXIST),
    ("true",
     (["recv", "{h}/dc/subs/nobody"], "cat {h}/dc/subs/nobody/recv", "cat dc/subs/nobody/recv",
      'host.subscription("nobody").recv()'),
     errno.ENOENT),
]

# The same files, read through every way in: (setup, the file, the client's way to its bytes).
READS = [
    ("mkdir dc/dns/r1 && printf '%s\\n' 'b.cluster. A 10.0.0.2' 'a.cluster. 30 TXT \"x y\"' > dc/dns/r1/set",
     "dc/dns/r1/records", 'sys.stdout.write("".join(line + "\\n" for line in host.dns("r1").records()))'),
    ("mkdir dc/dns/r2", "dc/dns/r2/help", None),
    ("mkdir dc/subs/r3 && echo leave join > dc/subs/r3/on", "dc/subs/r3/on",
     'print(" ".join(host.subscription("r3").stat()["on"]))'),
    ("mkdir dc/subs/r4", "dc/subs/r4/help", None),
]


def _formatted(host, text: str) -> str:
    busy = (host.daemon.root / "dc/dns/busy/addr").read_text().strip()
    return text.format(h="/" + host.host_id, busy=busy)


@pytest.mark.parametrize("setup, ways, code", REFUSALS)
def test_the_same_refusal_through_every_way_in(host, setup, ways, code):
    host.daemon.sh(setup)
    argv, ssh_line, shell_line, api_call = ways
    name = errno.errorcode[code]
    if argv is not None:
        words = [_formatted(host, a) for a in argv]
        # The local host; from afar, the host running it (over TLS); the Python client over PB.
        for extra in ((), ("--url", host.daemon.url), ("--url", host.daemon.url, "--pb")):
            via_cli = circuit(host, *extra, *words, data=afar(host) if extra else None)
            assert via_cli.returncode == 1 and f"({name})".encode() in via_cli.stderr, (extra, via_cli.stderr)
    if api_call is not None:
        via_api = _client(host, _formatted(host, api_call))
        assert via_api.returncode == 0 and via_api.stdout.split()[:1] == [str(code)], via_api
    via_ssh = host.ssh(_formatted(host, ssh_line))
    assert via_ssh.returncode == 1 and f"({name})" in via_ssh.stderr, via_ssh.stderr
    via_mount = host.daemon.sh(_formatted(host, shell_line), check=False)
    assert via_mount.returncode != 0 and os.strerror(code) in via_mount.stderr, via_mount.stderr


@pytest.mark.parametrize("setup, file, api_call", READS)
def test_the_same_bytes_through_every_way_in(host, setup, file, api_call):
    host.daemon.sh(setup)
    want = (host.daemon.root / file).read_text()
    assert want  # something to compare
    path = f"/{host.host_id}/{file}"
    assert circuit(host, "cat", path).stdout.decode() == want
    for pb in ((), ("--pb",)):
        assert circuit(host, "--url", host.daemon.url, *pb, "cat", path, data=afar(host)).stdout.decode() == want
    assert host.ssh(f"cat {path}").stdout == want
    if api_call is not None:
        assert _client(host, api_call).stdout == want


def test_a_subscription_through_every_way_in(host, tmp_path):
    """One event kept, read by each way in turn: each reader gets the next, none twice."""
    from helpers import start_daemon, wait_for
    d = host.daemon
    d.sh("mkdir dc/subs/all && echo join > dc/subs/all/on")
    joiners = []
    for i in range(5):
        joiners.append(start_daemon(d.data.parent / f"joiner{i}", "--ca", str(d.data / "ca"), "-j", d.url,
                                    mount=False))
    try:
        wait_for(lambda: '"len": 5' in (d.root / "dc/subs/all/stat").read_text(), 20, what="five joins kept")
        path = f"/{d.host_id}/dc/subs/all"
        got = [circuit(host, "recv", path).stdout.decode(),
               host.ssh(f"cat {path}/recv").stdout,
               _client(host, 'print(__import__("json").dumps(host.subscription("all").recv(), sort_keys=True))').stdout,
               d.sh("cat dc/subs/all/recv").stdout]
        assert host.sftp(f"get {path}/recv {tmp_path}/got\n").returncode == 0
        got.append((tmp_path / "got").read_text())
        assert got == [f'{{"joined": "{j.host_id}", "url": "{j.url}"}}\n' for j in joiners]
    finally:
        for j in joiners:
            j.stop()


@pytest.mark.parametrize("way", ["command line", "ssh"])
def test_the_issues_commands(host, way):
    """mkdns, set, unset, mk@join, mk@leave and ls -l, by the command line and by ssh HOST COMMAND."""
    h, n = host.host_id, way.split()[0]

    def run(*words: str) -> str:
        if way == "ssh":
            r = host.ssh(" ".join(f"'{w}'" for w in words))
            assert r.returncode == 0, r.stderr
            return r.stdout
        r = circuit(host, *words)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode()
    run("mkdns", f"/{h}/dc/dns/{n}", "127.0.0.1:0")
    run("set", f"/{h}/dc/dns/{n}", "db.cluster. A 10.0.0.7", "db.cluster. TXT primary")
    addr = (host.daemon.root / "dc/dns" / n / "addr").read_text().strip()
    ip, port = addr.rsplit(":", 1)
    ask = ["dig", f"@{ip}", "-p", port, "+short", "+tries=1", "+time=5", "db.cluster."]
    assert subprocess.run(ask, capture_output=True, text=True, timeout=30).stdout == "10.0.0.7\n"
    run("unset", f"/{h}/dc/dns/{n}", "db.cluster.", "A")
    assert run("cat", f"/{h}/dc/dns/{n}/records") == 'db.cluster. 60 IN TXT "primary"\n'
    run("mk@join", f"/{h}/dc/subs/{n}-j")
    run("mk@leave", f"/{h}/dc/subs/{n}-l")
    run("mksubs", f"/{h}/dc/subs/{n}-b", "join leave")
    listing = run("ls", "-l", f"/{h}/dc/dns", f"/{h}/dc/subs")
    assert f"{n}  [dns: on {addr}, 1 records]" in listing
    assert f"{n}-j  [subs: on join, 0 waiting]" in listing and f"{n}-b  [subs: on join leave, 0 waiting]" in listing
    assert (host.daemon.root / "dc/subs" / f"{n}-l" / "on").read_text() == "leave\n"
    run("rm", f"/{h}/dc/dns/{n}", f"/{h}/dc/subs/{n}-j", f"/{h}/dc/subs/{n}-l", f"/{h}/dc/subs/{n}-b")
