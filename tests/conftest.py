import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def no_stray_daemons():
    """Whatever a failing test left running is killed and unmounted at the end."""
    yield
    for daemon in helpers.STARTED:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
        if helpers.is_mounted(daemon.mount):
            helpers.subprocess.run(["fusermount3", "-u", "-z", str(daemon.mount)], check=False)
