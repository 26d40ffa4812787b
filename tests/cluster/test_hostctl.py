"""Host control with real daemons: waitall over processes on several hosts, stopping a host
from another, and joining two circuits into one."""
import json
import select
import subprocess
import sys
from pathlib import Path

from conftest import members, met_cluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import wait_for  # noqa: E402

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
    subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "client", "--ca", str(tmp_path / "ca"),
                    str(tmp_path / "me"), "tester"], check=True, capture_output=True, cwd=ROOT)
    return tmp_path / "me"


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
        hosts.close()


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
        hosts.close()
