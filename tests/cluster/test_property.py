"""Exactly once and in order across three hosts, whatever the plan (a Hypothesis property)."""
import itertools
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_serial = itertools.count()

# A plan: for each of a few senders, the host it sends from and how many messages; for each
# receiver, the host it reads from.  The channel lives on host 0; its capacity varies.
plans = st.fixed_dictionaries({
    "cap": st.integers(0, 3),
    "senders": st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6)), min_size=1, max_size=3),
    "receivers": st.lists(st.integers(0, 2), min_size=1, max_size=3),
})


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans)
def test_exactly_once_in_order_across_hosts(trio, plan):
    owner = trio[0]
    name = f"prop{next(_serial)}"
    owner.sh(f"mkdir dc/chan/{name} && echo {plan['cap']} > dc/chan/{name}/cap")

    def chan(host):
        return host.mount / owner.host_id / "dc/chan" / name

    expected = [(s, i) for s, (_, count) in enumerate(plan["senders"]) for i in range(count)]
    got: list = []
    lock = threading.Lock()
    errors: list = []
    seen: list = []  # each receiver's own sequence

    def sender(s, host, count):
        try:
            for i in range(count):
                _write(chan(host) / "send", f"{s}:{i}".encode())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def receiver(host):
        mine: list = []
        with lock:
            seen.append(mine)
        try:
            while True:
                try:
                    data = (chan(host) / "recv").read_bytes()
                except OSError as e:
                    if e.errno == 32:  # EPIPE: closed and drained
                        return
                    raise
                s, i = data.decode().split(":")
                with lock:
                    got.append((int(s), int(i)))
                mine.append((int(s), int(i)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    senders = [threading.Thread(target=sender, args=(s, trio[h], n))
               for s, (h, n) in enumerate(plan["senders"])]
    receivers = [threading.Thread(target=receiver, args=(trio[h],)) for h in plan["receivers"]]
    for t in senders + receivers:
        t.start()
    for t in senders:
        t.join(60)
    _write(chan(owner) / "close", b"close")
    for t in receivers:
        t.join(60)
    assert not errors, errors
    assert sorted(got) == sorted(expected)          # every message exactly once
    for sequence in seen:                           # each reader sees each sender in order
        for s in range(len(plan["senders"])):
            mine = [i for (x, i) in sequence if x == s]
            assert mine == sorted(mine)
