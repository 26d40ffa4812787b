"""Paths as users write them, and files and errors as text: shared by every text view.

A user's path is only ever a path in the circuit tree: it is decoded (undecodable
bytes kept as surrogates, as the mount does), made absolute against ``/`` and
normalised with ``..`` stopping at ``/``; only ``fs/`` leads to real files, and
`circuit.tree.fs` keeps those inside their root.
"""
from __future__ import annotations

import errno as _errno
import os
import stat as st
import time

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure

from circuit import errors
from circuit.interfaces import Attr, ICircuit

log = Logger("circuit")


def tree_path(circuit: ICircuit, raw) -> tuple:
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    if "\0" in text:
        raise errors.Invalid("a path cannot hold a NUL byte")
    return circuit.resolve(text or "/")


def shown(path: tuple) -> str:
    return "/" + "/".join(path)


def mode_string(attr: Attr) -> str:
    """``drwxr-xr-x`` as ls shows it."""
    bits = st.S_IFDIR if attr.kind == "dir" else st.S_IFREG
    return st.filemode(bits | attr.mode)


def ls_line(name: str, attr: Attr) -> str:
    """One ``ls -l`` line: mode, links, owner, group, size, time, name."""
    when = time.localtime(attr.mtime)
    stamp = time.strftime("%b %d %H:%M" if time.time() - attr.mtime < 180 * 86400 else "%b %d  %Y", when)
    links = 2 if attr.kind == "dir" else 1
    return f"{mode_string(attr)} {links:>4} {os.getuid():<8} {os.getgid():<8} {attr.size:>8} {stamp} {name}"


def error_line(error: errors.CircuitError) -> str:
    """The element's one line and the errno's name, as the error file shows them."""
    return f"{error.message} ({_errno.errorcode.get(error.errno, error.errno)})"


def as_circuit_error(failure: Failure) -> errors.CircuitError:
    """Every failure a view can meet, as one CircuitError (logging what is a bug)."""
    if failure.check(errors.CircuitError):
        return failure.value
    if failure.check(CancelledError):
        return errors.Interrupted()
    log.failure("unexpected error serving a command", failure)
    return errors.CircuitError("internal error (logged by the host)")
