"""Exactly once at the edges, across hosts: a caller that gives up at the moment of hand-over
takes nothing and sends nothing, whichever host it is on (the same rows on one host are in
tests/fuse/test_interrupt.py).  Each case runs several times: before the hand-over was asked of
the caller's own host, every one of them lost or leaked a message every time."""
import pytest

from conftest import met_cluster
from helpers import chan_stat, reader_gives_up, wait_for, writer_gives_up

ROUNDS = 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Hosts A (owning the channels) and B, both mounted."""
    yield from met_cluster(tmp_path_factory.mktemp("pair"), 2)


def _chan(a, name: str, cap: int):
    a.sh(f"mkdir dc/chan/{name} && echo {cap} > dc/chan/{name}/cap")
    return a.root / "dc" / "chan" / name


def _via(host, owner, chan):
    return host.mount / owner.host_id / "dc" / "chan" / chan.name


@pytest.mark.parametrize("cap", [0, 5])
def test_a_reader_on_another_host_killed_as_the_message_arrives_takes_nothing(pair, cap):
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"r{cap}-{i}", cap)
        printed, nxt = reader_gives_up(c, _via(b, a, c), c)
        assert (printed, nxt) == ("", "sent\n")
        assert chan_stat(c)["received"] == 1


@pytest.mark.parametrize("where", ["owner", "other"])
def test_a_writer_killed_as_a_reader_arrives_sends_nothing(pair, where):
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"w{where}-{i}", 0)
        writer = c if where == "owner" else _via(b, a, c)
        assert writer_gives_up(c, writer, _via(b, a, c)) == "kept\n"


def test_a_writer_on_another_host_killed_while_the_channel_is_full_sends_nothing(pair):
    a, b = pair
    for i in range(ROUNDS):
        c = _chan(a, f"full-{i}", 1)
        assert writer_gives_up(c, _via(b, a, c), c, prefill=1) == "first0\nkept\n"


def test_a_big_message_from_a_writer_on_another_host_that_gave_up_is_not_sent(pair, tmp_path):
    """8 MiB through B's mount: most writes go behind the writer; it is killed at close."""
    a, b = pair
    big = tmp_path / "big"
    big.write_bytes(b"x" * (8 << 20))
    for i in range(ROUNDS):
        c = _chan(a, f"big-{i}", 0)
        # exec: the signalled process must be the writer (bash forks for a redirected command,
        # and a shell killed while its child writes leaves the child writing, as it should).
        assert writer_gives_up(c, _via(b, a, c), c, source=f"exec cat {big}") == "kept\n"
        assert chan_stat(c)["received"] == 1


def test_a_select_on_one_host_over_a_recv_on_another_loses_nothing_when_aborted(pair):
    a, b = pair
    c = _chan(a, "sel", 1)
    b.sh(f"mkdir dc/select/s && echo '[{{\"op\": \"r\", \"file\": \"/{a.host_id}/dc/chan/sel/recv\"}}]'"
         " > dc/select/s/select")
    a.sh("echo one > dc/chan/sel/send")
    wait_for(lambda: "committed" in b.sh("cat dc/select/s/stat").stdout, what="the select to commit")
    assert chan_stat(c)["len"] == 0  # the select took it
    b.sh("echo abort > dc/select/s/abort")
    assert a.sh("cat dc/chan/sel/recv").stdout == "one\n"
