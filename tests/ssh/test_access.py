"""Who gets in (public keys only, the file re-read) and what they reach (the tree only)."""
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import wait_for  # noqa: E402
from ssh_clients import keypair, ssh_daemon  # noqa: E402


def test_only_listed_public_keys_get_in_and_changes_are_read(client, tmp_path):
    assert client.ssh("true").returncode == 0
    other = keypair(tmp_path / "other")
    refused = client.ssh("true", key=other)
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    keys = client.dir / "authorized_keys"
    before = keys.read_text()
    keys.write_text(before + (tmp_path / "other.pub").read_text())  # added: no restart
    try:
        assert client.ssh("true", key=other).returncode == 0
    finally:
        keys.write_text(before)
    assert client.ssh("true", key=other).returncode == 255  # revoked as soon as it is gone


def test_passwords_and_keyboard_interactive_are_not_offered(client):
    for method in ("password", "keyboard-interactive"):
        r = client.ssh("true", extra=("-o", f"PreferredAuthentications={method}",
                                      "-o", "PubkeyAuthentication=no"))
        assert r.returncode == 255 and "Permission denied (publickey)" in r.stderr, r.stderr


def test_the_host_key_is_kept_and_its_fingerprint_logged(tmp_path):
    c = ssh_daemon(tmp_path)
    try:
        assert c.ssh("true").returncode == 0  # known_hosts now holds the key
        shown = re.search(r"host key (SHA256:\S+?);", c.daemon.log.read_text()).group(1)
        listed = subprocess.run(["ssh-keygen", "-lf", str(c.daemon.data / "ssh_host_ed25519_key")],
                                capture_output=True, text=True, check=True).stdout
        assert shown in listed and "ED25519" in listed
        assert oct(os.stat(c.daemon.data / "ssh_host_ed25519_key").st_mode & 0o777) == "0o600"
    finally:
        c.daemon.stop()
    again = ssh_daemon(tmp_path)  # same DATA: the same key, so strict checking still passes
    try:
        r = again.ssh("true", extra=("-o", "StrictHostKeyChecking=yes"))
        assert r.returncode == 0, r.stderr
    finally:
        again.daemon.stop()


def test_a_client_hanging_up_is_not_logged_as_an_error(tmp_path):
    """OpenSSH ends every session with "disconnected by application" (code 11): the log
    said "Got remote error" at error level for each command an operator ran."""
    c = ssh_daemon(tmp_path)
    try:
        for _ in range(3):
            assert c.ssh("true").returncode == 0
        wait_for(lambda: c.daemon.log.read_text().count("the client hung up") == 3,
                 what="the three goodbyes to be logged")
        assert "Got remote error" not in c.daemon.log.read_text()
    finally:
        c.daemon.stop()


def test_hostile_paths_stay_inside_the_tree(client, tmp_path):
    h = client.host_id
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    fs_root = client.daemon.data / "fs"
    os.symlink(tmp_path, fs_root / "escape")
    os.symlink(secret, fs_root / "leaf")
    try:
        for path in ["/etc/passwd", "/../../etc/passwd", f"/{h}/../../etc/passwd",
                     f"/{h}/fs/../../../{secret}", f"/{h}/fs/escape/secret", f"{h}/fs/escape/secret",
                     f"/{h}/fs/%2e%2e/secret", f"/{h}/dc/../../{h}/fs/escape/secret"]:
            r = client.ssh(f"cat '{path}'")
            assert r.returncode == 1 and "outside" not in r.stdout, (path, r.stdout, r.stderr)
            got = client.sftp(f"get '{path}' {tmp_path}/got\n")
            assert got.returncode != 0 and not (tmp_path / "got").exists(), (path, got.stdout)
        # Writing through the link is refused too, and so is making one.
        assert client.ssh(f"echo x > /{h}/fs/escape/secret").returncode == 1
        assert client.ssh(f"echo x > /{h}/fs/leaf").returncode == 1
        assert client.ssh(f"echo x >> /{h}/fs/leaf").returncode == 1
        (tmp_path / "x").write_text("x\n")
        assert client.sftp(f"put {tmp_path}/x /{h}/fs/leaf\n").returncode != 0
        assert secret.read_text() == "outside\n"
        made = client.sftp(f"symlink /etc /{h}/fs/etc\n")
        assert made.returncode != 0 and not os.path.lexists(fs_root / "etc")
        # Odd bytes in a name are a name like any other: not found, nothing escapes.
        argv = client.ssh_argv("")[:-1] + [b"cat /" + h.encode() + b"/fs/\xff\xfe"]
        odd = subprocess.run(argv, capture_output=True, timeout=30)
        assert odd.returncode == 1 and b"(ENOENT)" in odd.stderr, odd.stderr
        assert client.ssh("realpath").returncode == 2  # not a command here
        assert client.sftp("cd /../..\npwd\n").stdout.strip().endswith("Remote working directory: /")
    finally:
        os.unlink(fs_root / "escape")
        os.unlink(fs_root / "leaf")


def test_elements_on_another_host_through_this_hosts_ssh(ssh_pair, tmp_path):
    a, b = ssh_pair
    c = "from-a"
    chan = b.root / "dc" / "chan" / c
    assert a.ssh(f"mkdir /{b.host_id}/dc/chan/{c}").returncode == 0
    assert a.ssh(f"echo 0 > /{b.host_id}/dc/chan/{c}/cap").returncode == 0
    reader = a.popen(f"cat /{b.host_id}/dc/chan/{c}/recv", stdout=subprocess.PIPE)
    wait_for(lambda: '"receivers_waiting": 1' in (chan / "stat").read_text(), what="the reader to block")
    subprocess.run(["bash", "-c", f"echo across > {chan}/send"], check=True, timeout=15)
    assert reader.communicate(timeout=15)[0] == b"across\n"
    # A reader on A's SSH killed while blocked on B's channel takes nothing.
    reader = a.popen(f"cat /{b.host_id}/dc/chan/{c}/recv", stdout=subprocess.PIPE)
    wait_for(lambda: '"receivers_waiting": 1' in (chan / "stat").read_text(), what="the reader to block")
    reader.kill()
    reader.wait(10)
    wait_for(lambda: '"receivers_waiting": 0' in (chan / "stat").read_text(), what="its wait to go")
    sender = subprocess.Popen(["bash", "-c", f"echo kept > {chan}/send"])
    got = a.sftp(f"get /{b.host_id}/dc/chan/{c}/recv {tmp_path}/kept\n")
    assert got.returncode == 0 and (tmp_path / "kept").read_text() == "kept\n"
    assert sender.wait(10) == 0
