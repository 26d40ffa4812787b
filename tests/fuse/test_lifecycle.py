"""Starting and stopping a host: the console script, the twistd plugin, clean unmounts."""
import errno
import json
import os
import re
import signal
import subprocess
import time

from helpers import is_mounted, reading, start_daemon, wait_for


def test_twistd_plugin_runs_the_host(tmp_path):
    d = start_daemon(tmp_path, plugin=True)
    try:
        assert re.fullmatch(r"circuit://127\.0\.0\.1:[1-9][0-9]*/X[0-9a-f]{16}", d.url)
        assert d.sh("cat sys/id").stdout.strip() == d.host_id
        assert d.sh("cat sys/url").stdout.strip() == d.url
        assert d.sh("cat sys/members").stdout.splitlines() == [d.url]
        stat = json.loads(d.sh("cat sys/stat").stdout)
        assert stat["id"] == d.host_id and set(stat["elements"]) == {"proc", "chan", "select", "dns", "subs"}
        # The requests the mount served, by kind: the three cats above, and this one's open.
        assert stat["requests"]["fuse read"] >= 3 and stat["requests"]["fuse open"] >= 4, stat
    finally:
        assert d.stop() in (0, -signal.SIGTERM)
    assert not is_mounted(d.mount)


def test_a_host_started_under_a_low_limit_of_open_files_raises_it(tmp_path):
    """Under a soft limit of 64 (hard 4096), 40 processes at once (three pipes each) would
    fail to spawn (EMFILE) from about the twelfth: the host raises its soft limit first."""
    d = start_daemon(tmp_path, prefix=("prlimit", "--nofile=64:4096", "--"))
    try:
        d.sh("for i in $(seq 40); do mkdir dc/proc/s$i && "
             "echo '{\"path\": \"/bin/sleep\", \"args\": [\"60\"]}' > dc/proc/s$i/run || exit 1; done")
        files = json.loads(d.sh("cat sys/stat").stdout)["files"]
        assert files["open"] > 64 + 40 and files["limit"] == 4096, files  # more than it was given
        assert all(json.loads(d.sh(f"cat dc/proc/s{i}/stat").stdout)["phase"] == "running" for i in range(1, 41))
        d.sh("for i in $(seq 40); do rmdir dc/proc/s$i; done")
    finally:
        assert d.stop() in (0, -signal.SIGTERM)


def test_a_host_out_of_open_files_says_so_and_changes_nothing(tmp_path):
    d = start_daemon(tmp_path, prefix=("prlimit", "--nofile=64:64", "--"))
    try:
        made = d.sh("for i in $(seq 40); do mkdir dc/proc/s$i && "
                    "echo '{\"path\": \"/bin/sleep\", \"args\": [\"60\"]}' > dc/proc/s$i/run || exit 1; done",
                    check=False)
        assert made.returncode == 1 and "Too many open files" in made.stderr, made.stderr
        refused = max(int(p.name[1:]) for p in (d.root / "dc" / "proc").iterdir())
        proc = d.root / "dc" / "proc" / f"s{refused}"
        assert (proc / "error").read_text() == "run: could not start /bin/sleep: Too many open files (EMFILE)\n"
        assert json.loads((proc / "stat").read_text())["phase"] == "created"  # nothing started
        d.sh("for p in dc/proc/*; do rmdir $p; done")
    finally:
        assert d.stop() in (0, -signal.SIGTERM)


def test_circuit_start_needs_no_plugin_discovery(tmp_path):
    """Under an editable install (pip install -e .) twistd's discovery does not see
    twisted/plugins/: circuit start hands twistd its service maker itself."""
    import sys
    code = ("import twisted.plugin as p; found = p.getPlugins; "
            "p.getPlugins = lambda i, package=None: iter(()) if i.__name__ == 'IServiceMaker' "
            "else found(i, package); "
            "from circuit.cli.main import main; main(['start', '--data', %r])" % str(tmp_path / "d"))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().startswith(b"circuit://"), proc.stderr.read1()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_each_start_is_a_new_host(tmp_path):
    first = start_daemon(tmp_path / "a")
    first.stop()
    second = start_daemon(tmp_path / "a")
    second.stop()
    assert first.host_id != second.host_id


def test_sigterm_unmounts_with_readers_blocked(tmp_path):
    d = start_daemon(tmp_path)
    d.sh("mkdir dc/chan/c dc/proc/p && echo 0 > dc/chan/c/cap && "
         "echo '{\"path\": \"/bin/sleep\", \"args\": [\"60\"]}' > dc/proc/p/run")
    readers = [subprocess.Popen(["cat", str(d.root / f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for f in ("dc/chan/c/recv", "dc/proc/p/waitexit", "dc/proc/p/stdout", "sys/events")]
    for r, f in zip(readers, ("dc/chan/c/recv", "dc/proc/p/waitexit", "dc/proc/p/stdout", "sys/events")):
        wait_for(lambda: reading(r.pid, d.root / f), what=f"a reader blocked on {f}")
    start = time.monotonic()
    assert d.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert time.monotonic() - start < 10
    assert not is_mounted(d.mount)
    for r in readers:
        r.wait(10)
        assert r.returncode != 0


def test_ctrl_c_on_the_foreground_daemon(tmp_path):
    d = start_daemon(tmp_path)
    reader = subprocess.Popen(["cat", str(d.root / "sys/events")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    wait_for(lambda: reading(reader.pid, d.root / "sys/events"), what="the reader to block")
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(10) in (0, -signal.SIGINT)
    wait_for(lambda: not is_mounted(d.mount), 5, what="the unmount")
    assert reader.wait(10) != 0


def test_stale_mount_from_a_killed_daemon_is_cleared(tmp_path):
    d = start_daemon(tmp_path)
    d.proc.kill()
    d.proc.wait(10)
    again = start_daemon(tmp_path, wait=False)  # same mount point, left "not connected"
    try:
        url = wait_for(lambda: (tmp_path / "data/url").exists() and (tmp_path / "data/url").read_text(),
                       30, what="the URL")
        # The URL says the host is ready, mount included: the tree is there at once.
        host_id = url.strip().rsplit("/", 1)[1]
        assert os.listdir(tmp_path / "mnt" / host_id)
        assert (tmp_path / "mnt" / host_id / "sys/id").read_text().strip() == host_id
    finally:
        again.stop()


def test_bad_starts_exit_nonzero_with_one_line(tmp_path):
    import sys
    for args in (["-j", "nonsense"], ["-m", "/proc/no-mount-here"], ["--ca", str(tmp_path / "no-ca")]):
        r = subprocess.run([sys.executable, "-m", "circuit.cli.main", "start", "--data", str(tmp_path / "d"),
                            *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode != 0, args
        said = r.stdout + r.stderr
        assert "Traceback" not in said and ("not a circuit URL" in said or "could not start" in said
                                            or "no cluster CA" in said), said[-500:]


def test_logs_go_to_a_pipe(tmp_path):
    """`circuit start ... 2>&1 | tee log` works: stderr may be a pipe."""
    import sys
    p = subprocess.Popen([sys.executable, "-m", "circuit.cli.main", "start", "--data", str(tmp_path / "d")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert p.stdout.readline().startswith(b"circuit://")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)
    said = p.stderr.read()
    assert b"circuit host circuit://" in said
    # Signalled the moment its URL showed, it still shut down cleanly (its handlers were in).
    assert b"Received SIGTERM, shutting down." in said


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")  # killed, not yet reaped
    except (FileNotFoundError, ProcessLookupError):
        return True


def _children(pid: int) -> list:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _cmdline(pid: int) -> list:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def _start_sleeper(d, name: str) -> int:
    d.sh(f"mkdir dc/proc/{name} && echo '{{\"path\": \"/bin/sleep\", \"args\": [\"300\"]}}' > dc/proc/{name}/run")
    pid = json.loads(d.sh(f"cat dc/proc/{name}/stat").stdout)["pid"]
    assert _cmdline(pid)[:2] == [b"/bin/sleep", b"300"]  # the program itself runs, no wrapper
    return pid


def test_a_host_killed_9_takes_its_processes_with_it(tmp_path):
    d = start_daemon(tmp_path)
    try:
        pid = _start_sleeper(d, "long")
    finally:
        d.stop(signal.SIGKILL)
    wait_for(lambda: _gone(pid), 10, what="the host's process to die with it")


def _keeper(d) -> int:
    keeper, = [p for p in _children(d.proc.pid) if b"keeper_process.py" in b" ".join(_cmdline(p))]
    return keeper


def test_the_hosts_processes_are_its_keepers_children(tmp_path):
    """Started by the keeper, whose few open descriptors make a spawn cost the same however
    many connections the host holds: not a descriptor of the host reaches the process."""
    d = start_daemon(tmp_path)
    try:
        pid = _start_sleeper(d, "long")
        assert pid in _children(_keeper(d))
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
        d.sh('mkdir dc/proc/fds && echo \'{"path": "/bin/ls", "args": ["/proc/self/fd"]}\' > dc/proc/fds/run')
        assert d.sh("cat dc/proc/fds/stdout").stdout.split() == ["0", "1", "2", "3"]  # 3: ls's own
        # An ignored signal stays ignored across exec: none of the keeper's (nor Python's) is.
        ignored = int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("SigIgn:")).split()[1], 16)
        for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
            assert not ignored & (1 << (signum - 1)), signum.name
    finally:
        assert d.stop() in (0, -signal.SIGTERM)
    assert _gone(pid)


_RUN_WRITER = """
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)  # a signal that asks the write to give up
fd = os.open(sys.argv[1], os.O_WRONLY)
print(os.write(fd, b'{"path": "/bin/echo", "args": ["once"]}\\n'), flush=True)
os.close(fd)
print("closed", flush=True)
"""


def test_a_run_whose_writer_gives_up_while_the_keeper_starts_it_is_made_and_said_so(tmp_path):
    """The keeper has the start and has not answered (stopped here) when the writer of
    `run` is interrupted: it hears that it was written, and the process starts once, with
    its command (it used to hear an error while the process ran without one)."""
    d = start_daemon(tmp_path)
    try:
        d.sh("mkdir dc/proc/p1")
        keeper = _keeper(d)
        writes = json.loads(d.sh("cat sys/stat").stdout)["requests"].get("fuse write", 0)
        os.kill(keeper, signal.SIGSTOP)
        try:
            import sys
            writer = subprocess.Popen([sys.executable, "-c", _RUN_WRITER, str(d.root / "dc/proc/p1/run")],
                                      stdout=subprocess.PIPE, text=True)
            wait_for(lambda: json.loads(d.sh("cat sys/stat").stdout)["requests"].get("fuse write", 0)
                     > writes, what="the write of run to reach the host")
            writer.send_signal(signal.SIGUSR1)
            assert writer.stdout.readline() == "40\n"  # answered while the keeper is stopped
        finally:
            os.kill(keeper, signal.SIGCONT)
        assert writer.stdout.readline() == "closed\n" and writer.wait(15) == 0
        record = json.loads(d.sh("cat dc/proc/p1/waitexit").stdout)
        assert record["exit"] == 0 and record["cmd"]["path"] == "/bin/echo", record
        assert d.sh("cat dc/proc/p1/stdout").stdout == "once\n"
        assert d.sh("cat dc/proc/p1/error").stdout == ""
    finally:
        assert d.stop() in (0, -signal.SIGTERM)


def test_a_killed_keeper_is_replaced(tmp_path):
    """The keeper (which starts the host's processes, and kills them should the host die) is
    itself killed: its processes are killed with it and reported so (their exits could no
    longer be known), and the host starts another, whose processes still die with the host."""
    d = start_daemon(tmp_path)
    try:
        before = _start_sleeper(d, "before")
        keeper = _keeper(d)
        os.kill(keeper, signal.SIGKILL)
        record = json.loads(d.sh("cat dc/proc/before/waitexit").stdout)
        assert record["phase"] == "exited" and record["signal"] == "KILL", record
        wait_for(lambda: _gone(before), 10, what="the keeper's process to be killed")
        wait_for(lambda: [p for p in _children(d.proc.pid) if p != keeper
                          and b"keeper_process.py" in b" ".join(_cmdline(p))], 10, what="a new keeper")
        after = _start_sleeper(d, "after")
        said = d.log.read_text()
        assert "the process keeper ended: its 1 running processes are killed" in said, said[-3000:]
    finally:
        d.stop(signal.SIGKILL)
    wait_for(lambda: _gone(after), 10, what="the new keeper's process to die with the host")


def test_a_stop_signalled_to_the_whole_group_is_a_clean_stop(tmp_path):
    """As systemd stops a service (SIGTERM to every process of it): the keeper outlives the
    signal until its host has stopped, rather than dying first and being restarted."""
    d = start_daemon(tmp_path)
    keeper = _keeper(d)

    def ignoring() -> bool:  # from the keeper's first lines, whichever signal reaches it first
        ignored = int(next(line for line in open(f"/proc/{keeper}/status")
                           if line.startswith("SigIgn:")).split()[1], 16)
        return all(ignored & (1 << (s - 1)) for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM))
    wait_for(ignoring, 10, what="the keeper to ignore the stop signals")
    os.killpg(d.proc.pid, signal.SIGTERM)  # start_daemon gives the host a session, and group, of its own
    assert d.proc.wait(15) in (0, -signal.SIGTERM)
    wait_for(lambda: _gone(keeper), 10, what="the keeper to end with its input")
    said = d.log.read_text()
    assert "the process keeper exited" not in said and "circuit host" in said, said[-3000:]


def test_the_keeper_starts_reports_and_kills_at_the_end_of_its_input():
    """The keeper's side alone, over its socket: a start answered with the PID and a pidfd,
    a kill by the start's number, the exit's status, a bad request said on stderr, and at the
    end of its input the processes still running killed."""
    import array
    import socket
    import sys
    from circuit.core import keeper_process
    ours, theirs = socket.socketpair()
    keeper = subprocess.Popen([sys.executable, "-I", keeper_process.__file__], stdin=theirs,
                              stderr=subprocess.PIPE)
    theirs.close()
    received = b""

    def start(ident: int, path: str, *args: str, env=None) -> None:
        r, w = os.pipe()
        request = {"start": ident, "path": path, "args": [path, *args], "env": env or {}, "dir": "/"}
        socket.send_fds(ours, [json.dumps(request).encode() + b"\n"], [r, w, w])
        os.close(r)
        os.close(w)

    def answer() -> tuple:
        nonlocal received
        fds = []
        while b"\n" not in received:
            data, more, _, _ = socket.recv_fds(ours, 4096, 4)
            assert data, "the keeper hung up"
            received += data
            fds += more
        line, received = received.split(b"\n", 1)
        return json.loads(line), fds

    try:
        start(1, "/bin/sleep", "300")
        started, (pidfd,) = answer()
        pid = started["pid"]
        assert started == {"started": 1, "pid": pid} and _cmdline(pid)[:2] == [b"/bin/sleep", b"300"]
        ours.sendall(b'{"kill": 1, "signal": 15}\n')
        assert answer() == ({"exited": 1, "status": signal.SIGTERM}, [])
        os.close(pidfd)
        start(2, "/no/such/program")
        assert answer() == ({"failed": 2, "errno": 2, "error": "No such file or directory"}, [])
        start(5, "/bin/true", env={"A=B": "1"})  # what exec cannot take is answered too
        assert answer() == ({"failed": 5, "errno": errno.EINVAL, "error": "illegal environment variable name"}, [])
        ours.sendall(b'{"stop": 3}\n')  # neither start nor kill: said, and nothing else
        start(4, "/bin/sleep", "300")
        started, (pidfd,) = answer()
        os.close(pidfd)
        last = started["pid"]
    finally:
        ours.close()  # the end of its input
    assert keeper.wait(10) == 0
    assert b"a bad request" in keeper.stderr.read()
    wait_for(lambda: _gone(last), 10, what="the process still running at the end to be killed")
