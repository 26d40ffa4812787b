"""The floor for the benchmarks: a pyfuse3 queue with no semantics.

    python bench/bare_queue_fs.py MOUNTPOINT

It runs on the same kind of loop as a circuit host (Twisted's asyncio reactor
on a fresh asyncio loop, pyfuse3's asyncio mode, ``pyfuse3.main`` as a task)
and opens files the same way (direct_io, no page cache, nonseekable), but does
nothing beyond moving bytes:

  send      each open-write-close puts what was written on an unbounded queue
            (at flush, like circuit; it never blocks)
  recv      the first read of an open waits for the next message; later reads
            return the rest of it, then EOF
  NAME/     mkdir makes a directory holding one file ``ctl`` whose writes are
            kept and whose reads return the last thing written (no waiting)

SIGTERM (or SIGINT) unmounts and exits.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import os
import stat
import sys
import time

import pyfuse3
import pyfuse3.asyncio

TIMEOUT = 1.0  # entry and attribute timeouts, as circuit uses
ROOT = pyfuse3.ROOT_INODE
SEND, RECV = ROOT + 1, ROOT + 2


class _Node:
    __slots__ = ("inode", "name", "is_dir", "mode", "children", "data")

    def __init__(self, inode: int, name: bytes, is_dir: bool, mode: int):
        self.inode = inode
        self.name = name
        self.is_dir = is_dir
        self.mode = mode
        self.children: dict[bytes, int] = {}
        self.data = b""


class _Open:
    __slots__ = ("node", "buffer", "message")

    def __init__(self, node: _Node):
        self.node = node
        self.buffer = bytearray()
        self.message: bytes | None = None


class BareQueue(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.waiting = 0  # reads of recv waiting for a message
        self.nodes: dict[int, _Node] = {}
        self._inodes = itertools.count(ROOT)
        self._fh = itertools.count(1)
        self.open_files: dict[int, _Open] = {}
        self._uid, self._gid = os.getuid(), os.getgid()
        self._now = int(time.time() * 1e9)
        root = self._make(b"", True, 0o777, None)
        self._make(b"send", False, 0o222, root)
        self._make(b"recv", False, 0o444, root)

    def _make(self, name: bytes, is_dir: bool, mode: int, parent: _Node | None) -> _Node:
        node = _Node(next(self._inodes), name, is_dir, mode)
        self.nodes[node.inode] = node
        if parent is not None:
            parent.children[name] = node.inode
        return node

    def _node(self, inode: int) -> _Node:
        try:
            return self.nodes[inode]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ESTALE)

    def _attrs(self, node: _Node) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.inode
        a.generation = 0
        a.entry_timeout = a.attr_timeout = TIMEOUT
        if node.is_dir:
            a.st_mode, a.st_nlink = stat.S_IFDIR | node.mode, 2
        else:
            a.st_mode, a.st_nlink = stat.S_IFREG | node.mode, 1
        a.st_size = 0
        a.st_uid, a.st_gid = self._uid, self._gid
        a.st_blksize = 4096
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = self._now
        return a

    # -- names ---------------------------------------------------------------------
    async def lookup(self, parent_inode, name, ctx=None):
        inode = self._node(parent_inode).children.get(name)
        if inode is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(self.nodes[inode])

    async def getattr(self, inode, ctx=None):
        return self._attrs(self._node(inode))

    async def setattr(self, inode, attr, fields, fh, ctx):
        return self._attrs(self._node(inode))  # O_TRUNC and touch: accepted, ignored

    async def mkdir(self, parent_inode, name, mode, ctx):
        parent = self._node(parent_inode)
        if parent.inode != ROOT:
            raise pyfuse3.FUSEError(errno.EACCES)
        if name in parent.children:
            raise pyfuse3.FUSEError(errno.EEXIST)
        node = self._make(name, True, 0o555, parent)
        self._make(b"ctl", False, 0o666, node)
        return self._attrs(node)

    async def rmdir(self, parent_inode, name, ctx):
        parent = self._node(parent_inode)
        inode = parent.children.get(name)
        if inode is None or parent.inode != ROOT or not self.nodes[inode].is_dir:
            raise pyfuse3.FUSEError(errno.ENOENT if inode is None else errno.EACCES)
        del parent.children[name]
        # Inodes stay in the table: the kernel may still hold them (no forget handling).

    # -- directories ---------------------------------------------------------------
    async def opendir(self, inode, ctx):
        return inode

    async def readdir(self, fh, start_id, token):
        names = sorted(self._node(fh).children.items())
        for i in range(start_id, len(names)):
            name, inode = names[i]
            if not pyfuse3.readdir_reply(token, name, self._attrs(self.nodes[inode]), i + 1):
                break

    async def releasedir(self, fh):
        pass

    # -- files ---------------------------------------------------------------------
    async def open(self, inode, flags, ctx):
        node = self._node(inode)
        if node.is_dir:
            raise pyfuse3.FUSEError(errno.EISDIR)
        fh = next(self._fh)
        self.open_files[fh] = _Open(node)
        return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False, nonseekable=True)

    async def read(self, fh, off, size):
        f = self.open_files[fh]
        if f.node.inode == RECV:
            if f.message is None:
                self.waiting += 1
                try:
                    message = await self.queue.get()
                finally:
                    self.waiting -= 1
                if message is None:  # shutting down
                    raise pyfuse3.FUSEError(errno.EHOSTDOWN)
                f.message = message
            return f.message[off:off + size]
        if f.node.inode == SEND:
            raise pyfuse3.FUSEError(errno.EBADF)
        return f.node.data[off:off + size]

    async def write(self, fh, off, buf):
        f = self.open_files[fh]
        if f.node.inode == RECV:
            raise pyfuse3.FUSEError(errno.EBADF)
        f.buffer += buf
        return len(buf)

    def _deliver(self, f: _Open) -> None:
        if f.buffer:
            message, f.buffer = bytes(f.buffer), bytearray()
            if f.node.inode == SEND:
                self.queue.put_nowait(message)
            else:
                f.node.data = message

    async def flush(self, fh):
        self._deliver(self.open_files[fh])

    async def release(self, fh):
        f = self.open_files.pop(fh, None)
        if f is not None:
            self._deliver(f)

    def wake_readers(self) -> None:
        """Answer every waiting reader with EHOSTDOWN (at shutdown, as circuit does)."""
        for _ in range(self.waiting):
            self.queue.put_nowait(None)

    async def fsync(self, fh, datasync):
        pass

    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_namemax = 255
        return s


def main(argv: list[str]) -> int:
    shimmed = "--circuit-shim" in argv[1:]  # pyfuse3 on asyncio as circuit runs it (fuse/shim.py)
    argv = [a for a in argv if a != "--circuit-shim"]
    if len(argv) != 2:
        print(f"usage: {argv[0]} [--circuit-shim] MOUNTPOINT", file=sys.stderr)
        return 2
    mountpoint = os.path.abspath(argv[1])
    os.makedirs(mountpoint, exist_ok=True)

    # The loop a circuit host runs on: Twisted's asyncio reactor over a fresh loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor
    asyncioreactor.install(loop)
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    if shimmed:
        from circuit.fuse import shim
        shim.enable()
    else:
        pyfuse3.asyncio.enable()

    state: dict = {}

    def mount() -> None:
        ops = state["ops"] = BareQueue()
        options = set(pyfuse3.default_options)
        options.add("fsname=barequeue")
        pyfuse3.init(ops, mountpoint, options)
        state["main"] = loop.create_task(pyfuse3.main(min_tasks=4, max_tasks=10000))
        print(f"mounted at {mountpoint}", flush=True)

    async def unmount() -> None:
        main_task = state.get("main")
        if main_task is None:
            return
        state["ops"].wake_readers()
        pyfuse3.terminate()
        # Give the workers a moment to finish, then stop waiting for stragglers.
        await Deferred.fromFuture(asyncio.ensure_future(asyncio.wait({main_task}, timeout=2.0)))
        if not main_task.done():
            main_task.cancel()
        pyfuse3.close(unmount=True)

    # As circuit's FuseMount does: mount one turn after the loop runs.
    reactor.callWhenRunning(reactor.callLater, 0, mount)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: ensureDeferred(unmount()))
    reactor.run()  # installs SIGTERM/SIGINT handlers that stop the reactor
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
