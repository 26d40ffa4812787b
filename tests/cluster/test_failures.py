"""Hosts that die, leave, or are refused: seen by the others, never a hang."""
import errno
import json
import signal
import ssl
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import members, start_cluster
from helpers import chan_stat, make_ca, make_client, reading, start_daemon, wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _events(host):
    """Start reading sys/events; returns the reading process."""
    return subprocess.Popen(["cat", str(host.root / "sys/events")], stdout=subprocess.PIPE)


def _next_event(reader, timeout=10):
    import select as _select
    ready, _, _ = _select.select([reader.stdout], [], [], timeout)
    assert ready, "no membership event came"
    return json.loads(reader.stdout.readline())


def test_kill_is_noticed_and_calls_fail_with_ehostdown(tmp_path):
    a, b, c = start_cluster(tmp_path, 3)
    try:
        a.sh("mkdir dc/chan/w && echo 0 > dc/chan/w/cap")
        blocked = subprocess.Popen(["cat", str(b.mount / a.host_id / "dc/chan/w/recv")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        watchers = [_events(b), _events(c)]
        wait_for(lambda: chan_stat(a.root / "dc/chan/w")["receivers_waiting"] == 1, what="B's reader to wait")
        for h, w in zip((b, c), watchers):
            wait_for(lambda: reading(w.pid, h.root / "sys/events"), what="the watchers to read")
        a.proc.kill()
        for w in watchers:
            assert _next_event(w) == {"left": a.host_id, "reason": "failed"}
            w.kill()
        _, err = blocked.communicate(timeout=10)
        assert blocked.returncode == 1 and b"Host is down" in err
        for h in (b, c):
            assert a.host_id not in members(h)
        r = b.sh(f"ls {b.mount}/{a.host_id}", check=False)
        assert r.returncode != 0
    finally:
        for h in (a, b, c):
            h.stop()


def test_ls_keeps_answering_while_a_host_dies(tmp_path):
    a, b = start_cluster(tmp_path, 2)
    try:
        lister = subprocess.Popen(["bash", "-c", f"for i in $(seq 1 300); do ls {b.mount} > /dev/null || exit 1;"
                                   f" ls {b.root}/dc/chan > /dev/null || exit 1; sleep 0.01; done"])
        time.sleep(0.3)
        a.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        a.proc.kill()
        assert lister.wait(60) == 0
    finally:
        a.stop()
        b.stop()


def test_graceful_stop_is_a_leave(tmp_path):
    a, b = start_cluster(tmp_path, 2)
    try:
        w = _events(b)
        wait_for(lambda: reading(w.pid, b.root / "sys/events"), what="the watcher to read")
        a.stop()
        assert _next_event(w) == {"left": a.host_id, "reason": "left"}
        w.kill()
        wait_for(lambda: members(b) == [b.host_id], 5, what="the host to disappear")
    finally:
        b.stop()


def test_a_restarted_host_is_a_new_member(tmp_path):
    a, b = start_cluster(tmp_path, 2)
    try:
        old = b.host_id
        b.stop()
        again = start_daemon(tmp_path / "h1", "--ca", str(tmp_path / "ca"), "-j", a.url)
        assert again.host_id != old
        wait_for(lambda: members(a) == sorted([a.host_id, again.host_id]), 10, what="the new member")
        again.stop()
    finally:
        a.stop()


def test_another_cas_host_cannot_join(tmp_path):
    a = start_daemon(tmp_path / "a", "--ca", str(make_ca(tmp_path / "ca1")))
    try:
        other_ca = make_ca(tmp_path / "ca2")
        intruder = start_daemon(tmp_path / "b", "--ca", str(other_ca), "-j", a.url, wait=False)
        assert intruder.proc.wait(30) != 0
        said = intruder.log.read_text()
        assert "could not start: the TLS handshake failed" in said and "certificate verify failed" in said
        wait_for(lambda: "TLS handshake with" in a.log.read_text(), what="A to log the refusal")
        assert members(a) == [a.host_id]
    finally:
        a.stop()


def _tls(tmp_path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(tmp_path / "a/data/ca/ca.pem"))
    ctx.check_hostname = False
    return ctx


def _assert_refused(ctx: ssl.SSLContext, port: int) -> None:
    """The handshake fails, or (TLS 1.3) the connection is closed before PB says anything."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"\x05\x82pb\x00")
                if not s.recv(100):
                    raise ConnectionResetError("closed")


def _port(url):
    return int(url.split(":")[2].split("/")[0])


def test_plain_tcp_and_certificateless_tls_get_nothing(tmp_path):
    a = start_daemon(tmp_path / "a", mount=False)
    try:
        port = _port(a.url)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"\x05\x82pb\x00")  # a PB dialect choice, in the clear
            try:
                data = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                data = b""
            assert b"pb" not in data
        _assert_refused(_tls(tmp_path), port)  # TLS, but no client certificate
    finally:
        a.stop()


def test_expired_certificate_is_refused(tmp_path):
    import datetime
    from circuit.tls import authority
    a = start_daemon(tmp_path / "a", mount=False)
    try:
        ca = authority.load(str(tmp_path / "a/data/ca"))
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        creds = authority.issue_host(ca, "X00000000000000ee", days=1, not_before=old)
        (tmp_path / "k.pem").write_bytes(creds.key_pem)
        (tmp_path / "c.pem").write_bytes(creds.cert_pem)
        ctx = _tls(tmp_path)
        ctx.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
        _assert_refused(ctx, _port(a.url))
    finally:
        a.stop()


def test_a_host_with_a_delegated_signer_joins_through_any_member(tmp_path):
    """`circuit ca issue`: a host without the CA key certifies itself; joining via the second host."""
    import sys
    a, b = start_cluster(tmp_path, 2)
    try:
        subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "issue", "--ca",
                        str(tmp_path / "ca"), str(tmp_path / "signer")], check=True, capture_output=True)
        assert not (tmp_path / "signer" / "ca.key").exists()
        c = start_daemon(tmp_path / "c", "--ca", str(tmp_path / "signer"), "-j", b.url)
        try:
            ids = sorted(h.host_id for h in (a, b, c))
            for h in (a, b, c):
                wait_for(lambda: members(h) == ids, 10, what="all three to see all three")
            a.sh("mkdir dc/chan/sig && echo 1 > dc/chan/sig/cap")
            c.sh(f"echo signed > {c.mount}/{a.host_id}/dc/chan/sig/send")
            assert a.sh("cat dc/chan/sig/recv").stdout == "signed\n"
        finally:
            c.stop()
    finally:
        a.stop()
        b.stop()


def test_a_call_after_a_host_is_back_does_not_wait_on_an_older_dial(tmp_path):
    """A dial begun while a host was cut off (here: to a listener that never answers) may
    outlive the cut; calls made once the membership says the host is back dial afresh."""
    a = start_daemon(tmp_path / "a", "--ca", str(make_ca(tmp_path / "ca")), mount=False)
    stalled = socket.socket()
    try:
        make_client(tmp_path / "ca", tmp_path / "me", "tester")
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(4)  # connects, then silence: the TLS handshake is never answered
        stalled_url = f"circuit://127.0.0.1:{stalled.getsockname()[1]}/{a.host_id}"
        out = subprocess.run([sys.executable, str(HERE / "dial_after_back.py"), str(tmp_path / "me"),
                              stalled_url, a.url], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        assert lines[0] == {"second": "dir", "first_pending": True}, lines
        assert lines[1] == {"first": errno.EHOSTDOWN}, lines  # the older dial still met its deadline
    finally:
        stalled.close()
        a.stop()
