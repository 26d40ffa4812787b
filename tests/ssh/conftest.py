"""Real daemons serving SSH, driven with the real OpenSSH ssh, sftp and scp."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import make_ca, start_daemon, wait_for  # noqa: E402
from ssh_clients import ssh_daemon  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One daemon with its tree mounted and served over SSH, and a client allowed in."""
    c = ssh_daemon(tmp_path_factory.mktemp("ssh"))
    yield c
    c.daemon.stop()


@pytest.fixture
def names(request):
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:40]
    return lambda kind: f"{base}-{kind}"


@pytest.fixture(scope="module")
def ssh_pair(tmp_path_factory):
    """Two hosts of one cluster; the first serves SSH, both mount the tree."""
    tmp = tmp_path_factory.mktemp("sshpair")
    ca = make_ca(tmp / "ca")
    a = ssh_daemon(tmp / "a", "--ca", str(ca))
    b = start_daemon(tmp / "b", "--ca", str(ca), "-j", a.daemon.url)
    ids = sorted([a.host_id, b.host_id])
    for h in (a.daemon, b):
        wait_for(lambda: sorted(p.name for p in h.mount.iterdir()) == ids, what="the two to meet")
    yield a, b
    b.stop()
    a.daemon.stop()
