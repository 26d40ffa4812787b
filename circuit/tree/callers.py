"""Asking a caller at the other end of a socket whether it is still there.

A view hears that its client hung up when the reactor reads the end of the
stream, which can be well after the client died: the host was busy, or stopped,
while the client was killed, and the message arrives before the end is read.
So at the hand-over the socket itself is asked, without waiting: poll(2) says
whether the peer has shut its end or the connection failed (POLLRDHUP, POLLHUP,
POLLERR), whatever data is still unread before that end.
"""
from __future__ import annotations

import select

_GONE = select.POLLRDHUP | select.POLLHUP | select.POLLERR


def peer_gone(transport) -> bool:
    """True if ``transport``'s socket says its peer has closed or failed; False when it
    does not (or there is no socket to ask: then the view's own word stands)."""
    try:
        fd = transport.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if fd is None or fd < 0:
        return True  # closed here already
    poll = select.poll()
    poll.register(fd, select.POLLRDHUP)
    return any(events & _GONE for _, events in poll.poll(0))
