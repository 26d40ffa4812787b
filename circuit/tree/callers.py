"""Asking a caller at the other end of a socket whether it is still there; and what only
a member's callers may do.

A view hears that its client hung up when the reactor reads the end of the
stream, which can be well after the client died: the host was busy, or stopped,
while the client was killed, and the message arrives before the end is read.
So at the hand-over the socket itself is asked, without waiting: poll(2) says
whether the peer has shut its end or the connection failed (POLLRDHUP, POLLHUP,
POLLERR), whatever data is still unread before that end.
"""
from __future__ import annotations

import select

from circuit import errors

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


# What only members may open, and what it does.  A host that opens one of these on another
# host for a caller of its own (its views, the command line from afar) does so with its own,
# a member's, authority over their connection: so it refuses a client's caller itself first
# (`circuit.pb.remote_tree.RemoteHostTree`), as the owner refuses a client that asks it.
MEMBERS_ONLY = {("sys", "stop"): "stop this host", ("sys", "join"): "join circuits"}


def members_only(caller, what: str) -> None:
    """Refuse ``caller`` ``what`` if a client certificate vouches for it."""
    if getattr(caller, "client_certificate", False):
        raise errors.NotPermitted(f"a client certificate may not {what}: run it on a member "
                                  "(its command line, ssh or mount)")
