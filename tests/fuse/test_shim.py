"""circuit.fuse.shim: a worker back for the next FUSE request takes one already waiting at
once, yet the loop's other events never wait behind more than a few; with none waiting it
waits on the loop as pyfuse3's own asyncio mode does.  A pipe stands for /dev/fuse."""
import asyncio
import os

import pyfuse3

from circuit.fuse import shim


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_requests_waiting_are_taken_at_once_and_the_loop_runs_between_every_few():
    r, w = os.pipe()
    os.write(w, b"requests")  # stays readable: every call finds "a request" there

    async def main():
        loop = asyncio.get_running_loop()
        shim._streak = 0
        turns = [0]

        def other_event():  # the network, a timer: something else on the loop, every turn
            turns[0] += 1
            loop.call_soon(other_event)
        loop.call_soon(other_event)
        seen = []  # the loop's turns so far, at each request taken
        for _ in range(100):
            await shim.wait_readable(r)
            seen.append(turns[0])
        return seen
    try:
        seen = run(main())
    finally:
        os.close(r)
        os.close(w)
    runs = [seen.count(t) for t in sorted(set(seen))]  # requests taken between two turns
    # One after waiting on the loop, then eight found there at once; never more in a row.
    assert max(runs) == shim.STREAK + 1
    assert len(runs) <= 100 // (shim.STREAK + 1) + 2


def test_with_none_waiting_it_waits_on_the_loop_until_one_comes():
    r, w = os.pipe()

    async def main():
        loop = asyncio.get_running_loop()
        shim._streak = 0
        loop.call_later(0.05, os.write, w, b"x")
        waiting = asyncio.ensure_future(shim.wait_readable(r))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # nothing to read: it waits, and the loop runs meanwhile
        await asyncio.wait_for(waiting, 5)
    try:
        run(main())
    finally:
        os.close(r)
        os.close(w)


def test_the_mount_uses_it():
    import circuit.fuse.mount  # noqa: F401  (enables the shim, as the service does)
    assert pyfuse3.trio.wait_readable is shim.wait_readable
    assert pyfuse3.trio.lowlevel.wait_readable is shim.wait_readable
