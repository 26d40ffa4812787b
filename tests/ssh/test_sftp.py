"""The real OpenSSH sftp and scp against the tree: blocking gets, one message per put."""
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import chan_stat, wait_for  # noqa: E402


def test_a_session_as_the_issue_shows_it(client, names, tmp_path):
    h, c = client.host_id, names("chan")
    (tmp_path / "cap.txt").write_text("0\n")
    r = client.sftp(f"ls /\ncd /{h}/dc/chan\nmkdir {c}\nls\nput {tmp_path}/cap.txt /{h}/dc/chan/{c}/cap\n"
                    f"get /{h}/dc/chan/{c}/cap {tmp_path}/cap.back\n")
    assert r.returncode == 0, r.stderr
    assert h in r.stdout and c in r.stdout
    assert (tmp_path / "cap.back").read_text().strip() == "0"
    assert (client.daemon.root / "dc" / "chan" / c / "cap").read_text().strip() == "0"
    assert client.sftp(f"rmdir /{h}/dc/chan/{c}\n").returncode == 0
    assert c not in os.listdir(client.daemon.root / "dc" / "chan")


def test_get_recv_blocks_and_reads_one_message(client, names, tmp_path):
    """Two gets on one connection, each a whole message, whatever their size (OpenSSH
    pipelines reads past a message's end: each handle still reads only its own)."""
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 0 > dc/chan/{c}/cap")
    big = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(big)
    batch = tmp_path / "gets"
    batch.write_text(f"get /{h}/dc/chan/{c}/recv {tmp_path}/one\nget /{h}/dc/chan/{c}/recv {tmp_path}/two\n")
    getter = subprocess.Popen(client.sftp_argv(batch), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, what="the get to block")
    subprocess.run(["bash", "-c", f"echo small > {chan}/send"], check=True, timeout=15)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1 and chan_stat(chan)["received"] == 1,
             what="the second get to block")
    subprocess.run(["bash", "-c", f"cat {tmp_path}/big > {chan}/send"], check=True, timeout=15)
    out, err = getter.communicate(timeout=30)
    assert getter.returncode == 0, err
    assert (tmp_path / "one").read_text() == "small\n"
    assert (tmp_path / "two").read_bytes() == big
    assert chan_stat(chan)["received"] == 2 and chan_stat(chan)["len"] == 0


def test_a_put_into_send_is_one_message(client, names, tmp_path):
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 2 > dc/chan/{c}/cap")
    message = os.urandom(1024 * 1024 + 5)
    (tmp_path / "m").write_bytes(message)
    assert client.sftp(f"put {tmp_path}/m /{h}/dc/chan/{c}/send\n").returncode == 0
    assert chan_stat(chan)["len"] == 1
    assert (chan / "recv").read_bytes() == message


def test_refusals_reach_sftp_and_change_nothing(client, names, tmp_path):
    h, c = client.host_id, names("chan")
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 1 > dc/chan/{c}/cap")
    (tmp_path / "cap").write_text("5\n")
    r = client.sftp(f"put {tmp_path}/cap /{h}/dc/chan/{c}/cap\n")
    assert r.returncode != 0
    assert (client.daemon.root / "dc" / "chan" / c / "cap").read_text().strip() == "1"
    assert (client.daemon.root / "dc" / "chan" / c / "error").read_text().strip().endswith("(EBUSY)")
    assert "not found" in client.sftp(f"get /{h}/dc/chan/{names('none')}/recv {tmp_path}/x\n").stderr
    assert client.sftp(f"mkdir /{h}/dc/chan/bad/name\n").returncode != 0


def test_a_killed_get_takes_nothing(client, names, tmp_path):
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 0 > dc/chan/{c}/cap")
    batch = tmp_path / "get"
    batch.write_text(f"get /{h}/dc/chan/{c}/recv {tmp_path}/lost\n")
    getter = subprocess.Popen(client.sftp_argv(batch), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, what="the get to block")
    os.killpg(getter.pid, signal.SIGKILL)  # sftp and the ssh it runs
    getter.wait(10)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 0, what="the dead get's wait to go")
    sender = subprocess.Popen(["bash", "-c", f"echo kept > {chan}/send"])
    assert (chan / "recv").read_text() == "kept\n"
    assert sender.wait(10) == 0
    assert not (tmp_path / "lost").exists() or (tmp_path / "lost").read_text() == ""


def test_sftp_exits_at_once_with_sendenv(client):
    """OpenSSH sends LANG (SendEnv) on the sftp channel too; the session must still end."""
    r = client.sftp("ls /\n", timeout=20)
    assert r.returncode == 0 and client.host_id in r.stdout


def test_scp_both_ways_into_fs_then_run_it(client, names, tmp_path):
    h, p = client.host_id, names("proc")
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool ran with \"$@\"\n")
    tool.chmod(0o755)
    up = client.scp(str(tool), f"me@127.0.0.1:/{h}/fs/{p}.sh")
    assert up.returncode == 0, up.stderr
    assert (client.daemon.data / "fs" / f"{p}.sh").read_text() == tool.read_text()
    down = client.scp(f"me@127.0.0.1:/{h}/fs/{p}.sh", str(tmp_path / "back.sh"))
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "back.sh").read_text() == tool.read_text()
    client.ssh(f"mkdir /{h}/dc/proc/{p}")
    run = client.ssh(f"echo '{{\"path\": \"/{h}/fs/{p}.sh\", \"args\": [\"x\"]}}' > /{h}/dc/proc/{p}/run")
    assert run.returncode == 0, run.stderr
    client.ssh(f"cat /{h}/dc/proc/{p}/waitexit")
    assert client.ssh(f"cat /{h}/dc/proc/{p}/stdout").stdout == "tool ran with x\n"
