"""The FUSE mount as a Twisted service: mount on start, unmount cleanly on stop."""
from __future__ import annotations

import asyncio
import errno
import os
import subprocess

import pyfuse3
from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from circuit.fuse import shim
from circuit.fuse.operations import CircuitOperations

log = Logger("circuit.fuse")

shim.enable()


def _clear_stale_mount(mountpoint: str) -> None:
    """A daemon that died mounted leaves 'Transport endpoint is not connected'."""
    try:
        os.stat(mountpoint)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)
    os.makedirs(mountpoint, exist_ok=True)


class FuseMount(Service):
    """Serves the circuit tree at ``mountpoint`` on the reactor's own asyncio loop."""

    def __init__(self, circuit, mountpoint: str, reactor, allow_other: bool = False,
                 max_requests: int = 10000, on_failure=lambda why: None, requests=None):
        self.on_failure = on_failure
        self.requests = requests
        self.circuit = circuit
        self.mountpoint = os.path.abspath(mountpoint)
        self.reactor = reactor
        self.allow_other = allow_other
        self.max_requests = max_requests
        self.ops: CircuitOperations | None = None
        self._main: asyncio.Task | None = None
        self._unwatch = lambda: None
        self.mounted = Deferred()  # the mountpoint, once mounted; never if mounting fails

    def startService(self) -> None:
        super().startService()
        # callWhenRunning can fire before the asyncio loop runs; go one turn later.
        self.reactor.callWhenRunning(self.reactor.callLater, 0, self._try_mount)

    def _try_mount(self) -> None:
        try:
            self._mount()
        except Exception as e:
            if not isinstance(e, (OSError, RuntimeError)):
                log.failure("could not mount at {where}", where=self.mountpoint)
            self.on_failure(f"cannot mount at {self.mountpoint}: {e}")

    def _mount(self) -> None:
        loop = asyncio.get_event_loop()
        _clear_stale_mount(self.mountpoint)
        self.ops = CircuitOperations(self.circuit, self.reactor, loop, requests=self.requests)
        options = set(pyfuse3.default_options)
        options.add("fsname=circuit")
        options.add("subtype=circuit")
        if self.allow_other:
            options.add("allow_other")
        pyfuse3.init(self.ops, self.mountpoint, options)
        self._unwatch = self.circuit.watch_hosts(self._hosts_changed)
        self._main = loop.create_task(pyfuse3.main(min_tasks=4, max_tasks=self.max_requests))
        self._main.add_done_callback(self._ended)
        log.info("mounted the circuit at {where}", where=self.mountpoint)
        self.mounted.callback(self.mountpoint)

    def _hosts_changed(self, event: str, host_id: str) -> None:
        if event == "left" and self.ops is not None:
            # The kernel caches the host's directory entry: drop it so ls / is right at once.
            pyfuse3.invalidate_entry_async(pyfuse3.ROOT_INODE, host_id.encode(), ignore_enoent=True)

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the FUSE loop failed: {error!r}", error=task.exception())

    def stopService(self):
        super().stopService()
        if self._main is None:
            return None
        return ensureDeferred(self._unmount())

    async def _unmount(self) -> None:
        # Wake every blocked reader (EHOSTDOWN; nothing is taken), give their
        # FLUSH/RELEASE a moment to arrive, then leave.
        self.ops.closing = True
        self.ops.watch.cancel_all()
        for _ in range(20):
            if not len(self.ops.session) and len(self.ops.watch) == 0:
                break
            self.ops.watch.cancel_all()
            await deferLater(self.reactor, 0.05, lambda: None)
        pyfuse3.terminate()
        try:
            await Deferred.fromFuture(asyncio.ensure_future(self._main))
        except Exception as e:  # the loop's own failure was logged by _ended
            log.info("the FUSE loop ended with {error!r}", error=e)
        pyfuse3.close(unmount=True)
        self.ops.session.close()  # what no RELEASE came for: messages not confirmed go back
        self._unwatch()
        log.info("unmounted {where}", where=self.mountpoint)
