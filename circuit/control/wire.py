"""Frames on the local control socket, and where the socket is; the same frames go over a
host's TLS port for ``circuit --url`` (`ALPN`).  Plain Python only: the command line imports
this and nothing heavier, so a command costs about a Python start.

A frame is one type byte, a 4-byte big-endian length and the payload.  The client
sends ``A`` (the command's words, each ended by a NUL byte) first; then, once the host asks
for it with ``W``, its standard input as ``I`` frames and ``E`` at end of file.  The
host sends ``O`` (standard output), ``R`` (standard error) and, last, ``X`` with the
exit status as 4 bytes.
"""
from __future__ import annotations

import os
import struct

ARGV, INPUT, END, WANT, OUT, ERR, EXIT = b"A", b"I", b"E", b"W", b"O", b"R", b"X"
ALPN = b"circuit-cmd/1"  # the same frames over a host's TLS port (circuit --url)
HEADER = struct.Struct(">cI")
MAX_FRAME = 1024 * 1024  # a command's words, or one piece of input
PIECE = 64 * 1024  # how the client sends its input


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def words_to_wire(argv: list) -> bytes:
    return b"".join(os.fsencode(a) + b"\0" for a in argv)


def words_from_wire(payload: bytes) -> list:
    """The command's words; undecodable bytes kept as surrogates, as paths are."""
    if payload and not payload.endswith(b"\0"):
        raise ValueError("the command's words are not NUL-terminated")
    return [os.fsdecode(w) for w in payload.split(b"\0")[:-1]]


def frames(buffer: bytearray):
    """Take the whole frames off the front of ``buffer``: (kind, payload) pairs."""
    while len(buffer) >= HEADER.size:
        kind, size = HEADER.unpack_from(buffer)
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes (at most {MAX_FRAME})")
        if len(buffer) < HEADER.size + size:
            return
        payload = bytes(buffer[HEADER.size:HEADER.size + size])
        del buffer[:HEADER.size + size]
        yield kind, payload


def private_dir() -> str:
    return f"/tmp/circuit-{os.getuid()}"


def socket_path(data: str) -> str:
    """``DATA/control.sock``; when that is too long for a Unix socket address (108 bytes),
    a name derived from it in a directory of this user's alone under /tmp."""
    data = os.path.abspath(os.path.expanduser(data))
    path = os.path.join(data, "control.sock")
    if len(os.fsencode(path)) <= 100:
        return path
    import hashlib  # only here: a command line's start-up is what it costs
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:24]
    return os.path.join(private_dir(), digest + ".sock")


def check_private(directory: str) -> None:
    """Refuse a directory someone else could have made or can write (a socket there could
    be theirs)."""
    s = os.lstat(directory)
    if s.st_uid != os.getuid() or s.st_mode & 0o077 or not os.path.isdir(directory):
        raise PermissionError(f"{directory} is not this user's private directory")
