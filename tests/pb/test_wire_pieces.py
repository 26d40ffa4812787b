"""Answers and arguments over Banana's 640 KiB string limit cross as pieces (circuit.pb.wire)."""
import json

from hypothesis import given, settings, strategies as st
from twisted.spread import banana

from circuit.pb import wire

LIMIT = banana.SIZE_LIMIT  # what Banana refuses to send in one string


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 3 * 1024 * 1024), kind=st.sampled_from([bytes, str]))
def test_pieces_are_sendable_and_whole_again(size, kind):
    text = (b"x" if kind is bytes else "x") * size
    sent = wire.pieces(text)
    if size <= wire.MAX_ANSWER:
        assert sent is text  # small: as it was, no list
    else:
        assert isinstance(sent, list) and all(0 < len(p) <= wire.MAX_CHUNK < LIMIT for p in sent)
    assert wire.whole(sent, kind) == text


def test_a_big_answer_is_unwrapped_whole_and_a_huge_one_refused():
    state = [["left", f"X{i:016x}", f"circuit://host-{i}.example.net:7700/X{i:016x}", 1, ""]
             for i in range(20000)]
    answer = wire.ok(state)
    assert isinstance(answer, list) and len(answer) > 1
    assert wire.unwrap(answer) == state
    assert wire.from_json(wire.pieces(json.dumps(state))) == state
    huge = wire.ok(b"x" * (wire.MAX_WHOLE + 1))
    assert wire.is_refusal(huge)


def test_what_is_not_pieces_is_left_for_the_caller_to_refuse():
    for odd in ([], [b"a", "b"], [1, 2], "text", 5):
        assert wire.whole(odd, bytes) is odd
