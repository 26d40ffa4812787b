"""pyfuse3's event-loop layer, with one change: a worker back for the next request first
looks whether one is already there.

pyfuse3 runs on asyncio through a stand-in for trio (``pyfuse3.asyncio``).  Its
``wait_readable`` registers /dev/fuse with the loop, waits for the loop's next turn and
unregisters it again: two epoll_ctl calls, a Future and a loop turn for every request,
about a third of what a bare pyfuse3 file system spends on one (docs/benchmarks.md).
When requests come faster than one at a time (a writer and a reader using the mount at
once, a FLUSH right behind its WRITE, a RELEASE behind that) the next one is often there
already: one poll(2) that does not wait finds it, and the worker reads it at once.  After
``STREAK`` requests taken that way it waits the usual way once, so the reactor's own
events (the network, timers) never wait behind a stream of requests.
"""
from __future__ import annotations

import select
import types

import pyfuse3
import pyfuse3.asyncio as stock

STREAK = 8

_polls: dict[int, select.poll] = {}
_streak = 0


async def wait_readable(fd) -> None:
    global _streak
    if _streak < STREAK:
        poll = _polls.get(fd)
        if poll is None:
            poll = _polls[fd] = select.poll()
            poll.register(fd, select.POLLIN)
        if poll.poll(0):  # readable, or closed: either way the read says which
            _streak += 1
            return
    _streak = 0
    await stock.wait_readable(fd)


def enable() -> None:
    """Run pyfuse3 on asyncio, through this module's wait_readable."""
    stock.enable()
    trio = types.ModuleType(__name__ + ".trio")
    trio.__dict__.update({k: v for k, v in vars(stock).items() if not k.startswith("__")})
    trio.wait_readable = wait_readable
    trio.lowlevel = trio.from_thread = trio
    pyfuse3.trio = trio
