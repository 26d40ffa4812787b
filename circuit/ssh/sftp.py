"""The ``sftp`` subsystem: SFTP requests as calls on the whole circuit.

One open handle is one open file of the connection's `Session`, so a ``get`` of
``recv`` reads one message however the client slices it (OpenSSH pipelines
READs at growing offsets and stops only at EOF), and a ``put`` into ``send`` is
one message, delivered at CLOSE.  Every read ends in `hand_over` right before
its DATA packet is written: a message goes only to a client still there.
A subsystem whose connection is lost closes its files without delivering what
they had written (its writer gave up).
"""
from __future__ import annotations

from typing import Optional

from twisted.conch.interfaces import ISFTPFile, ISFTPServer
from twisted.conch.ssh import filetransfer
from twisted.conch.ssh.filetransfer import SFTPError
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from circuit import errors
from circuit.interfaces import ICaller, OpenFlags
from circuit.commands.text import as_circuit_error, error_line, ls_line, shown, tree_path
from circuit.ssh.names import sftp_attrs
from circuit.tree.handles import hand_over

CONCH_LOG = Logger(namespace="twisted.conch.circuit")

# What one READ answers at most (OpenSSH asks 32 KiB; its packets hold 256 KiB).
MAX_READ = 64 * 1024

_STATUS = {errors.NotFound.errno: filetransfer.FX_NO_SUCH_FILE,
           errors.ReadOnly.errno: filetransfer.FX_PERMISSION_DENIED,
           errors.NotPermitted.errno: filetransfer.FX_PERMISSION_DENIED}


def _refused(failure):
    """A failure as the SFTP status the client sees, with the element's line."""
    error = as_circuit_error(failure)
    raise SFTPError(_STATUS.get(error.errno, filetransfer.FX_FAILURE), error_line(error))


def _flags(pflags: int) -> OpenFlags:
    return OpenFlags(read=bool(pflags & filetransfer.FXF_READ),
                     write=bool(pflags & (filetransfer.FXF_WRITE | filetransfer.FXF_APPEND)),
                     truncate=bool(pflags & filetransfer.FXF_TRUNC),
                     append=bool(pflags & filetransfer.FXF_APPEND),
                     create=bool(pflags & filetransfer.FXF_CREAT),
                     exclusive=bool(pflags & filetransfer.FXF_EXCL))


def _changes(attrs: dict) -> dict:
    """SETSTAT's attributes as the tree's setattr arguments."""
    return {"size": attrs.get("size"),
            "mode": attrs["permissions"] & 0o7777 if "permissions" in attrs else None,
            "mtime": attrs.get("mtime")}


class SFTPSubsystem(filetransfer.FileTransferServer):
    """conch's SFTP protocol, told first when its channel goes."""

    _log = property(lambda self: CONCH_LOG)  # filtered with conch's own narration

    def connectionLost(self, reason):
        self.client.gone = True  # before conch closes the open files: nothing is delivered
        super().connectionLost(reason)


@implementer(ISFTPServer)
class SFTPServer:
    """One sftp channel of a user's connection."""

    def __init__(self, user):
        self.user = user
        self.circuit = user.circuit
        self.session = user.session
        self.gone = False

    def _path(self, raw) -> tuple:
        return tree_path(self.circuit, raw)

    def _do(self, fn, *args) -> Deferred:
        return maybeDeferred(fn, *args).addErrback(_refused)

    def gotVersion(self, otherVersion, extData):
        return {}

    def openFile(self, filename, flags, attrs):
        f = SFTPFile(self)
        mode = attrs.get("permissions", 0o666) & 0o7777
        return self._do(lambda: self.session.open(self._path(filename), _flags(flags), f, mode)) \
            .addCallback(f.opened)

    def removeFile(self, filename):
        return self._do(lambda: self.circuit.unlink(self._path(filename)))

    def renameFile(self, oldpath, newpath):
        return self._do(lambda: self.circuit.rename(self._path(oldpath), self._path(newpath)))

    def makeDirectory(self, path, attrs):
        return self._do(lambda: self.circuit.mkdir(self._path(path)))

    def removeDirectory(self, path):
        return self._do(lambda: self.circuit.rmdir(self._path(path)))

    def openDirectory(self, path):
        return self._do(lambda: self.circuit.listdir(self._path(path))).addCallback(Directory)

    def getAttrs(self, path, followLinks):
        return self._do(lambda: self.circuit.getattr(self._path(path))).addCallback(sftp_attrs)

    def setAttrs(self, path, attrs):
        return self._do(lambda: self.circuit.setattr(self._path(path), **_changes(attrs)))

    def readLink(self, path):
        raise SFTPError(filetransfer.FX_NO_SUCH_FILE, "there are no symbolic links in the circuit")

    def makeLink(self, linkPath, targetPath):
        raise SFTPError(filetransfer.FX_OP_UNSUPPORTED, "there are no symbolic links in the circuit")

    def realPath(self, path):
        return self._do(lambda: shown(self._path(path)).encode("utf-8", "surrogateescape"))

    def extendedRequest(self, extendedName, extendedData):
        raise NotImplementedError(f"no extension {extendedName!r}")


@implementer(ISFTPFile, ICaller)
class SFTPFile:
    """An open SFTP handle; also its caller, there until it is closed or its channel goes."""

    def __init__(self, server: SFTPServer):
        self.server = server
        self.number: Optional[int] = None
        self.closed = False

    def opened(self, number: int) -> "SFTPFile":
        self.number = number
        return self

    def alive(self) -> bool:
        return not self.closed and not self.server.gone and self.server.user.here()

    def _open(self):
        return self.server.session.file(self.number)

    def readChunk(self, offset, length):
        def read():
            handle = self._open().handle

            def got(data: bytes) -> bytes:
                hand_over(handle, self)  # the DATA packet is written as this returns
                return data
            return self.server.session.track(handle.read(offset, min(length, MAX_READ))).addCallback(got)
        return self.server._do(read)

    def writeChunk(self, offset, data):
        return self.server._do(lambda: self.server.session.track(self._open().handle.write(offset, data)))

    def close(self):
        session = self.server.session
        if self.server.gone or self.closed:
            self.closed = True  # its channel went: release, delivering nothing
            return session.release(self.number)

        def released(result):
            self.closed = True
            return session.release(self.number).addCallback(lambda _: result)
        # The flush delivers what was written (a message, a run command): CLOSE's
        # status is its outcome, as close(2) is through the mount.
        return self.server._do(lambda: session.track(self._open().handle.flush())).addBoth(released)

    def getAttrs(self):
        return self.server._do(lambda: self.server.circuit.getattr(self._open().path)).addCallback(sftp_attrs)

    def setAttrs(self, attrs):
        return self.server._do(lambda: self.server.circuit.setattr(self._open().path, **_changes(attrs)))


class Directory:
    """An OPENDIR's listing, read once at OPENDIR."""

    def __init__(self, entries):
        self._entries = [(name.encode("utf-8", "surrogateescape"), ls_line(name, attr).encode(
            "utf-8", "surrogateescape"), sftp_attrs(attr)) for name, attr in entries]

    def __iter__(self):
        return iter(self._entries)

    def close(self):
        self._entries = []
