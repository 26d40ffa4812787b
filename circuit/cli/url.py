"""``circuit --url URL COMMAND`` from a machine without a host of its own.

The command goes to the host at URL over mutual TLS, on the port its PB listens on, asking
for the command line's protocol at the handshake (ALPN ``circuit-cmd/1``, `circuit.tls.alpn`);
the host runs it as it runs a command from its own control socket, with the client
certificate's rights.  Plain Python (the standard library's ssl), no Twisted: a command costs
a Python start and a TLS handshake, as through a local host, not the few hundred milliseconds
of loading Twisted.  ``--pb`` runs it here with the Python client instead (`circuit.cli.remote`),
as does a data directory without client credentials (a host's own, whose CA signs one).
"""
from __future__ import annotations

import os
import socket
import ssl
import sys

from circuit.cli.client import NoHost, run_on
from circuit.control import wire

# Annotations only (from __future__): importing typing would cost 3 ms of a 45 ms command.
CONNECT_TIMEOUT = 10.0  # the dial and the handshake; the command itself may block for ever


class Unreachable(NoHost):
    """One line for standard error, exit status 1."""


def parse(url: str) -> tuple[str, int, str]:
    """``circuit://HOST:PORT/XID`` -> (host, port, XID).  As `circuit.pb.peers.parse_url`
    reads it, without Twisted or urllib.parse (4 ms of a 45 ms command)."""
    rest = url[len("circuit://"):] if url.startswith("circuit://") else ""
    address, _, host_id = rest.partition("/")
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not host_id.strip("/"):
        raise Unreachable(f"not a circuit URL: {url!r} (want circuit://HOST:PORT/X...)")
    return host, int(port), host_id.strip("/")


def credentials(data: str) -> tuple[str, str, str] | None:
    """``DATA/client.pem``, ``client.key`` and ``ca.pem`` (``circuit ca client``), if there."""
    files = tuple(os.path.join(data, n) for n in ("client.pem", "client.key", "ca.pem"))
    return files if all(os.path.exists(f) for f in files) else None


def connect(url: str, data: str) -> ssl.SSLSocket | None:
    """A TLS connection to the host at ``url`` speaking the command line's protocol; None when
    this cannot be (no client credentials here, or a host that does not offer it)."""
    host, port, host_id = parse(url)
    files = credentials(data)
    if files is None:
        return None
    cert, key, ca = files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(ca)
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise Unreachable(f"cannot use the client credentials in {data}: {e}")
    context.set_alpn_protocols([wire.ALPN.decode()])
    try:
        raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        raise Unreachable(f"cannot reach {url}: {e.strerror or e}")
    try:
        # The certificate must chain to the cluster CA and name the host ID in the URL.
        sock = context.wrap_socket(raw, server_hostname=host_id)
    except (OSError, ssl.SSLError) as e:
        raw.close()
        raise Unreachable(f"TLS handshake with {url} failed: "
                          f"{getattr(e, 'verify_message', None) or getattr(e, 'reason', None) or e}")
    if sock.selected_alpn_protocol() != wire.ALPN.decode():
        sock.close()  # a host from before the command line spoke TLS: PB it is
        return None
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(argv: list, url: str, data: str) -> int | None:
    """The command's exit status, or None if it must go by PB (see `connect`)."""
    sock = connect(url, data)
    if sock is None:
        return None
    try:
        return run_on(sock, argv)
    except (ssl.SSLError, ConnectionResetError, ConnectionAbortedError) as e:
        print(f"circuit: the connection to {url} failed before the command ended: {e}",
              file=sys.stderr)
        return 1
