"""What both ends of a peer connection share: the jelly security and the tuned broker."""
from __future__ import annotations

from twisted.spread import jelly, pb


def strict_security() -> jelly.SecurityOptions:
    """Plain data only: lists, tuples, dicts, strings, bytes, numbers, None.

    Our own object rather than PB's global one, which any import may widen with
    setUnjellyableForClass; circuit registers no classes at all.
    """
    security = jelly.SecurityOptions()
    security.allowBasicTypes()
    return security


class Broker(pb.Broker):
    """Small request/answer messages: no Nagle delay (40 ms with delayed ACKs), and keepalive."""

    def connectionMade(self):
        super().connectionMade()
        self.transport.setTcpNoDelay(True)
        self.transport.setTcpKeepAlive(True)
