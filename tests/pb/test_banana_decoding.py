"""The linear-time Banana decoder reads exactly what Twisted's own reads, however the
bytes are cut into chunks, and refuses what it refuses."""
import pytest
from hypothesis import given, settings, strategies as st
from twisted.spread import banana

from circuit.pb.banana import LinearDecoding


class Stock(banana.Banana):
    def __init__(self):
        super().__init__(isClient=0)
        self.setPrefixLimit(banana._PREFIX_LIMIT)
        self.currentDialect = b"pb"
        self.got = []

    def expressionReceived(self, item):
        self.got.append(item)


class Linear(LinearDecoding, Stock):
    pass


def encoded(items) -> bytes:
    out = []
    coder = Stock()
    for item in items:
        coder._encode(item, out.append)
    return b"".join(out)


def decode(cls, data: bytes, cuts: list[int]):
    decoder = cls()
    previous = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        decoder.dataReceived(data[previous:cut])
        previous = cut
    return decoder.got, decoder.buffer


leaves = (st.integers(min_value=-(2 ** 200), max_value=2 ** 200)
          | st.floats(allow_nan=False)
          | st.binary(max_size=40)
          | st.binary(min_size=16000, max_size=70000)
          | st.sampled_from(sorted(banana.Banana.outgoingVocabulary)[:8]))  # vocabulary words
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=5), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=6), st.lists(st.integers(min_value=0), max_size=12))
def test_the_same_expressions_whatever_the_chunks(items, cuts):
    data = encoded(items)
    assert decode(Linear, data, cuts) == decode(Stock, data, cuts)


@pytest.mark.parametrize("data", [
    b"\x01" * 65 + banana.STRING,                    # a prefix longer than the limit
    b"\x01" * 70,                                    # the same, its type byte not yet come
    b"\x7f\x7f\x7f\x7f" + banana.STRING,         # a string over SIZE_LIMIT
    b"\x7f\x7f\x7f\x7f" + banana.LIST,              # a list over SIZE_LIMIT
    b"\x01\x99",                                     # no such type byte
])
def test_the_same_refusals(data):
    with pytest.raises(Exception) as stock:
        Stock().dataReceived(data)
    with pytest.raises(Exception) as linear:
        Linear().dataReceived(data)
    assert type(linear.value) is type(stock.value)


def test_a_big_string_in_small_chunks_is_kept_in_pieces():
    data = encoded([b"x" * 600_000])
    decoder = Linear()
    for i in range(0, len(data) - 1, 16384):
        decoder.dataReceived(data[i:i + 16384])
        if i + 16384 < len(data):
            assert decoder.got == [] and decoder._pieces is not None
    assert decoder.got == [b"x" * 600_000]
