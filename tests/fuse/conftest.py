import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import start_daemon  # noqa: E402


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """One real daemon with its tree mounted, shared by a test module."""
    daemon = start_daemon(tmp_path_factory.mktemp("host"))
    yield daemon
    daemon.stop()


@pytest.fixture
def names(request):
    """Element names unique to the test, so tests sharing a daemon do not collide."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:40]
    return lambda kind: f"{base}-{kind}"
