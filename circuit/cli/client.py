"""The client commands of ``circuit`` (ls, send, recv, mkproc, ...): one command, one
connection to the local host's control socket, which runs it.

Plain Python only (no Twisted), so that a command costs about what starting Python
costs: these run in shell loops.  Standard input is read only when the host asks
for it, so ``circuit recv`` inside ``while read`` does not eat the loop's input.
"""
from __future__ import annotations

import os
import select
import sys

# The C core of the socket module: `socket` itself spends about 5 ms building its
# enums, which is a third of what a command may cost.
import _socket

from circuit.control import wire


class NoHost(Exception):
    """No host to talk to: one line, exit status 1."""


def connect(data: str) -> "_socket.socket":
    path = wire.socket_path(data)
    try:
        if os.path.dirname(path) == wire.private_dir():
            wire.check_private(os.path.dirname(path))
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        raise NoHost(f"no circuit host is running with data directory {data} "
                     "(start one with: circuit start; or give --data DIR)")
    except OSError as e:
        raise NoHost(f"cannot reach the host's control socket {path}: {e.strerror or e}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run(argv: list, data: str) -> int:
    """Run one command on the local host; its output here, its exit status back."""
    return run_on(connect(data), argv)


def run_on(sock, argv: list) -> int:
    """Run one command on the host at the other end of ``sock`` (the local socket, or a
    TLS connection to another machine's host: `circuit.cli.url`); closes it."""
    sock.sendall(wire.frame(wire.ARGV, wire.words_to_wire(argv)))
    # TLS decrypts a record (16 KiB at most) at a time: what is left of one is read before
    # poll is asked, and a larger buffer would only be allocated and shrunk at every read.
    pending = getattr(sock, "pending", None)
    size = 1 << 20 if pending is None else 1 << 16
    pending = pending or (lambda: 0)
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    host, reading_input = sock.fileno(), False
    buffer = bytearray()
    try:
        while True:
            for fd, _ in poll.poll():
                if fd != host:  # standard input, which the host asked for
                    piece = _read_input()
                    sock.sendall(wire.frame(wire.INPUT, piece) if piece else wire.frame(wire.END))
                    if not piece:
                        poll.unregister(0)
                    continue
                received = sock.recv(size)
                while received and pending():
                    received += sock.recv(pending())
                if not received:
                    print("circuit: the host closed the connection before the command ended",
                          file=sys.stderr)
                    return 1
                buffer += received
                for kind, payload in wire.frames(buffer):
                    if kind == wire.OUT:
                        _write_all(1, payload)
                    elif kind == wire.ERR:
                        _write_all(2, payload)
                    elif kind == wire.WANT and not reading_input:
                        reading_input = True
                        _want_input(poll, sock)
                    elif kind == wire.EXIT:
                        return int.from_bytes(payload, "big")
    finally:
        sock.close()


def _read_input() -> bytes:
    try:
        return os.read(0, wire.PIECE)
    except OSError:
        return b""  # no standard input at all: an empty one


def _want_input(poll, sock) -> None:
    try:
        if os.fstat(0).st_mode & 0o170000 != 0o100000:  # not a regular file: poll it
            poll.register(0, select.POLLIN)
            return
    except OSError:
        pass
    # A regular file (which poll cannot wait on) or none: send it now.
    while True:
        piece = _read_input()
        if not piece:
            break
        sock.sendall(wire.frame(wire.INPUT, piece))
    sock.sendall(wire.frame(wire.END))
