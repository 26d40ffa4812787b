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
        return url if (not mount or (mount_dir / host).exists()) else None
    daemon = Daemon(proc, mount_dir, data, "", log)
    STARTED.append(daemon)
    daemon.url = wait_for(ready, 30, what="the daemon to start") if wait else ""
    return daemon
