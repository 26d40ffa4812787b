"""``fs/``: a local directory exported read-write, and nothing outside it.

Every path is resolved and checked against the root before use, so ``..`` and
symbolic links cannot lead out.  File I/O runs in the reactor's thread pool so a
slow disk never stalls the event loop.
"""
from __future__ import annotations

import os
import stat as st

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread

from circuit import errors
from circuit.interfaces import Attr, OpenFlags
from circuit.tree.handles import Handle


def _oserror(e: OSError) -> errors.CircuitError:
    error = errors.CircuitError(f"fs: {e.strerror}")
    error.errno = e.errno or error.errno
    return error


def attr_of(s: os.stat_result) -> Attr:
    kind = "dir" if st.S_ISDIR(s.st_mode) else "file"
    return Attr(kind, st.S_IMODE(s.st_mode), s.st_size, s.st_mtime)


class FsRoot:
    def __init__(self, root: str):
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)

    def real(self, path: tuple, must_exist: bool = True) -> str:
        """The real path of ``fs/<path>``, refused if it would leave the root."""
        if any(p in ("", ".", "..") or "/" in p or "\0" in p for p in path):
            raise errors.ReadOnly("fs: path components . and .. are not allowed")
        candidate = os.path.join(self.root, *path)
        # Resolve links in the parent (and the leaf when it must exist).
        resolved = os.path.realpath(candidate if must_exist else os.path.dirname(candidate))
        if resolved != self.root and not resolved.startswith(self.root + os.sep):
            raise errors.ReadOnly("fs: that path leads outside the exported directory")
        if must_exist:
            return resolved
        return os.path.join(resolved, os.path.basename(candidate))

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            raise _oserror(e)

    def getattr(self, path: tuple) -> Attr:
        return attr_of(self._call(os.stat, self.real(path)))

    def listdir(self, path: tuple) -> list[tuple[str, Attr]]:
        where = self.real(path)
        entries = []
        for name in sorted(self._call(os.listdir, where)):
            try:
                entries.append((name, self.getattr(path + (name,))))
            except errors.CircuitError:
                continue  # a link that leads out, or a file that vanished
        return entries

    def mkdir(self, path: tuple) -> None:
        self._call(os.mkdir, self.real(path, must_exist=False), 0o777)

    def rmdir(self, path: tuple) -> None:
        if not path:
            raise errors.NotPermitted("fs: the export root cannot be removed")
        self._call(os.rmdir, self.real(path, must_exist=False))

    def unlink(self, path: tuple) -> None:
        self._call(os.unlink, self.real(path, must_exist=False))

    def rename(self, old: tuple, new: tuple) -> None:
        self._call(os.rename, self.real(old, must_exist=False), self.real(new, must_exist=False))

    def setattr(self, path: tuple, size=None, mode=None, mtime=None) -> Attr:
        where = self.real(path)
        if size is not None:
            self._call(os.truncate, where, size)
        if mode is not None:
            self._call(os.chmod, where, st.S_IMODE(mode))
        if mtime is not None:
            self._call(os.utime, where, (mtime, mtime))
        return self.getattr(path)

    def open(self, path: tuple, flags: OpenFlags, mode: int = 0o666) -> "FsHandle":
        os_flags = os.O_RDWR if (flags.read and flags.write) else (os.O_WRONLY if flags.write else os.O_RDONLY)
        if flags.create:
            os_flags |= os.O_CREAT
        if flags.exclusive:
            os_flags |= os.O_EXCL
        if flags.truncate:
            os_flags |= os.O_TRUNC
        if flags.append:
            os_flags |= os.O_APPEND
        where = self.real(path, must_exist=not flags.create)
        if os.path.isdir(where):
            raise errors.IsDirectory(f"fs: {'/'.join(path)} is a directory")
        return FsHandle(self._call(os.open, where, os_flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode))


class FsHandle(Handle):
    """An ordinary file: positional reads and writes, off the reactor thread."""

    plain = True

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, offset: int, size: int) -> Deferred:
        return deferToThread(os.pread, self.fd, size, offset).addErrback(self._error)

    def write(self, offset: int, data: bytes) -> Deferred:
        return deferToThread(os.pwrite, self.fd, data, offset).addErrback(self._error)

    def release(self) -> Deferred:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
        return succeed(None)

    @staticmethod
    def _error(failure):
        failure.trap(OSError)
        raise _oserror(failure.value)
