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
