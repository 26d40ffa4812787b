"""Host control with real daemons: waitall over processes on several hosts, stopping a host
from another, and joining two circuits into one."""
import itertools
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from conftest import members, met_cluster
from netlab import Lab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import is_mounted, make_ca, make_client, reading, start_daemon, wait_for  # noqa: E402
from ssh_clients import Client as SSH, keypair  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def circuit(host, *args, timeout=60, **kw) -> subprocess.CompletedProcess:
    """The ``circuit`` command line, run by ``host`` (its control socket)."""
    return subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", str(host.data), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def popen(host, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "circuit.cli.main", "--data", str(host.data), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def client_cert(tmp_path) -> Path:
    """A client's credentials, signed by the cluster CA that met_cluster made."""
    return make_client(tmp_path / "ca", tmp_path / "me", "tester")


def line_of(proc: subprocess.Popen, timeout: float = 30) -> str:
    assert select.select([proc.stdout], [], [], timeout)[0], "no line came"
    return proc.stdout.readline()


def test_waitall_over_two_hosts_and_a_host_that_dies(tmp_path):
    hosts = met_cluster(tmp_path, 3)
    a, b, c = next(hosts)
    try:
        pa, pb, pc = (f"/{h.host_id}/dc/proc/w" for h in (a, b, c))
        for h, p in ((a, pa), (b, pb), (c, pc)):
            assert circuit(h, "mkproc", p, "--", "/bin/sleep", "1000").returncode == 0

        # Every process exits: one record each, as each exits, then exit status 0.
        waiting = popen(a, "waitall", pa, pb)
        circuit(a, "signal", "TERM", pb)
        first = json.loads(line_of(waiting))
        assert first["path"] == pb and first["signal"] == "TERM" and first["phase"] == "exited"
        assert waiting.poll() is None  # A's process still runs: still waiting
        circuit(b, "signal", "KILL", pa)  # through B, onto A's process
        second = json.loads(line_of(waiting))
        assert second["path"] == pa and second["signal"] == "KILL"
        assert waiting.wait(30) == 0

        # A host that dies while waited on: EHOSTDOWN for its path, the others still waited for.
        for h, p in ((a, pa), (c, pc)):
            circuit(h, "rm", p)
            assert circuit(h, "mkproc", p, "--", "/bin/sleep", "1000").returncode == 0
        waiting = popen(b, "waitall", pa, pc)
        circuit(b, "signal", "TERM", pa)
        assert json.loads(line_of(waiting))["path"] == pa  # waiting now, past every check
        c.proc.kill()
        _, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 1 and f"waitall: {pc}: " in err and "(EHOSTDOWN)" in err, err

        # Checked before anything waits: a path that is not a process waits for nothing.
        refused = circuit(a, "waitall", pb, f"/{a.host_id}/dc/chan/none")
        assert refused.returncode == 1 and "(EINVAL)" in refused.stderr and refused.stdout == ""
        circuit(a, "rm", pa)
        assert circuit(a, "mkproc", pa, "--", "/bin/sleep", "1000").returncode == 0
        late = circuit(a, "waitall", "--timeout", "0.5", pa)
        assert late.returncode == 1 and "(ETIMEDOUT)" in late.stderr
        assert json.loads(circuit(a, "peek", pa).stdout)["phase"] == "running"  # nothing changed
    finally:
        next(hosts, None)  # met_cluster's own teardown stops every host (close() would skip it)


def test_mkproc_w_from_a_members_command_line_onto_another_host(tmp_path):
    """``circuit mkproc -w`` run by B for a process on A: one operation of A's tree through
    B; interrupted, B cancels it on A, and only the wait ends."""
    hosts = met_cluster(tmp_path, 2)
    a, b = next(hosts)
    try:
        p = f"/{a.host_id}/dc/proc"
        done = circuit(b, "mkproc", "-w", f"{p}/once", "--", "/bin/sh", "-c", "exit 3")
        assert done.returncode == 0 and json.loads(done.stdout)["exit"] == 3, done.stderr
        waiting = popen(b, "mkproc", "-w", f"{p}/long", "--", "/bin/sleep", "1000")
        stat = lambda: json.loads(circuit(a, "peek", f"{p}/long").stdout or "{}")  # noqa: E731
        wait_for(lambda: stat().get("waiting") == 1, 30, what="B's command to wait on A")
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(15) == 130
        wait_for(lambda: stat()["waiting"] == 0, what="the wait on A to end")
        assert stat()["phase"] == "running"
        circuit(a, "rm", f"{p}/long", f"{p}/once")
    finally:
        next(hosts, None)


def test_waitall_through_the_python_client(tmp_path):
    hosts = met_cluster(tmp_path, 2)
    a, b = next(hosts)
    try:
        client_cert(tmp_path)
        code = (
            "from circuit.client.blocking import connect\n"
            f"c = connect({a.url!r}, data={str(tmp_path / 'me')!r})\n"
            "procs = [h.mkproc('cw', path='/bin/sh', args=['-c', 'exit %d' % i])\n"
            "         for i, h in enumerate(c.hosts())]\n"
            "print(json.dumps([[r['path'], r['exit']] for r in c.waitall(procs)]))\n")
        out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout.splitlines()[-1])
        assert got == [[f"/{a.host_id}/dc/proc/cw", 0], [f"/{b.host_id}/dc/proc/cw", 1]]
        assert members(a) == sorted([a.host_id, b.host_id])
    finally:
        next(hosts, None)  # met_cluster's own teardown stops every host (close() would skip it)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")  # exited, not yet reaped
    except FileNotFoundError:
        return True


def _descendants(pid: int) -> set:
    """The processes under ``pid`` (a daemon's: its keeper, and the keeper's: its processes)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(") ", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    found, under = set(), {pid}
    while under:
        under = {child for child, parent in parents.items() if parent in under} - found
        found |= under
    return found


def _events(host) -> subprocess.Popen:
    reader = subprocess.Popen(["cat", str(host.root / "sys/events")], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: reading(reader.pid, host.root / "sys/events"), what="the events to be read")
    return reader


def test_stop_a_host_from_a_members_command_line_mount_and_ssh(tmp_path):
    key = keypair(tmp_path / "id_ed25519")
    (tmp_path / "authorized_keys").write_text((tmp_path / "id_ed25519.pub").read_text())
    hosts = met_cluster(tmp_path, 4, "--sftp", "127.0.0.1:0", "--authorized-keys", str(tmp_path / "authorized_keys"))
    a, b, c, d = next(hosts)
    try:
        pids = {}
        for h in (b, c, d):
            p = f"/{h.host_id}/dc/proc/kept"
            assert circuit(a, "mkproc", p, "--", "/bin/sleep", "1000").returncode == 0
            pids[h.host_id] = json.loads(circuit(a, "peek", p).stdout)["pid"]
        children = {h.host_id: _descendants(h.proc.pid) for h in (b, c, d)}
        for h in (b, c, d):  # the element's process and the keeper, at least
            assert pids[h.host_id] in children[h.host_id] and len(children[h.host_id]) >= 2
        events = _events(a)
        try:
            # From A's command line: B leaves (A hears "left", not "failed"), then it exits 0.
            stopped = circuit(a, "stop", f"/{b.host_id}")
            assert stopped.returncode == 0, stopped.stderr
            assert b.host_id not in members(a)  # stop returns once A has seen B go
            assert json.loads(line_of(events)) == {"left": b.host_id, "reason": "left"}
            assert b.proc.wait(30) == 0
            assert all(_gone(pid) for pid in children[b.host_id]) and not is_mounted(b.mount)

            # Through A's mount: the same for C.
            a.sh(f"echo stop > {a.mount}/{c.host_id}/sys/stop")
            assert json.loads(line_of(events)) == {"left": c.host_id, "reason": "left"}
            assert c.proc.wait(30) == 0
            assert all(_gone(pid) for pid in children[c.host_id]) and not is_mounted(c.mount)

            # Through A's SSH: the same command as the command line's, for D.
            through_ssh = SSH(a, tmp_path, key).ssh(f"stop /{d.host_id}")
            assert through_ssh.returncode == 0, through_ssh.stderr
            assert json.loads(line_of(events)) == {"left": d.host_id, "reason": "left"}
            assert d.proc.wait(30) == 0
            assert all(_gone(pid) for pid in children[d.host_id]) and not is_mounted(d.mount)
            assert members(a) == [a.host_id]
        finally:
            events.kill()
            events.wait()

        # Hosts that are not there: a clear line, and nothing stops.
        unknown = circuit(a, "stop", "/X0123456789abcdef")
        assert unknown.returncode == 1 and "no host X0123456789abcdef in this circuit (ENOENT)" in unknown.stderr
        left = circuit(a, "stop", f"/{b.host_id}")
        assert left.returncode == 1 and "(EHOSTDOWN)" in left.stderr
        bad = a.sh("echo go > sys/stop", check=False)
        assert bad.returncode != 0 and "Invalid argument" in bad.stderr
        assert a.proc.poll() is None

        # A host stops itself from its own command line.
        assert circuit(a, "stop", f"/{a.host_id}").returncode == 0
        assert a.proc.wait(30) == 0 and not is_mounted(a.mount)
    finally:
        next(hosts, None)  # met_cluster's own teardown stops every host (close() would skip it)


def test_a_client_certificate_may_not_stop_hosts_nor_join_circuits(tmp_path):
    hosts = met_cluster(tmp_path, 2)
    a, b = next(hosts)
    try:
        me = client_cert(tmp_path)
        # From afar, the host running the command (over TLS), or the Python client over PB.
        for pb, argv in itertools.product(((), ("--pb",)), (["stop", f"/{b.host_id}"],
                                          ["join", a.url, b.url.replace(b.host_id, "X0123456789abcdef")])):
            refused = circuit(a, "--url", a.url, *pb, "--data", str(me), *argv)
            assert refused.returncode == 1 and "a client certificate may not" in refused.stderr, refused.stderr
            assert "(EPERM)" in refused.stderr
        # ... and the elements are still the client's to use; B is still there.
        assert circuit(a, "--url", a.url, "--data", str(me), "ls", "/").stdout.split() == [a.host_id, b.host_id]
        assert b.proc.poll() is None and members(a) == sorted([a.host_id, b.host_id])
    finally:
        next(hosts, None)  # met_cluster's own teardown stops every host (close() would skip it)


def test_join_through_a_mount_and_not_with_a_circuit_of_another_ca(tmp_path):
    hosts = met_cluster(tmp_path, 1)
    a, = next(hosts)
    try:
        # A lone host of the same CA, a circuit of its own: one write into A's sys/join.
        other = start_daemon(tmp_path / "same-ca", "--ca", str(tmp_path / "ca"))
        try:
            assert members(a) == [a.host_id] and members(other) == [other.host_id]
            a.sh(f"echo {other.url} > sys/join")
            both = sorted([a.host_id, other.host_id])
            for h in (a, other):
                wait_for(lambda: members(h) == both, 15, what="both mounts to list both hosts")
        finally:
            other.stop()
        wait_for(lambda: members(a) == [a.host_id], 15, what="A to see the other leave")

        stranger = start_daemon(tmp_path / "other", "--ca", str(make_ca(tmp_path / "other-ca")))
        try:
            refused = circuit(a, "join", a.url, stranger.url)
            assert refused.returncode == 1 and "TLS handshake failed" in refused.stderr, refused.stderr
            assert "(EPERM)" in refused.stderr
            through_mount = a.sh(f"echo {stranger.url} > sys/join", check=False)
            assert through_mount.returncode != 0 and "Operation not permitted" in through_mount.stderr
            assert members(a) == [a.host_id] and members(stranger) == [stranger.host_id]
        finally:
            stranger.stop()
    finally:
        next(hosts, None)  # met_cluster's own teardown stops every host (close() would skip it)


def test_two_circuits_in_network_namespaces_become_one_with_one_command(tmp_path):
    """Two circuits of two hosts each, every host in a network namespace of its own, one CA;
    one command run on a host of the first (not the one that joins) makes them one."""
    lab = Lab(f"j{os.getpid() % 10000}", 4)
    hosts = []
    try:
        ca = make_ca(tmp_path / "ca")
        for i in range(4):
            join = ("-j", hosts[i - 1].url) if i % 2 else ()  # h1 joins h0, h3 joins h2
            hosts.append(start_daemon(tmp_path / f"h{i}", "--ca", str(ca), "-a", f"{lab.addr(i)}:7700",
                                      *join, prefix=lab.prefix(i)))
        first, second = hosts[:2], hosts[2:]
        for side in (first, second):
            for h in side:
                wait_for(lambda: members(h) == sorted(x.host_id for x in side), 15, what="each circuit to form")

        joined = circuit(hosts[1], "join", hosts[0].url, hosts[2].url)
        assert joined.returncode == 0, joined.stderr
        everyone = sorted(h.host_id for h in hosts)
        for h in hosts:
            wait_for(lambda: members(h) == everyone, 30, what="every mount to list all four hosts")

        # One circuit: an element of the first used from a host of the second.
        hosts[1].sh("mkdir dc/chan/across && echo 1 > dc/chan/across/cap")
        hosts[3].sh(f"echo merged > {hosts[3].mount}/{hosts[1].host_id}/dc/chan/across/send")
        assert hosts[1].sh("cat dc/chan/across/recv").stdout == "merged\n"
        again = circuit(hosts[3], "join", hosts[2].url, hosts[0].url)  # one circuit already
        assert again.returncode == 0 and members(hosts[3]) == everyone
    finally:
        for h in hosts:
            h.stop(signal.SIGKILL)
        lab.close()
