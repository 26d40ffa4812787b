"""Many hosts and many elements: no per-element or per-host limit shows."""
import json

from conftest import members, start_cluster
from helpers import start_daemon, wait_for


def test_thirty_two_hosts_form_one_cluster(tmp_path):
    hosts = start_cluster(tmp_path, 1)  # the observer, with a mount
    try:
        ca = tmp_path / "ca"
        for i in range(1, 32):
            hosts.append(start_daemon(tmp_path / f"n{i}", "--ca", str(ca), "-j", hosts[0].url,
                                      mount=False, wait=False))
        for h in hosts[1:]:
            wait_for(lambda: (h.data / "url").exists(), 60, what="every host to start")
        ids = sorted([hosts[0].host_id] + [(h.data / "url").read_text().strip().rsplit("/", 1)[1]
                                           for h in hosts[1:]])
        observer = hosts[0]
        wait_for(lambda: members(observer) == ids, 30, what="the observer to see all 32")
        # every host's own view, read through the observer's mount (sys/ is served remotely)
        for host_id in ids:
            wait_for(lambda: len((observer.mount / host_id / "sys/members").read_text().splitlines()) == 32,
                     30, what=f"{host_id} to see all 32")
    finally:
        for h in hosts:
            h.stop()


def test_ten_thousand_elements_on_one_host_through_another(tmp_path):
    a, b = start_cluster(tmp_path, 2)
    try:
        a.sh("cd dc/chan && for i in $(seq 1 10000); do mkdir c$i; done", timeout=300)
        listing = b.sh(f"ls {b.mount}/{a.host_id}/dc/chan | wc -l", timeout=120).stdout.strip()
        assert listing == "10000"
        stat = json.loads(b.sh(f"cat {b.mount}/{a.host_id}/sys/stat").stdout)
        assert stat["elements"]["chan"] == 10000
        for i in (1, 5000, 10000):  # each one still usable from B
            path = b.mount / a.host_id / f"dc/chan/c{i}"
            b.sh(f"echo 1 > {path}/cap && echo m{i} > {path}/send && cat {path}/recv")
    finally:
        a.stop()
        b.stop()
