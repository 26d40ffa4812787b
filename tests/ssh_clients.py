"""OpenSSH clients pointed at a real daemon's SSH server: shared by tests/ssh and tests/cli."""
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import Daemon, start_daemon, wait_for


def keypair(path: Path) -> Path:
    if path.exists():
        return path
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True)
    return path


@dataclass
class Client:
    """OpenSSH clients pointed at one daemon's SSH server with one key."""
    daemon: Daemon
    dir: Path
    key: Path

    @property
    def port(self) -> int:
        return int((self.daemon.data / "ssh").read_text().strip().rsplit(":", 1)[1])

    @property
    def host_id(self) -> str:
        return self.daemon.host_id

    def options(self, key: Path | None = None) -> list:
        return ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "SendEnv=LANG",
                "-i", str(key or self.key)]

    def ssh_argv(self, command: str, key: Path | None = None, extra: tuple = ()) -> list:
        return ["ssh", "-p", str(self.port), *self.options(key), *extra, "me@127.0.0.1", command]

    def ssh(self, command: str, input: bytes | str | None = None, timeout: float = 30, **kw
            ) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        return subprocess.run(self.ssh_argv(command, **kw), input=input, capture_output=True,
                              timeout=timeout, text=text, env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"})

    def popen(self, command: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.ssh_argv(command), stdin=subprocess.DEVNULL, **kw)

    def sftp_argv(self, batch: Path) -> list:
        return ["sftp", "-P", str(self.port), *self.options(), "-b", str(batch), "me@127.0.0.1"]

    def sftp(self, commands: str, timeout: float = 30) -> subprocess.CompletedProcess:
        batch = self.dir / "batch"
        batch.write_text(commands)
        return subprocess.run(self.sftp_argv(batch), capture_output=True, text=True, timeout=timeout,
                              env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"})

    def scp(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["scp", "-P", str(self.port), *self.options(), *args],
                              capture_output=True, text=True, timeout=timeout)


def ssh_daemon(tmp: Path, *extra: str) -> Client:
    tmp.mkdir(parents=True, exist_ok=True)
    key = keypair(tmp / "id_ed25519")
    (tmp / "authorized_keys").write_text((tmp / "id_ed25519.pub").read_text())
    daemon = start_daemon(tmp / "host", "--sftp", "127.0.0.1:0",
                          "--authorized-keys", str(tmp / "authorized_keys"), *extra)
    wait_for(lambda: (daemon.data / "ssh").exists(), what="the SSH server")
    return Client(daemon, tmp, key)
