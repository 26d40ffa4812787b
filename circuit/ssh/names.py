"""What the SFTP and exec sides share: paths from the client, attributes and
``ls -l`` lines, and who the caller is.

A client's path is only ever a path in the circuit tree: it is decoded
(undecodable bytes kept as surrogates, as the mount does), made absolute against
``/`` and normalised with ``..`` stopping at ``/``; only ``fs/`` leads to real
files, and `circuit.tree.fs` keeps those inside their root.
"""
from __future__ import annotations

import errno as _errno
import os
import stat as st

from twisted.conch.ls import lsLine
from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure

from circuit import errors
from circuit.interfaces import Attr, ICircuit

log = Logger("circuit.ssh")


def tree_path(circuit: ICircuit, raw) -> tuple:
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    if "\0" in text:
        raise errors.Invalid("a path cannot hold a NUL byte")
    return circuit.resolve(text or "/")


def shown(path: tuple) -> str:
    return "/" + "/".join(path)


def stat_result(attr: Attr) -> os.stat_result:
    kind = st.S_IFDIR if attr.kind == "dir" else st.S_IFREG
    return os.stat_result((kind | attr.mode, 0, 0, 2 if attr.kind == "dir" else 1,
                           os.getuid(), os.getgid(), attr.size,
                           int(attr.mtime), int(attr.mtime), int(attr.mtime)))


def sftp_attrs(attr: Attr) -> dict:
    s = stat_result(attr)
    return {"size": s.st_size, "uid": s.st_uid, "gid": s.st_gid, "permissions": s.st_mode,
            "atime": s.st_atime, "mtime": s.st_mtime}


def ls_line(name: str, attr: Attr) -> str:
    return lsLine(name, stat_result(attr))


def error_line(error: errors.CircuitError) -> str:
    """The element's one line and the errno's name, as the error file shows them."""
    return f"{error.message} ({_errno.errorcode.get(error.errno, error.errno)})"


def as_circuit_error(failure: Failure) -> errors.CircuitError:
    """Every failure a view can meet, as one CircuitError (logging what is a bug)."""
    if failure.check(errors.CircuitError):
        return failure.value
    if failure.check(CancelledError):
        return errors.Interrupted()
    log.failure("unexpected error serving SSH", failure)
    return errors.CircuitError("internal error (logged by the host)")
