"""What a refused TLS handshake says, and saying it: a certificate from another CA, none, or
an expired one otherwise ends a connection in silence."""
from __future__ import annotations

from OpenSSL import SSL
from twisted.logger import Logger

log = Logger("circuit.pb")


def tls_refusal(reason) -> str:
    """What a failed TLS handshake says, or "" for any other lost connection."""
    if reason is not None and reason.check(SSL.Error):
        errors = reason.value.args[0] if reason.value.args else []
        said = "; ".join(e[-1] for e in errors if isinstance(e, tuple) and e and e[-1])
        return said or str(reason.value)
    return ""


def say_refused(transport, reason) -> str:
    """Log a connection lost to a refused TLS handshake; return what it said, or ""."""
    refusal = tls_refusal(reason)
    if refusal:
        peer = getattr(transport, "getPeer", lambda: None)()
        log.warn("TLS handshake with {peer} failed: {why} (is it of this cluster's CA?)",
                 peer=f"{peer.host}:{peer.port}" if hasattr(peer, "host") else "?", why=refusal)
    return refusal
