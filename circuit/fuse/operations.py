"""pyfuse3 Operations over the circuit tree.  Inodes and errnos live here, nothing else.

Every handler turns its request into one call on the tree, awaits the Deferred
on the shared asyncio loop, and maps errors once (`_errno`).  Requests that may
block are watched for signals so Ctrl-C and ``timeout`` work (see signals.py).
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import os
import stat as st
from collections import Counter
from typing import Any, Optional

import pyfuse3
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from circuit import errors
from circuit.fuse.inodes import InodeTable
from circuit.fuse.signals import InterruptWatch, ProcessCaller
from circuit.interfaces import Attr, ICircuit, OpenFlags
from circuit.tree.handles import hand_over
from circuit.tree.session import Session

log = Logger("circuit.fuse")



def _errno(failure_or_error: Any) -> pyfuse3.FUSEError:
    e = failure_or_error
    if isinstance(e, errors.CircuitError):
        return pyfuse3.FUSEError(e.errno)
    if isinstance(e, (CancelledError, asyncio.CancelledError)):
        return pyfuse3.FUSEError(errno.EINTR)
    log.failure("unexpected error in a FUSE request", Failure(e))
    return pyfuse3.FUSEError(errno.EIO)


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


def _flags(os_flags: int) -> OpenFlags:
    access = os_flags & os.O_ACCMODE
    return OpenFlags(
        read=access in (os.O_RDONLY, os.O_RDWR),
        write=access in (os.O_WRONLY, os.O_RDWR),
        truncate=bool(os_flags & os.O_TRUNC),
        append=bool(os_flags & os.O_APPEND),
        create=bool(os_flags & os.O_CREAT),
        exclusive=bool(os_flags & os.O_EXCL),
    )


class CircuitOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, circuit: ICircuit, reactor, loop: asyncio.AbstractEventLoop,
                 timeout: float = 1.0, requests: Optional[Counter] = None):
        super().__init__()
        self.requests = Counter() if requests is None else requests  # see _counted
        self.circuit = circuit
        self.loop = loop
        self.inodes = InodeTable()
        self.watch = InterruptWatch(reactor)
        self.session = Session(circuit)  # the open files, by FUSE file handle
        self._dirs: dict[int, list] = {}
        self._fh = itertools.count(1)
        self._timeout = timeout
        self._uid, self._gid = os.getuid(), os.getgid()
        # Set while unmounting: blocked and new requests fail with EHOSTDOWN (the
        # host is going away).  EINTR would not do: coreutils retry reads on EINTR.
        self.closing = False

    # -- plumbing ------------------------------------------------------------------
    async def _await(self, d: Deferred, pid: int = 0) -> Any:
        if self.closing and not d.called:
            d.cancel()
            raise pyfuse3.FUSEError(errno.EHOSTDOWN)
        self.watch.watch(pid, d)
        try:
            return await d.asFuture(self.loop)
        except pyfuse3.FUSEError:
            raise
        except BaseException as e:  # one error map for every request
            if isinstance(e, asyncio.CancelledError) and not d.called:
                d.cancel()
            if self.closing and isinstance(e, (CancelledError, asyncio.CancelledError)):
                raise pyfuse3.FUSEError(errno.EHOSTDOWN) from None
            raise _errno(e) from None

    def _attrs(self, path: tuple, attr: Attr) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = self.inodes.inode(path)
        a.generation = 0
        a.entry_timeout = self._timeout
        a.attr_timeout = self._timeout
        if attr.kind == "dir":
            a.st_mode = st.S_IFDIR | attr.mode
            a.st_nlink = 2
        else:
            a.st_mode = st.S_IFREG | attr.mode
            a.st_nlink = 1
        a.st_size = attr.size
        a.st_uid, a.st_gid = self._uid, self._gid
        a.st_blksize = 4096
        a.st_blocks = (attr.size + 511) // 512
        ns = int(attr.mtime * 1e9)
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = ns
        return a

    async def _getattr(self, path: tuple) -> pyfuse3.EntryAttributes:
        return self._attrs(path, await self._await(self.circuit.getattr(path)))

    def _child(self, parent: int, name: bytes) -> tuple:
        try:
            return self.inodes.path(parent) + (_name(name),)
        except KeyError:
            raise pyfuse3.FUSEError(errno.ESTALE)

    def _path(self, inode: int) -> tuple:
        try:
            return self.inodes.path(inode)
        except KeyError:
            raise pyfuse3.FUSEError(errno.ESTALE)

    # -- names ---------------------------------------------------------------------
    async def lookup(self, parent_inode, name, ctx=None):
        path = self._child(parent_inode, name)
        attrs = await self._getattr(path)
        self.inodes.looked_up(path)
        return attrs

    async def forget(self, inode_list):
        for ino, count in inode_list:
            self.inodes.forget(ino, count)

    async def getattr(self, inode, ctx=None):
        return await self._getattr(self._path(inode))

    async def setattr(self, inode, attr, fields, fh, ctx):
        path = self._path(inode)
        size = attr.st_size if fields.update_size else None
        mode = attr.st_mode if fields.update_mode else None
        mtime = attr.st_mtime_ns / 1e9 if fields.update_mtime else None
        result = await self._await(self.circuit.setattr(path, size, mode, mtime))
        return self._attrs(path, result)

    async def mkdir(self, parent_inode, name, mode, ctx):
        await self._await(self.circuit.mkdir(self._child(parent_inode, name)))
        return await self.lookup(parent_inode, name)

    async def rmdir(self, parent_inode, name, ctx):
        path = self._child(parent_inode, name)
        await self._await(self.circuit.rmdir(path))
        self.inodes.removed(path)  # a new element of that name is a new inode

    async def unlink(self, parent_inode, name, ctx):
        path = self._child(parent_inode, name)
        await self._await(self.circuit.unlink(path))
        self.inodes.removed(path)

    async def rename(self, parent_old, name_old, parent_new, name_new, flags, ctx):
        old, new = self._child(parent_old, name_old), self._child(parent_new, name_new)
        if flags:  # RENAME_NOREPLACE, RENAME_EXCHANGE: not offered
            raise pyfuse3.FUSEError(errno.EINVAL)
        await self._await(self.circuit.rename(old, new))
        self.inodes.rename(old, new)

    # -- directories ---------------------------------------------------------------
    async def opendir(self, inode, ctx):
        path = self._path(inode)
        entries = await self._await(self.circuit.listdir(path))
        fh = next(self._fh)
        self._dirs[fh] = [(path + (name,), attr) for name, attr in entries]
        return fh

    async def readdir(self, fh, start_id, token):
        entries = self._dirs.get(fh, [])
        for i in range(start_id, len(entries)):
            path, attr = entries[i]
            if not pyfuse3.readdir_reply(token, os.fsencode(path[-1]), self._attrs(path, attr), i + 1):
                break
            self.inodes.looked_up(path)

    async def releasedir(self, fh):
        self._dirs.pop(fh, None)

    # -- files ---------------------------------------------------------------------
    async def open(self, inode, flags, ctx):
        return await self._open(self._path(inode), _flags(flags), ctx)

    async def create(self, parent_inode, name, mode, flags, ctx):
        path = self._child(parent_inode, name)
        info = await self._open(path, _flags(flags | os.O_CREAT), ctx, st.S_IMODE(mode))
        attrs = await self._getattr(path)
        self.inodes.looked_up(path)
        return info, attrs

    async def _open(self, path: tuple, flags: OpenFlags, ctx, mode: int = 0o666):
        caller = ProcessCaller(ctx.pid)
        fh = await self._await(self.session.open(path, flags, caller, mode))
        handle = self.session.file(fh).handle
        # Control files have no real size and may block: they bypass the page cache.
        return pyfuse3.FileInfo(fh=fh, direct_io=not handle.plain, keep_cache=False,
                                nonseekable=handle.streaming)

    def _file(self, fh: int):
        try:
            return self.session.file(fh)
        except errors.CircuitError as e:
            raise _errno(e) from None

    async def read(self, fh, off, size):
        f = self._file(fh)
        data = await self._await(f.handle.read(off, size), f.caller.pid)
        # The last moment before the kernel has the bytes: a message goes only to a
        # reader still there (pyfuse3 replies as soon as this returns).
        try:
            hand_over(f.handle, f.caller)
        except errors.CircuitError as e:
            raise _errno(e) from None
        return data

    async def write(self, fh, off, buf):
        f = self._file(fh)
        return await self._await(f.handle.write(off, bytes(buf)), f.caller.pid)

    async def flush(self, fh):
        f = self._file(fh)
        await self._await(f.handle.flush(), f.caller.pid)

    async def release(self, fh):
        try:
            await self._await(self.session.release(fh))
        except pyfuse3.FUSEError:
            pass  # release cannot report errors; the element's error file has it

    async def fsync(self, fh, datasync):
        pass

    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_namemax = 255
        return s


def _counted(name: str, handler):
    """A request handler that counts its requests in the host's sys/stat ("fuse read": n),
    so that what an operation costs in FUSE requests is measured, not guessed."""
    key = "fuse " + name

    async def counted(self, *args):
        self.requests[key] += 1
        return await handler(self, *args)
    counted.__name__ = counted.__qualname__ = name
    counted.__doc__ = handler.__doc__
    return counted


for _request in ("lookup", "forget", "getattr", "setattr", "mkdir", "rmdir", "unlink", "rename",
                 "opendir", "readdir", "releasedir", "open", "create", "read", "write", "flush",
                 "release", "fsync", "statfs"):
    setattr(CircuitOperations, _request, _counted(_request, getattr(CircuitOperations, _request)))
