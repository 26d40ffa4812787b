"""fs/: the exported directory, read-write, and nothing outside it."""
import json
import os
import shutil


def test_files_round_trip(host):
    host.sh("mkdir -p fs/sub && echo hi > fs/sub/a && cat fs/sub/a && mv fs/sub/a fs/sub/b && ls fs/sub")
    assert (host.data / "fs" / "sub" / "b").read_text() == "hi\n"
    data = os.urandom(3 << 20)
    (host.root / "fs" / "big").write_bytes(data)
    assert (host.data / "fs" / "big").read_bytes() == data
    assert (host.root / "fs" / "big").read_bytes() == data
    host.sh("truncate -s 10 fs/big && rm fs/sub/b && rmdir fs/sub")
    assert (host.data / "fs" / "big").stat().st_size == 10


def test_symlink_escape_refused(host):
    os.symlink("/etc", host.data / "fs" / "escape")
    os.symlink("/etc/passwd", host.data / "fs" / "passwd")
    r = host.sh("cat fs/passwd", check=False)
    assert r.returncode != 0
    r = host.sh("ls fs/escape/", check=False)
    assert r.returncode != 0
    assert "escape" not in host.sh("ls fs").stdout.split()


def test_binary_copied_into_fs_can_be_run(host, names):
    host.sh("cp /bin/echo fs/my-echo")
    assert os.access(host.data / "fs" / "my-echo", os.X_OK)
    for i, path in enumerate([f"/{host.host_id}/fs/my-echo", f"{host.root}/fs/my-echo"]):
        p = names(f"p{i}")
        host.sh(f"mkdir dc/proc/{p}")
        (host.root / "dc" / "proc" / p / "run").write_text(
            json.dumps({"path": path, "args": ["from fs"]}))
        assert json.loads(host.sh(f"cat dc/proc/{p}/waitexit").stdout)["exit"] == 0
        assert host.sh(f"cat dc/proc/{p}/stdout").stdout == "from fs\n"


def test_fs_root_option(tmp_path):
    from helpers import start_daemon
    export = tmp_path / "export"
    export.mkdir()
    (export / "hello").write_text("exported\n")
    d = start_daemon(tmp_path, "--fs-root", str(export))
    try:
        assert (d.root / "fs" / "hello").read_text() == "exported\n"
    finally:
        d.stop()
    shutil.rmtree(export)
