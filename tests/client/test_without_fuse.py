"""The client and the command line install and run where there is no libfuse or pyfuse3."""
import subprocess
import sys
from pathlib import Path

from helpers import make_ca, start_daemon

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_venv_without_pyfuse3_drives_a_host(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True,
                             text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    python = str(venv / "bin" / "python")
    assert subprocess.run([python, "-c", "import pyfuse3"], capture_output=True).returncode != 0
    ca = make_ca(tmp_path / "ca")
    host = start_daemon(tmp_path / "host", "--ca", str(ca), mount=False)
    try:
        circuit = [str(venv / "bin" / "circuit")]
        made = subprocess.run(circuit + ["ca", "client", "--ca", str(ca), str(tmp_path / "me")],
                              capture_output=True, text=True, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        remote = circuit + ["--url", host.url, "--data", str(tmp_path / "me")]
        r = subprocess.run(remote + ["mkchan", f"/{host.host_id}/dc/chan/c", "1"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=60)
        assert r.returncode == 0, r.stderr
        subprocess.run(remote + ["send", f"/{host.host_id}/dc/chan/c"], input=b"no fuse here", check=True,
                       cwd=tmp_path, timeout=60)
        got = subprocess.run(remote + ["recv", f"/{host.host_id}/dc/chan/c"], capture_output=True,
                             cwd=tmp_path, timeout=60)
        assert got.stdout == b"no fuse here"
        # A mount asked for without pyfuse3: one clear line, exit 1.
        mount = subprocess.run(circuit + ["start", "--data", str(tmp_path / "d"), "-m", str(tmp_path / "m")],
                               capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert mount.returncode != 0 and "pip install 'circuit[fuse]'" in mount.stderr + mount.stdout
    finally:
        host.stop()
