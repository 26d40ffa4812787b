"""Running real circuit daemons and driving their mounts with the shell's own tools."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


_READ = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)


def reading(pid: int, path) -> bool:
    """The process has ``path`` open and sits in read(2): blocked on it, for a file of the
    mount that has nothing to give yet (root may read /proc/PID/syscall; else the open)."""
    try:
        opened = any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == str(path)
                     for fd in os.listdir(f"/proc/{pid}/fd"))
        if not opened or _READ is None:
            return opened
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] == str(_READ)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) // 1024


def feed_until_held(feeder: subprocess.Popen, most: int = 300 << 20) -> int:
    """Write zeros into ``feeder``'s stdin, up to ``most`` bytes, until its count stops moving
    (it is blocked, not done); the bytes it took."""
    import threading
    sent = [0]

    def feed():
        try:
            while sent[0] < most:
                feeder.stdin.write(b"\0" * (1 << 20))
                sent[0] += 1 << 20
        except (BrokenPipeError, ValueError, OSError):
            pass
    threading.Thread(target=feed, daemon=True).start()

    def stalled():
        before = sent[0]
        time.sleep(0.5)
        return sent[0] == before and before > 0
    wait_for(stalled, 60, interval=0, what="the feeder to be held back")
    return sent[0]


def is_mounted(path: Path) -> bool:
    target = os.path.abspath(path)  # no stat: a dead daemon's mount answers ENOTCONN
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


STARTED: list = []  # every daemon the tests started; the session kills stragglers


@dataclass
class Daemon:
    proc: subprocess.Popen
    mount: Path
    data: Path
    url: str
    log: Path

    @property
    def host_id(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def root(self) -> Path:
        return self.mount / self.host_id

    def sh(self, script: str, timeout: float = 30, check: bool = True, cwd: Path | None = None
           ) -> subprocess.CompletedProcess:
        """Run a bash script inside the host's directory of the mount."""
        result = subprocess.run(["bash", "-c", script], cwd=cwd or self.root, capture_output=True,
                                timeout=timeout, text=True, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"script failed ({result.returncode}):\n{script}\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the daemon and wait; twistd re-raises the signal once it has shut down cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise
        finally:
            if is_mounted(self.mount):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mount)], check=False)


def make_ca(directory: Path) -> Path:
    subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "init", str(directory)],
                   check=True, capture_output=True)
    return directory


def make_client(ca: Path, directory: Path, *name: str) -> Path:
    """A client's credentials in ``directory``, signed by the cluster CA in ``ca``."""
    subprocess.run([sys.executable, "-m", "circuit.cli.main", "ca", "client", "--ca", str(ca),
                    str(directory), *name], check=True, capture_output=True)
    return directory


def start_daemon(tmp: Path, *extra: str, plugin: bool = False, mount: bool = True,
                 prefix: tuple = (), wait: bool = True) -> Daemon:
    """Start a host (in a network namespace when ``prefix`` is e.g. nsenter --net=...)."""
    mount_dir, data = tmp / "mnt", tmp / "data"
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "daemon.log"
    (data / "url").unlink(missing_ok=True)  # left by an earlier daemon
    if plugin:  # the twistd plugin, as an operator would run it
        twistd = str(Path(sys.executable).parent / "twistd")
        command = [twistd, "-n", "--pidfile=", "--logfile=-", "circuit"]
    else:
        command = [sys.executable, "-m", "circuit.cli.main", "start"]
    command = list(prefix) + command + ["--data", str(data), *extra]
    if mount:
        command += ["-m", str(mount_dir)]
    out = open(log, "w")
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url_file = data / "url"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
        if not url_file.exists():
            return None
        url = url_file.read_text().strip()
        host = url.rsplit("/", 1)[1]
        # os.path.exists: False, not an error, while a stale mount (ENOTCONN) is still there
        return url if (not mount or os.path.exists(mount_dir / host)) else None
    daemon = Daemon(proc, mount_dir, data, "", log)
    STARTED.append(daemon)
    daemon.url = wait_for(ready, 30, what="the daemon to start") if wait else ""
    return daemon


# -- callers that give up at the moment of hand-over -------------------------------------------

def chan_stat(chan: Path) -> dict:
    import json
    return json.loads((chan / "stat").read_text())


def reader_gives_up(owner_chan: Path, reader_chan: Path, sender_chan: Path) -> tuple[str, str]:
    """A reader blocked in ``cat recv`` (through reader_chan) gets SIGTERM, and a sender
    (through sender_chan) arrives at once.  Answers (what the dying reader printed, what
    the next reader gets); the owner's stat (owner_chan) is what we wait on."""
    reader = subprocess.Popen(["cat", f"{reader_chan}/recv"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: chan_stat(owner_chan)["receivers_waiting"] == 1, what="the reader to block")
    reader.send_signal(signal.SIGTERM)
    sender = subprocess.Popen(["bash", "-c", f"echo sent > {sender_chan}/send"])
    printed = reader.communicate(timeout=15)[0].decode()
    nxt = subprocess.run(["cat", f"{owner_chan}/recv"], capture_output=True, timeout=15).stdout.decode()
    assert sender.wait(15) == 0, "the send failed"
    return printed, nxt


def writer_gives_up(owner_chan: Path, writer_chan: Path, reader_chan: Path, prefill: int = 0,
                    source: str = "echo gave-up", prefill_chan: Path | None = None) -> str:
    """A writer blocked in ``echo gave-up > send`` (or ``SOURCE > send``; through writer_chan;
    behind ``prefill`` messages that fill the buffer) gets SIGTERM, and a reader (through
    reader_chan) arrives at once and reads prefill + 1 messages; a second writer sends "kept".
    Answers what the reader got: the prefill, then "kept", unless the first writer's message
    was taken.  The prefill goes through ``prefill_chan`` (the owner's by default)."""
    for i in range(prefill):
        subprocess.run(["bash", "-c", f"echo first{i} > {prefill_chan or owner_chan}/send"],
                       check=True, timeout=15)
    writer = subprocess.Popen(["bash", "-c", f"{source} > {writer_chan}/send"])
    wait_for(lambda: sum(chan_stat(owner_chan).get(k, 0) for k in ("senders_waiting", "send_waits")) >= 1,
             what="the writer to block")
    writer.send_signal(signal.SIGTERM)
    reader = subprocess.Popen(["bash", "-c", f"for i in $(seq 0 {prefill}); do cat {reader_chan}/recv; done"],
                              stdout=subprocess.PIPE)
    assert writer.wait(15) != 0, "the writer that was killed reports success"
    kept = subprocess.Popen(["bash", "-c", f"echo kept > {owner_chan}/send"])
    try:
        return reader.communicate(timeout=15)[0].decode()
    finally:
        if kept.poll() is None and reader.returncode is not None:
            try:
                kept.wait(2)  # buffered, or taken: it returns
            except subprocess.TimeoutExpired:
                kept.kill()  # cap 0 and the reader took something else: nobody will take it
        kept.wait(15)
