"""The DNS element through the mount, asked with a real resolver client (dig)."""
import json
import socket
import subprocess

from helpers import wait_for


def dig(addr: str, *query: str, tcp: bool = False) -> str:
    host, port = addr.rsplit(":", 1)
    argv = ["dig", f"@{host}", "-p", port, "+tries=1", "+time=5", *(["+tcp"] if tcp else []), *query]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


def short(addr: str, *query: str, tcp: bool = False) -> list:
    return dig(addr, "+short", *query, tcp=tcp).split("\n")[:-1]


def _dns(host, name: str, addr: str = "127.0.0.1:0"):
    host.sh(f"mkdir dc/dns/{name} && echo {addr} > dc/dns/{name}/addr")
    d = host.root / "dc" / "dns" / name
    return d, (d / "addr").read_text().strip()


def _bind_both(addr: str) -> None:
    """Bind a TCP and a UDP socket there, as a new server would, and let go: raises OSError
    while anything listens there (SO_REUSEADDR on TCP, as servers set it, lets connections
    closing from the old server's side linger)."""
    host, port = addr.rsplit(":", 1)
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, int(port)))
                s.listen()
            else:
                s.bind((host, int(port)))


def test_the_issues_example(host, names):
    d, addr = _dns(host, names("d"))
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0")  # as bound
    host.sh(f"echo 'db.cluster. A 10.0.0.7' > {d}/set")
    assert short(addr, "db.cluster.") == ["10.0.0.7"]
    assert short(addr, "db.cluster.", tcp=True) == ["10.0.0.7"]
    assert json.loads((d / "stat").read_text())["queries"] == 2


def test_every_type_answers_and_records_lists_them(host, names):
    d, addr = _dns(host, names("d"))
    host.sh(f"""printf '%s\\n' 'db.cluster. 30 A 10.0.0.7' 'db.cluster. A 10.0.0.8' 'db.cluster. AAAA fd00::7' \
        'www.cluster. CNAME db.cluster.' '_pg._tcp.cluster. SRV 10 5 5432 db.cluster.' \
        'db.cluster. TXT "role=primary" v2' 'cluster. MX 10 db.cluster.' > {d}/set""")
    assert sorted(short(addr, "db.cluster.")) == ["10.0.0.7", "10.0.0.8"]
    assert short(addr, "db.cluster.", "AAAA") == ["fd00::7"]
    assert short(addr, "www.cluster.") == ["db.cluster.", "10.0.0.7", "10.0.0.8"]
    assert short(addr, "_pg._tcp.cluster.", "SRV") == ["10 5 5432 db.cluster."]
    assert short(addr, "db.cluster.", "TXT") == ['"role=primary" "v2"']
    assert short(addr, "cluster.", "MX") == ["10 db.cluster."]
    full = dig(addr, "_pg._tcp.cluster.", "SRV")
    assert "flags: qr aa" in full and "ADDITIONAL: 3" in full  # authoritative; the target's addresses
    assert (d / "records").read_text() == (
        "_pg._tcp.cluster. 60 IN SRV 10 5 5432 db.cluster.\n"
        "cluster. 60 IN MX 10 db.cluster.\n"
        "db.cluster. 30 IN A 10.0.0.7\n"
        "db.cluster. 60 IN A 10.0.0.8\n"
        "db.cluster. 60 IN AAAA fd00::7\n"
        'db.cluster. 60 IN TXT "role=primary" "v2"\n'
        "www.cluster. 60 IN CNAME db.cluster.\n")


def test_set_replaces_unset_removes_and_unknown_names_are_nxdomain(host, names):
    d, addr = _dns(host, names("d"))
    host.sh(f"echo 'db.cluster. A 10.0.0.7' > {d}/set; echo 'db.cluster. TXT x' > {d}/set")
    host.sh(f"echo 'db.cluster. A 10.0.0.9' > {d}/set")  # the A records replaced, the TXT kept
    assert short(addr, "db.cluster.") == ["10.0.0.9"] and short(addr, "db.cluster.", "TXT") == ['"x"']
    assert "status: NOERROR" in dig(addr, "db.cluster.", "AAAA")  # held, with no such record
    assert "status: NXDOMAIN" in dig(addr, "nobody.cluster.")
    host.sh(f"echo 'db.cluster. TXT' > {d}/unset")
    assert (d / "records").read_text() == "db.cluster. 60 IN A 10.0.0.9\n"
    host.sh(f"echo db.cluster > {d}/unset")
    assert "status: NXDOMAIN" in dig(addr, "db.cluster.")
    r = host.sh(f"echo db.cluster. > {d}/unset", check=False)  # refused at write(2): bash hears it
    assert r.returncode != 0 and "No such file or directory" in r.stderr
    assert (d / "error").read_text() == "unset: no records for db.cluster. (ENOENT)\n"


def test_a_bad_record_is_einval_with_the_line_and_changes_nothing(host, names):
    d, addr = _dns(host, names("d"))
    host.sh(f"echo 'db.cluster. A 10.0.0.7' > {d}/set")
    r = host.sh(f"printf 'ok.cluster. A 10.0.0.1\\ndb.cluster. A 10.0.0\\n' > {d}/set", check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert (d / "error").read_text() == ("set: line 2: A wants an IPv4 address, not '10.0.0': "
                                         "'db.cluster. A 10.0.0'; nothing was set (EINVAL)\n")
    assert (d / "records").read_text() == "db.cluster. 60 IN A 10.0.0.7\n"  # ok.cluster. not set either
    assert short(addr, "db.cluster.") == ["10.0.0.7"]
    for bad in ("'x. PTR y.'", "'x. CNAME y.' 'x. A 1.2.3.4'", "localhost:53"):
        file = "addr" if bad == "localhost:53" else "set"
        r = host.sh(f"printf '%s\\n' {bad} > {d}/{file}", check=False)
        assert r.returncode != 0 and "Invalid argument" in r.stderr, bad
    assert (d / "addr").read_text().strip() == addr and short(addr, "db.cluster.") == ["10.0.0.7"]


def test_a_port_in_use_is_eaddrinuse(host, names):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = "127.0.0.1:%d" % taken.getsockname()[1]
        host.sh(f"mkdir dc/dns/{names('d')}")
        d = host.root / "dc" / "dns" / names("d")
        r = host.sh(f"echo {busy} > {d}/addr", check=False)
        assert r.returncode != 0 and "Address already in use" in r.stderr
        assert (d / "error").read_text() == f"addr: {busy} is in use (EADDRINUSE)\n"
        assert json.loads((d / "stat").read_text())["listening"] is False
    # Refused, nothing changed: it listens where it is told next.  (Not at the freed port:
    # any process's outgoing TCP connection may hold it by then.)
    host.sh(f"echo 127.0.0.1:0 > {d}/addr")
    assert json.loads((d / "stat").read_text())["listening"] is True


def test_writing_addr_again_moves_the_server(host, names):
    d, first = _dns(host, names("d"))
    host.sh(f"echo 'db.cluster. A 10.0.0.7' > {d}/set")
    host.sh(f"echo 127.0.0.1:0 > {d}/addr")
    second = (d / "addr").read_text().strip()
    assert second != first and short(second, "db.cluster.") == ["10.0.0.7"]
    _bind_both(first)  # the old port is free once the write has returned


def test_rmdir_stops_the_server_and_frees_the_port(host, names):
    d, addr = _dns(host, names("d"))
    host.sh(f"echo 'db.cluster. A 10.0.0.7' > {d}/set")
    assert short(addr, "db.cluster.") == ["10.0.0.7"]
    with socket.create_connection((addr.split(":")[0], int(addr.split(":")[1]))) as open_tcp:
        host.sh(f"rmdir {d}")
        _bind_both(addr)  # both listeners closed once rmdir has returned
        open_tcp.settimeout(10)
        assert open_tcp.recv(1) == b""  # and the open connection closed too
    wait_for(lambda: names("d") not in host.sh("ls dc/dns").stdout.split(), what="the listing to drop it")


def test_a_zone_of_many_lines_in_small_writes(host, names, tmp_path):
    d, addr = _dns(host, names("d"))
    zone = tmp_path / "zone"
    zone.write_text("".join(f"h{i}.cluster. A 10.0.{i // 256}.{i % 256}\n" for i in range(5000)))
    host.sh(f"dd if={zone} of={d}/set bs=1000 status=none")  # lines cut across writes
    assert (d / "records").read_text().count("\n") == 5000
    assert short(addr, "h4999.cluster.") == ["10.0.19.135"]
    bad = zone.read_text().replace("h2500.cluster. A", "h2500.cluster. B")
    zone.write_text(bad.replace("h", "n"))
    r = host.sh(f"dd if={zone} of={d}/set bs=1000 status=none", check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert "set: line 2501: type 'B'" in (d / "error").read_text()
    assert (d / "records").read_text().count("\n") == 5000  # none of the new ones set
