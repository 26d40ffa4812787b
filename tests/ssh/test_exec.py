"""``ssh HOST COMMAND`` with the real OpenSSH client: the seed's commands over the tree."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import chan_stat, feed_until_held, rss_mb, wait_for  # noqa: E402


def test_ls_and_mkdir_and_rmdir(client, names):
    h, c = client.host_id, names("chan")
    assert client.ssh("ls /").stdout.split() == [h]
    assert client.ssh(f"ls /{h}").stdout.split() == ["help", "dc", "sys", "fs"]
    assert client.ssh(f"mkdir /{h}/dc/chan/{c}").returncode == 0
    assert (client.daemon.root / "dc" / "chan" / c).is_dir()  # made, as the mount shows
    long = client.ssh(f"ls -l /{h}/dc/chan/{c}").stdout.splitlines()
    assert any(line.startswith("--w--w--w-") and line.endswith(" send") for line in long), long
    assert client.ssh(f"rmdir /{h}/dc/chan/{c}").returncode == 0
    assert c not in os.listdir(client.daemon.root / "dc" / "chan")  # (the kernel caches lookups 1 s)


def test_cat_recv_blocks_prints_one_message_and_exits_0(client, names):
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    assert client.ssh(f"mkdir /{h}/dc/chan/{c}").returncode == 0
    assert client.ssh(f"echo 0 > /{h}/dc/chan/{c}/cap").returncode == 0
    assert (chan / "cap").read_text().strip() == "0"
    reader = client.popen(f"cat /{h}/dc/chan/{c}/recv", stdout=subprocess.PIPE)
    wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, what="the reader to block")
    sent = client.ssh(f"cat > /{h}/dc/chan/{c}/send", input="hello\n")
    assert sent.returncode == 0, sent.stderr
    assert reader.communicate(timeout=15)[0] == b"hello\n"
    assert reader.returncode == 0
    assert chan_stat(chan)["received"] == 1


def test_a_big_message_both_ways(client, names):
    h, c = client.host_id, names("chan")
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 1 > dc/chan/{c}/cap")
    message = os.urandom(8 * 1024 * 1024)
    assert client.ssh(f"cat > /{h}/dc/chan/{c}/send", input=message).returncode == 0
    got = client.ssh(f"cat /{h}/dc/chan/{c}/recv", input=b"")
    assert got.returncode == 0 and got.stdout == message


def test_refusals_exit_1_with_the_elements_line(client, names):
    h, c = client.host_id, names("chan")
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 3 > dc/chan/{c}/cap")
    again = client.ssh(f"echo 4 > /{h}/dc/chan/{c}/cap")
    assert again.returncode == 1
    line = (client.daemon.root / "dc" / "chan" / c / "error").read_text().strip()
    assert line.endswith("(EBUSY)") and line in again.stderr
    assert client.ssh(f"cat /{h}/dc/chan/{c}/cap").stdout.strip() == "3"  # unchanged
    bad = client.ssh(f"echo x > /{h}/dc/chan/{names('other')}/cap")
    assert bad.returncode == 1 and "(ENOENT)" in bad.stderr
    name = client.ssh(f"mkdir /{h}/dc/chan/.hidden")
    assert name.returncode == 1 and "(EINVAL)" in name.stderr


def test_what_is_not_offered_is_refused_clearly(client):
    for command, says in [("uname -a", "no such command"), ("ls / | head", "no shell"),
                          ("cat /etc/passwd; id", "no shell"), ("ls -z /", "unknown option"),
                          ("echo 'unbalanced", "cannot split"), ("ls / > /x", "only cat and echo")]:
        r = client.ssh(command)
        assert r.returncode == 2 and says in r.stderr, (command, r.stderr)
    shell = subprocess.run(client.ssh_argv("", extra=("-T",))[:-1], input="id\n", capture_output=True,
                           text=True, timeout=30)
    assert shell.returncode == 2 and "no shell" in shell.stderr
    assert client.ssh("help").stdout.startswith("Commands (paths are circuit tree paths")


def test_a_process_through_exec(client, names):
    h, p = client.host_id, names("proc")
    assert client.ssh(f"mkdir /{h}/dc/proc/{p}").returncode == 0
    run = json.dumps({"path": "/bin/echo", "args": ["from", "ssh"]})
    assert client.ssh(f"echo '{run}' > /{h}/dc/proc/{p}/run").returncode == 0
    assert json.loads(client.ssh(f"cat /{h}/dc/proc/{p}/waitexit").stdout)["exit"] == 0
    assert client.ssh(f"cat /{h}/dc/proc/{p}/stdout").stdout == "from ssh\n"
    stat = client.ssh(f"stat /{h}/dc/proc/{p}/stdout").stdout
    assert f"File: /{h}/dc/proc/{p}/stdout" in stat and "regular file" in stat


def test_a_killed_reader_takes_nothing(client, names):
    """kill -9 of an ssh client blocked in cat recv: its wait is cancelled, the message
    goes to the next reader."""
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 0 > dc/chan/{c}/cap")
    for i in range(3):
        reader = client.popen(f"cat /{h}/dc/chan/{c}/recv", stdout=subprocess.PIPE)
        wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 1, what="the reader to block")
        reader.send_signal(signal.SIGKILL)
        reader.wait(10)
        wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 0, what="the dead reader's wait to go")
        sender = subprocess.Popen(["bash", "-c", f"echo kept{i} > {chan}/send"])
        wait_for(lambda: chan_stat(chan)["senders_waiting"] == 1, what="the sender to wait for a reader")
        assert client.ssh(f"cat /{h}/dc/chan/{c}/recv").stdout == f"kept{i}\n"
        assert sender.wait(10) == 0


def test_a_killed_writer_sends_nothing(client, names):
    """kill -9 of ssh blocked in cat > send: the send is withdrawn."""
    h, c = client.host_id, names("chan")
    chan = client.daemon.root / "dc" / "chan" / c
    client.daemon.sh(f"mkdir dc/chan/{c} && echo 0 > dc/chan/{c}/cap")
    writer = subprocess.Popen(client.ssh_argv(f"cat > /{h}/dc/chan/{c}/send"), stdin=subprocess.PIPE)
    writer.stdin.write(b"gave-up\n")
    writer.stdin.close()
    wait_for(lambda: chan_stat(chan)["senders_waiting"] == 1, what="the writer to block")
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    wait_for(lambda: chan_stat(chan)["senders_waiting"] == 0, what="the send to be withdrawn")
    kept = subprocess.Popen(["bash", "-c", f"echo kept > {chan}/send"])
    assert (chan / "recv").read_text() == "kept\n"
    assert kept.wait(10) == 0


def test_a_stream_into_a_control_file_is_bounded(client, names):
    """1 GB of a run command that never ends: refused at the bound, nothing started."""
    h, p = client.host_id, names("proc")
    client.daemon.sh(f"mkdir dc/proc/{p}")
    ssh = " ".join(f"'{a}'" for a in client.ssh_argv(f"cat > /{h}/dc/proc/{p}/run"))
    r = subprocess.run(["bash", "-c", f"(printf '{{\"path\": \"'; head -c 1G /dev/zero | tr '\\0' a) | {ssh}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "(E2BIG)" in r.stderr, r.stderr
    assert json.loads((client.daemon.root / "dc" / "proc" / p / "stat").read_text())["cmd"] is None  # nothing ran


def test_a_connection_holds_a_bounded_number_of_files(tmp_path):
    """Blocked readers over one multiplexed connection, past --ssh-max-files: the next is
    refused with EMFILE, the others still get their messages, and room comes back."""
    from ssh_clients import ssh_daemon
    c = ssh_daemon(tmp_path, "--ssh-max-files", "3")
    control = ("-o", f"ControlPath={tmp_path}/mux")
    mux = control + ("-o", "ControlMaster=no")
    h, chan = c.host_id, c.daemon.root / "dc" / "chan" / "c"
    try:
        master = c.ssh_argv("", extra=control + ("-M", "-N", "-f", "-o", "ControlPersist=60"))[:-1]
        subprocess.run(master, check=True, timeout=30, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c.daemon.sh("mkdir dc/chan/c && echo 0 > dc/chan/c/cap")
        readers = [subprocess.Popen(c.ssh_argv(f"cat /{h}/dc/chan/c/recv", extra=mux),
                                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) for _ in range(3)]
        wait_for(lambda: chan_stat(chan)["receivers_waiting"] == 3, what="three readers to block")
        over = c.ssh(f"cat /{h}/dc/chan/c/recv", extra=mux)
        assert over.returncode == 1 and "(EMFILE)" in over.stderr, over.stderr
        for i in range(3):
            subprocess.run(["bash", "-c", f"echo m{i} > {chan}/send"], check=True, timeout=15)
        got = sorted(r.communicate(timeout=15)[0].decode() for r in readers)
        assert got == ["m0\n", "m1\n", "m2\n"]
        assert c.ssh(f"ls /{h}/dc/chan/c", extra=mux).returncode == 0  # room again
    finally:
        subprocess.run(["ssh", "-o", f"ControlPath={tmp_path}/mux", "-O", "exit", "x"], capture_output=True)
        c.daemon.stop()


def test_input_faster_than_the_command_takes_it_is_held_back(client, names):
    """A process that never reads its stdin, fed through ssh without end: the host stops
    opening the channel's window, so the ssh client blocks instead of the host growing."""
    h, p = client.host_id, names("proc")
    client.daemon.sh(f"mkdir dc/proc/{p} && echo '{{\"path\": \"/bin/sleep\", \"args\": [\"60\"]}}' > dc/proc/{p}/run")
    feeder = subprocess.Popen(client.ssh_argv(f"stdin /{h}/dc/proc/{p}"), stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent = feed_until_held(feeder)
    rss = rss_mb(client.daemon.proc.pid)
    try:
        assert sent < 64 << 20, f"{sent >> 20} MiB taken from a reader-less stdin"
        assert rss < 200, f"the host holds {rss} MiB"
    finally:
        client.daemon.sh(f"echo KILL > dc/proc/{p}/signal")
        feeder.kill()
        feeder.wait(10)
