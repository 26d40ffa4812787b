"""Calls to other hosts share one timer per timeout (circuit.pb.deadlines) and end exactly
as ``Deferred.addTimeout`` would end them."""
from hypothesis import given, settings, strategies as st
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from circuit.pb.deadlines import Deadlines


def outcome(d: Deferred):
    """"pending", ("answered", value), or the type of the failure (looked at, not taken)."""
    if not d.called:
        return "pending"
    r = d.result
    return ("answered", r) if not isinstance(r, Failure) else r.type


def _consume(calls):
    for d in calls:
        d.addErrback(lambda _: None)  # failures looked at: not "unhandled" when collected


def test_a_call_unanswered_at_its_deadline_fails_with_timeout_and_an_answer_after_is_ignored():
    clock = Clock()
    deadlines = Deadlines(clock)
    late, answered = Deferred(), Deferred()
    deadlines.add(late, 30)
    clock.advance(10)
    deadlines.add(answered, 30)
    answered.callback("yes")
    clock.advance(19.9)
    assert not late.called
    clock.advance(0.1)
    assert outcome(late) is TimeoutError
    late.callback("too late")  # the answer that comes after all: dropped, not an error
    assert outcome(answered) == ("answered", "yes")
    assert len(deadlines) == 0 and clock.getDelayedCalls() == []
    _consume([late])


def test_one_timer_serves_every_call_of_a_timeout_and_follows_the_oldest():
    clock = Clock()
    deadlines = Deadlines(clock)
    calls, began = [], []
    for _ in range(100):
        d = Deferred()
        deadlines.add(d, 30)
        calls.append(d)
        began.append(clock.seconds())
        clock.advance(0.1)
    assert len(clock.getDelayedCalls()) == 1
    for d in calls[:50]:
        d.callback(None)
    clock.advance(37.45 - clock.seconds())
    expired = [outcome(d) is TimeoutError for d in calls[50:]]
    assert expired == [b + 30 <= clock.seconds() for b in began[50:]]
    assert 0 < sum(expired) < 50
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(10)
    assert all(outcome(d) is TimeoutError for d in calls[50:])
    assert all(outcome(d) == ("answered", None) for d in calls[:50])
    assert clock.getDelayedCalls() == [] and len(deadlines) == 0
    _consume(calls)


def test_a_call_cancelled_by_its_caller_is_cancelled_not_timed_out():
    clock = Clock()
    deadlines = Deadlines(clock)
    d = Deferred()
    deadlines.add(d, 5)
    d.cancel()
    assert outcome(d) is CancelledError
    clock.advance(10)
    assert clock.getDelayedCalls() == []
    _consume([d])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([5.0, 30.0]),      # the call's timeout
                          st.floats(0, 40),                  # when it begins
                          st.one_of(st.none(), st.floats(0, 40))),  # when answered (None: never)
                min_size=1, max_size=30))
def test_every_call_ends_as_add_timeout_would_end_it(plan):
    """The same calls, once with Deadlines and once with addTimeout: the same outcomes."""
    results = []
    for shared in (True, False):
        clock = Clock()
        deadlines = Deadlines(clock)
        calls = [Deferred() for _ in plan]
        events = []
        for i, (timeout, begin, answer) in enumerate(plan):
            events.append((begin, 0, i, "begin"))
            if answer is not None:
                events.append((begin + answer, 1, i, "answer"))
        for when, _, i, what in sorted(events):
            clock.advance(when - clock.seconds())
            d = calls[i]
            if what == "begin":
                if shared:
                    deadlines.add(d, plan[i][0])
                else:
                    d.addTimeout(plan[i][0], clock)
            else:
                d.callback(i)  # after a timeout: dropped by both (a cancelled Deferred)
        clock.advance(100)
        results.append([outcome(d) for d in calls])
        _consume(calls)
        assert clock.getDelayedCalls() == []
    assert results[0] == results[1]
