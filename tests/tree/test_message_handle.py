"""A control file's write side (`MessageHandle`) when a write's check waits: as `run`'s does,
until the keeper has started the process."""
from twisted.internet.defer import Deferred

from circuit import errors
from circuit.tree.handles import APPLIED, MessageHandle


def _handle():
    delivered, checks = [], []

    def check(text: bytes) -> Deferred:
        checks.append(Deferred())
        return checks[-1]
    return MessageHandle(delivered.append, check=check), delivered, checks


def test_a_flush_waits_for_the_check_of_the_write_before_it_and_delivers_nothing_twice():
    """A writer on another host that gave up on its write closes while the owner still checks
    it: the flush finds the value applied, and delivers nothing (it used to start the process
    a second time, and fail with EBUSY)."""
    handle, delivered, checks = _handle()
    written, flushed = [], []
    handle.write(0, b'{"path": "/bin/true"}\n').addCallback(written.append)
    handle.flush().addCallback(flushed.append)
    assert not written and not flushed  # the flush waits for the check
    checks[0].callback(APPLIED)
    assert written == [22] and flushed == [None] and delivered == []


def test_a_flush_after_a_check_that_refuses_reports_the_refusal_and_delivers_nothing():
    handle, delivered, checks = _handle()
    refused, flushed = [], []
    handle.write(0, b'{"path": "/bin/true"}\n').addErrback(lambda f: refused.append(f.value))
    handle.flush().addErrback(lambda f: flushed.append(f.value))
    checks[0].errback(errors.Busy("run: the process was already started"))
    assert isinstance(refused[0], errors.Busy) and isinstance(flushed[0], errors.Busy)
    assert delivered == []


def test_a_check_still_waiting_for_more_lets_the_flush_deliver_what_was_written():
    handle, delivered, checks = _handle()
    flushed = []
    handle.write(0, b"some").addCallback(lambda n: None)
    handle.flush().addCallback(flushed.append)
    checks[0].callback(None)  # not whole yet: the flush delivers it
    assert delivered == [b"some"] and flushed == [None]
