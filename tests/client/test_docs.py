"""The client guide's examples (docs/client.md) run as written, against two live hosts."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import make_ca, make_client, start_daemon, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "client.md").read_text(), re.S)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    ca = make_ca(tmp / "ca")
    a = start_daemon(tmp / "a", "--ca", str(ca), mount=False)
    b = start_daemon(tmp / "b", "--ca", str(ca), "-j", a.url, mount=False)
    make_client(ca, tmp / "me")
    wait_for(lambda: len((a.data / "url").read_text()) > 0 and
             subprocess.run([sys.executable, "-m", "circuit.cli.main", "--data", str(a.data), "ls", "/"],
                            capture_output=True, text=True, cwd=ROOT).stdout.count("X") == 2,
             what="the two to meet")
    yield dict(os.environ, URL=a.url, DATA=str(tmp / "me")), b
    b.stop()
    a.stop()


def test_there_are_examples():
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("i", range(len(EXAMPLES)))
def test_an_example_runs_as_written(env, i):
    environ, b = env
    r = subprocess.run([sys.executable, "-c", EXAMPLES[i]], capture_output=True, text=True, cwd=ROOT,
                       env=environ, timeout=60)
    assert r.returncode == 0, r.stderr
    if i == 0:
        assert r.stdout.splitlines() == ["b'job-0'", "2", f"0 b'hello from {b.host_id}\\n'",
                                         "2 no element chan/nobody on " + b.host_id]
    elif i == 1:
        assert r.stdout.splitlines() == ["b'over'"]
    else:
        assert r.stdout.splitlines() == [
            """['db.cluster. 60 IN A 10.0.0.7', 'db.cluster. 60 IN TXT "primary"']""", "10.0.0.7", "0"]
