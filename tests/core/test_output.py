"""A process's output: kept whole, read by offset from its start by any number of readers."""
from __future__ import annotations

from twisted.internet.defer import CancelledError

from circuit.core.output import Output
from core_model import failure, pending, value


def test_reads_by_offset_and_size_without_consuming():
    out = Output()
    out.append(b"hello ")
    out.append(b"world")
    assert len(out) == 11
    assert value(out.read(0, 5)) == b"hello"
    assert value(out.read(6, 100)) == b"world"
    assert value(out.read(0, 100)) == b"hello world"  # a second reader starts at the start too
    assert value(out.read(10, 1)) == b"d"


def test_a_read_at_the_end_waits_for_more():
    out = Output()
    out.append(b"ab")
    r = out.read(2, 10)
    assert pending(r)
    out.append(b"cd")
    assert value(r) == b"cd"


def test_a_read_beyond_the_end_waits_until_data_reaches_it():
    out = Output()
    r = out.read(3, 10)
    out.append(b"ab")
    assert pending(r)
    out.append(b"cdef")
    assert value(r) == b"def"


def test_eof_only_once_finished_and_read_through():
    out = Output()
    out.append(b"x")
    r = out.read(1, 10)
    assert not out.drained
    out.finish()
    assert value(r) == b"" and out.eof and out.drained
    assert value(out.read(0, 10)) == b"x"  # still readable after the end
    assert value(out.read(1, 10)) == b""


def test_reading_the_data_does_not_count_as_reading_to_the_end():
    out = Output()
    out.append(b"abc")
    out.finish()
    value(out.read(0, 3))
    assert not out.drained
    value(out.read(3, 3))
    assert out.drained


def test_an_empty_finished_stream_is_eof_at_once():
    out = Output()
    out.finish()
    assert value(out.read(0, 10)) == b""


def test_wait_readable_fires_for_data_at_the_offset_or_the_end():
    out = Output()
    w0 = out.wait_readable()
    assert pending(w0)
    out.append(b"abc")
    assert value(w0) is None
    assert value(out.wait_readable(2)) is None
    w3 = out.wait_readable(3)
    assert pending(w3)
    out.finish()
    assert value(w3) is None
    assert value(out.wait_readable(99)) is None


def test_many_waiting_readers_all_wake():
    out = Output()
    rs = [out.read(0, 2), out.read(0, 10), out.read(0, 1)]
    out.append(b"xyz")
    assert [value(r) for r in rs] == [b"xy", b"xyz", b"x"]


def test_a_cancelled_read_leaves_the_others():
    out = Output()
    gone, stays = out.read(0, 4), out.read(0, 4)
    gone.cancel()
    failure(gone, CancelledError)
    out.append(b"data")
    assert value(stays) == b"data"


# -- past SPILL_AFTER, the stream lives in an unlinked file, not in the daemon's memory ---

from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=12), st.integers(0, 600),
       st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 700)), max_size=8))
def test_the_same_bytes_whether_in_memory_or_spilled(pieces, spill_after, reads):
    whole = b"".join(pieces)
    kept, spilled = Output(), Output(spill_after=spill_after)
    for p in pieces:
        kept.append(p)
        spilled.append(p)
    kept.finish()
    spilled.finish()
    assert len(spilled) == len(whole)
    for offset, size in reads:
        assert value(spilled.read(offset, size)) == value(kept.read(offset, size)) \
            == whole[offset:offset + size]
    spilled.discard()


def test_a_spilled_stream_keeps_nothing_in_memory(tmp_path):
    out = Output(spill_after=1000, directory=str(tmp_path))
    out.append(b"a" * 600)
    assert out._file is None and len(out._data) == 600
    out.append(b"b" * 600)  # past the bound: everything moves to the file
    assert out._file is not None and len(out._data) == 0
    assert value(out.read(590, 20)) == b"a" * 10 + b"b" * 10
    assert list(tmp_path.iterdir()) == []  # unlinked at once: freed with its descriptor
    out.discard()


def test_a_full_disk_is_logged_and_reads_end_at_what_was_kept(tmp_path, monkeypatch):
    import os
    from twisted.logger import globalLogPublisher
    out = Output(spill_after=10, directory=str(tmp_path))
    out.append(b"0123456789AB")  # spilled
    said = []
    globalLogPublisher.addObserver(said.append)
    real_write = os.write

    def full(fd, data):
        if fd == out._file:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", full)
    try:
        out.append(b"lost")
        out.append(b"also lost")
    finally:
        globalLogPublisher.removeObserver(said.append)
    out.finish()
    assert out.lost == len(b"lost") + len(b"also lost")
    assert value(out.read(0, 100)) == b"0123456789AB"
    assert value(out.read(12, 100)) == b""
    assert any("process output lost" in e.get("log_format", "") for e in said)
    out.discard()
