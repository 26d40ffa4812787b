"""Process control files through the mount."""
import json
import os
import subprocess
import time


def _proc(host, name, command):
    host.sh(f"mkdir dc/proc/{name}")
    p = host.root / "dc" / "proc" / name
    (p / "run").write_text(json.dumps(command))
    return p


def test_fifty_megabytes_of_output_kept_after_exit(host, names):
    p = _proc(host, names("p"), {"path": "/usr/bin/head", "args": ["-c", "50000000", "/dev/zero"]})
    assert json.loads(host.sh(f"cat {p}/waitexit").stdout)["exit"] == 0
    assert host.sh(f"wc -c < {p}/stdout").stdout.strip() == "50000000"
    assert host.sh(f"cmp -n 50000000 {p}/stdout /dev/zero && wc -c < {p}/stdout").stdout.strip() == "50000000"


def test_stdout_streams_while_running(host, names):
    p = _proc(host, names("p"), {"path": "/bin/sh", "args": ["-c", "echo first; exec sleep 30"]})
    reader = subprocess.Popen(["cat", f"{p}/stdout"], stdout=subprocess.PIPE)
    assert reader.stdout.readline() == b"first\n"  # before the process ends
    assert reader.poll() is None
    host.sh(f"echo TERM > {p}/signal")
    assert reader.wait(10) == 0
    record = json.loads(host.sh(f"cat {p}/waitexit").stdout)
    assert record["signal"] == "TERM" and record["exit"] is None


def test_stdin_streams_and_closes_with_the_last_writer(host, names):
    p = _proc(host, names("p"), {"path": "/usr/bin/tr", "args": ["a-z", "A-Z"]})
    host.sh(f"""exec 3>{p}/stdin
echo hello >&3
echo world > {p}/stdin   # a second writer opens and closes: stdin stays open
echo again >&3
exec 3>&-""")
    assert json.loads(host.sh(f"cat {p}/waitexit").stdout)["exit"] == 0
    assert host.sh(f"cat {p}/stdout").stdout == "HELLO\nWORLD\nAGAIN\n"


def test_waitexit_does_not_wait_for_stdin(host, names):
    p = _proc(host, names("p"), {"path": "/bin/true"})
    assert json.loads(host.sh(f"cat {p}/waitexit", timeout=10).stdout)["exit"] == 0


def test_signals_by_name_and_number(host, names):
    for i, sig in enumerate(["TERM", "SIGINT", "kill", "9", "15"]):
        p = _proc(host, names(f"p{i}"), {"path": "/bin/sleep", "args": ["30"]})
        host.sh(f"echo {sig} > {p}/signal")
        record = json.loads(host.sh(f"cat {p}/waitexit").stdout)
        expected = {"TERM": "TERM", "SIGINT": "INT", "kill": "KILL", "9": "KILL", "15": "TERM"}[sig]
        assert record["signal"] == expected


def test_exit_codes_stat_env_and_stderr(host, names):
    p = _proc(host, names("p"), {"path": "/bin/sh", "args": ["-c", "echo oops >&2; exit 3"],
                                 "env": ["A=1"], "dir": "/tmp"})
    assert json.loads(host.sh(f"cat {p}/waitexit").stdout)["exit"] == 3
    assert host.sh(f"cat {p}/stderr").stdout == "oops\n"
    stat = json.loads(host.sh(f"cat {p}/stat").stdout)
    assert stat["phase"] == "exited" and stat["pid"] > 0 and stat["ended"] >= stat["started"]
    env = json.loads(host.sh(f"cat {p}/env").stdout)
    assert any(e.startswith("PATH=") for e in env)


def test_env_replaces_and_dir_is_used(host, names):
    p = _proc(host, names("p"), {"path": "/bin/sh", "args": ["-c", "echo $A:$HOME:$(pwd)"],
                                 "env": ["A=1"], "dir": "/tmp"})
    host.sh(f"cat {p}/waitexit")
    assert host.sh(f"cat {p}/stdout").stdout == "1::/tmp\n"


def test_program_found_on_path(host, names):
    p = _proc(host, names("p"), {"path": "echo", "args": ["found"]})
    host.sh(f"cat {p}/waitexit")
    assert host.sh(f"cat {p}/stdout").stdout == "found\n"


def test_rmdir_kills_a_running_process(host, names):
    p = _proc(host, names("p"), {"path": "/bin/sleep", "args": ["30"]})
    pid = json.loads(host.sh(f"cat {p}/stat").stdout)["pid"]
    host.sh(f"rmdir {p}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    time.sleep(0.05)
                    continue
        except (FileNotFoundError, ProcessLookupError):  # reaped between open and read
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert not p.exists()


def test_scrub_removes_the_element_once_output_is_read(host, names):
    p = _proc(host, names("p"), {"path": "/bin/echo", "args": ["bye"], "scrub": True})
    host.sh(f"cat {p}/waitexit")
    assert p.exists()
    assert host.sh(f"cat {p}/stdout").stdout == "bye\n"
    for _ in range(100):
        if not p.exists():
            break
        time.sleep(0.05)
    assert not p.exists()
