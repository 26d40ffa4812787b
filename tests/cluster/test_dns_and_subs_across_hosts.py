"""The DNS server and the subscription across hosts: made on A through B's mount, asked with
dig at A's address; a subscription on A keeping C's join, graceful leave and death; and nothing
missed between two reads, where a sys/events reader not open at the time misses it all."""
import json
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import members, start_cluster
from helpers import reading, start_daemon, wait_for


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pair")
    hosts = start_cluster(tmp, 2)
    ids = sorted(h.host_id for h in hosts)
    for h in hosts:
        wait_for(lambda: members(h) == ids, 10, what="the two to meet")
    yield tmp, hosts
    for h in hosts:
        h.stop()


def _join(tmp: Path, a, name: str):
    c = start_daemon(tmp / name, "--ca", str(tmp / "ca"), "-j", a.url, mount=False)
    wait_for(lambda: c.host_id in members(a), 15, what=f"A to see {name} join")
    return c


def _recv(path: Path) -> dict:
    return json.loads(subprocess.run(["cat", str(path)], capture_output=True, timeout=60, check=True).stdout)


def _stat(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_dns_server_on_a_made_and_fed_through_bs_mount(pair):
    _, (a, b) = pair
    on_a = b.mount / a.host_id / "dc" / "dns" / "names"
    b.sh(f"mkdir {on_a} && echo 127.0.0.1:0 > {on_a}/addr && echo 'db.cluster. A 10.0.0.7' > {on_a}/set")
    addr = (a.root / "dc/dns/names/addr").read_text().strip()  # A's own view of the same element
    host, port = addr.rsplit(":", 1)
    out = subprocess.run(["dig", f"@{host}", "-p", port, "+short", "+tries=1", "+time=5", "db.cluster."],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "10.0.0.7\n"
    bad = b.sh(f"/bin/echo 'db.cluster. A 300.0.0.1' > {on_a}/set", check=False)
    assert bad.returncode != 0 and "Invalid argument" in bad.stderr
    assert "300.0.0.1" in (a.root / "dc/dns/names/error").read_text()
    b.sh(f"rmdir {on_a}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, int(port)))  # A's port is free once B's rmdir has returned


def test_a_subscription_keeps_a_join_a_leave_and_a_death(pair):
    tmp, (a, b) = pair
    subs = b.mount / a.host_id / "dc" / "subs"
    b.sh(f"mkdir {subs}/joins {subs}/leaves && echo join > {subs}/joins/on && echo leave > {subs}/leaves/on")
    c = _join(tmp, a, "c-leaves")
    d = _join(tmp, a, "d-dies")
    c.stop()  # a graceful leave
    wait_for(lambda: _stat(a.root / "dc/subs/leaves/stat")["len"] == 1, 15, what="A to hear C leave")
    d.proc.kill()
    wait_for(lambda: _stat(a.root / "dc/subs/leaves/stat")["len"] == 2, 40, what="A to declare D dead")
    assert [_recv(subs / "joins/recv") for _ in range(2)] == [
        {"joined": c.host_id, "url": c.url}, {"joined": d.host_id, "url": d.url}]
    assert [_recv(a.root / "dc/subs/leaves/recv") for _ in range(2)] == [
        {"left": c.host_id, "reason": "left"}, {"left": d.host_id, "reason": "failed"}]
    stat = _stat(a.root / "dc/subs/joins/stat")
    assert (stat["len"], stat["received"], stat["dropped"]) == (0, 2, 0)
    b.sh(f"rmdir {subs}/joins {subs}/leaves")


def test_nothing_is_missed_between_two_reads(pair):
    """A reader reads one event, does something else while three hosts join, reads again: the
    subscription has kept all three.  sys/events, opened again after them, has none."""
    tmp, (a, b) = pair
    sub = a.root / "dc/subs/between"
    a.sh("mkdir dc/subs/between && echo join leave > dc/subs/between/on")
    first = _join(tmp, a, "first")
    events = subprocess.Popen(["cat", str(a.root / "sys/events")], stdout=subprocess.PIPE)
    wait_for(lambda: reading(events.pid, a.root / "sys/events"), what="the events reader to read")
    assert _recv(sub / "recv") == {"joined": first.host_id, "url": first.url}
    events.kill()  # the sys/events reader goes away, as a reader between two reads does
    events.wait(10)
    later = [_join(tmp, a, f"later{i}") for i in range(3)]  # while nobody reads
    events = subprocess.Popen(["cat", str(a.root / "sys/events")], stdout=subprocess.PIPE)
    wait_for(lambda: reading(events.pid, a.root / "sys/events"), what="the events reader to read again")
    first.stop()  # one more event, so that sys/events has something to say
    seen = json.loads(events.stdout.readline())
    events.kill()
    assert seen == {"left": first.host_id, "reason": "left"}  # the three joins: missed
    got = [_recv(sub / "recv") for _ in range(4)]
    assert got == [{"joined": h.host_id, "url": h.url} for h in later] + [seen]  # kept, in order
    for h in later:
        h.stop()


def test_a_reader_on_b_that_gives_up_takes_no_event(pair):
    import signal
    tmp, (a, b) = pair
    a.sh("mkdir dc/subs/giveup && echo join > dc/subs/giveup/on")
    stat = a.root / "dc/subs/giveup/stat"
    reader = subprocess.Popen(["cat", str(b.mount / a.host_id / "dc/subs/giveup/recv")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_for(lambda: _stat(stat)["receivers_waiting"] == 1, what="B's reader to block on A")
    reader.send_signal(signal.SIGTERM)
    e = _join(tmp, a, "e")
    try:
        assert reader.communicate(timeout=15)[0] == b""  # the reader that left printed nothing
        assert _recv(b.mount / a.host_id / "dc/subs/giveup/recv") == {"joined": e.host_id, "url": e.url}
        assert (_stat(stat)["received"], _stat(stat)["len"]) == (1, 0)
    finally:
        e.stop()


def test_a_select_waits_on_a_subscription(pair):
    tmp, (a, b) = pair
    a.sh("mkdir dc/subs/sel dc/chan/quiet && echo join > dc/subs/sel/on && echo 0 > dc/chan/quiet/cap")
    on_a = b.mount / a.host_id / "dc"
    b.sh(f"""mkdir {on_a}/select/s && echo '[{{"op": "r", "file": "chan/quiet/recv"}}, """
         f"""{{"op": "r", "file": "subs/sel/recv"}}]' > {on_a}/select/s/select""")
    waiting = subprocess.Popen(["cat", str(on_a / "select/s/wait")], stdout=subprocess.PIPE)
    f = _join(tmp, a, "f")
    try:
        assert json.loads(waiting.communicate(timeout=15)[0]) == {"clause": 1, "file": "read.1"}
        assert json.loads((on_a / "select/s/read.1").read_text()) == {"joined": f.host_id, "url": f.url}
        assert _stat(a.root / "dc/subs/sel/stat")["len"] == 0  # taken by the select, once
    finally:
        f.stop()


def test_a_reader_of_a_dead_hosts_subscription_gets_ehostdown(tmp_path):
    a, b = start_cluster(tmp_path, 2)
    try:
        a.sh("mkdir dc/subs/w && echo leave > dc/subs/w/on")
        reader = subprocess.Popen(["cat", str(b.mount / a.host_id / "dc/subs/w/recv")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: _stat(a.root / "dc/subs/w/stat")["receivers_waiting"] == 1, what="B's reader to wait")
        a.proc.kill()
        out, err = reader.communicate(timeout=30)
        assert reader.returncode == 1 and out == b"" and b"Host is down" in err
    finally:
        for h in (a, b):
            h.stop()
