"""Certificates carry a role: a client may use elements, never make membership calls."""
import json
import select
import subprocess
import sys
from pathlib import Path

from conftest import members, met_cluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import make_client, reading, wait_for  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def pb_call(kind: str, directory: Path, url: str, method: str, *args) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "pb_call.py"), kind, str(directory), url, method,
                          json.dumps(list(args))], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_client_certificate_cannot_tell_the_cluster_who_is_dead_or_alive(tmp_path):
    hosts = met_cluster(tmp_path, 2)
    a, b = next(hosts)
    try:
        ca = tmp_path / "ca"
        make_client(ca, tmp_path / "me", "tester")
        b_dead = json.dumps([["dead", b.host_id, b.url, 1000, ""]])
        ghost = "X00000000000000e1"  # a member nobody runs, at a port nobody serves
        ghost_alive = json.dumps([["alive", ghost, f"circuit://127.0.0.1:9/{ghost}", 0, ""]])

        # As a client: each rumour is refused, and elements can still be used.
        for rumour in (b_dead, ghost_alive):
            refused = pb_call("client", tmp_path / "me", a.url, "ping", rumour)
            assert refused["refused"][0] == 1 and "client certificate" in refused["refused"][1]  # EPERM
        assert pb_call("client", tmp_path / "me", a.url, "sync", "[]")["refused"][0] == 1
        assert pb_call("client", tmp_path / "me", a.url, "getattr", "dc")["ok"][0] == "dir"
        assert members(a) == sorted([a.host_id, b.host_id])

        # The same call from a member's certificate is believed: the check is what stopped it.
        # (A death heard is only a suspicion until the hearer fails to reach the member
        # itself, so the member's word shown is a newcomer's; A's events keep what a
        # listing could miss.)
        events = subprocess.Popen(["cat", str(a.root / "sys/events")], stdout=subprocess.PIPE)
        try:
            wait_for(lambda: reading(events.pid, a.root / "sys/events"), what="A's events to be read")
            assert "ok" in pb_call("host", ca, a.url, "ping", ghost_alive)
            assert select.select([events.stdout], [], [], 10)[0], "A did not believe a member's rumour"
            heard = json.loads(events.stdout.readline())
            assert heard.get("joined") == ghost, heard
        finally:
            events.kill()
            events.wait()
    finally:
        hosts.close()
