import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import make_ca, start_daemon, wait_for  # noqa: E402


def start_cluster(tmp: Path, n: int, *extra: str, mount=True, **kwargs):
    ca = make_ca(tmp / "ca")
    first = start_daemon(tmp / "h0", "--ca", str(ca), *extra, mount=mount, **kwargs)
    hosts = [first]
    for i in range(1, n):
        hosts.append(start_daemon(tmp / f"h{i}", "--ca", str(ca), "-j", first.url, *extra, mount=mount,
                                  **kwargs))
    return hosts


def members(host) -> list:
    return sorted(p.name for p in host.mount.iterdir())


def met_cluster(tmp: Path, n: int, *extra: str):
    """n hosts that all see each other; stopped when the generator ends (a fixture's body)."""
    hosts = start_cluster(tmp, n, *extra)
    ids = sorted(h.host_id for h in hosts)
    for h in hosts:
        wait_for(lambda: members(h) == ids, 10, what="every host to see every host")
    yield hosts
    for h in hosts:
        h.stop()


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """Three hosts on loopback with their trees mounted, one cluster CA."""
    yield from met_cluster(tmp_path_factory.mktemp("trio"), 3)
