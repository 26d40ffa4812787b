"""One host: the element core, its tree, its peers and the views that serve it."""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Optional

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail, inlineCallbacks
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger
from zope.interface import implementer

from circuit import errors
from circuit.core.host import Host
from circuit.core.keeper import Keeper
from circuit.interfaces import IHostControl
from circuit.membership.swim import Membership
from circuit.membership.timing import Timing
from circuit.pb.peers import Peers, parse_url
from circuit.pb.remote_tree import RemoteHostTree
from circuit.pb.server import PeerRoot, listen
from circuit.pb.transport import PBTransport
from circuit.tls import authority
from circuit.tree.circuit import Circuit
from circuit.tree.local import LocalHostTree

log = Logger("circuit")


def give_up(reactor, why: str) -> None:
    """Say why on standard error, shut down cleanly (unmount, stop listening), exit 1."""
    try:
        os.write(2, f"circuit: could not start: {why}\n".encode())
    except OSError:
        pass
    reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
    if reactor.running:
        reactor.stop()
    else:
        reactor.callWhenRunning(reactor.stop)


def more_open_files() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit: (before, after).

    A host holds a connection per member (one a pair of hosts, whichever dialled it:
    `Peers.adopt`), three pipes per running process, and what its views have open;
    the usual soft limit of 1,024 would refuse a dial, a spawn or a connection long before
    the hard limit does (Go programs raise it the same way at start, since Go 1.19).  The
    processes it starts inherit the raised limit, as a service's processes inherit
    systemd's."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return soft, soft
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as e:  # an infinite hard limit above fs.nr_open, say
        log.warn("could not raise the limit of open files from {soft}: {why}", soft=soft, why=e)
        return soft, soft
    return soft, wanted


def _dialable(host: str) -> str:
    """The bound address, or for a wildcard bind this machine's name resolved."""
    if host not in ("0.0.0.0", "::"):
        return host
    import socket
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return host


@dataclass
class Settings:
    addr: str = "127.0.0.1:0"
    advertise: Optional[str] = None
    mount: Optional[str] = None
    join: Optional[str] = None
    data: str = os.path.expanduser("~/.circuit")
    ca: Optional[str] = None
    fs_root: Optional[str] = None
    allow_other: bool = False
    sftp: Optional[str] = None
    authorized_keys: str = os.path.expanduser("~/.ssh/authorized_keys")
    ssh_max_files: int = 1024
    max_fuse_requests: int = 10000
    timing: Timing = Timing()


class CircuitService(MultiService):
    """Holds this host's elements and serves its tree to peers and through the views."""

    def __init__(self, settings: Settings, reactor):
        super().__init__()
        self.setName("circuit")
        self.settings = settings
        self.reactor = reactor
        os.makedirs(settings.data, mode=0o700, exist_ok=True)
        self.keeper = Keeper(reactor)  # started with the service: after twistd has daemonized
        self.host = Host(reactor, keeper=self.keeper)
        self.host_id = self.host.id
        self.circuit = Circuit(started=reactor.seconds())
        fs_root = settings.fs_root or os.path.join(settings.data, "fs")
        self.tree = LocalHostTree(self.host, fs_root, self.circuit)
        # Listed at once (the mount may come up first); its URL follows once it listens.
        self.circuit.add_host(self.tree, local=True)
        self.tree.control = HostControl(self)
        ca_dir = settings.ca or os.path.join(settings.data, "ca")
        if not os.path.exists(os.path.join(ca_dir, "ca.pem")) and settings.ca is None:
            authority.init(ca_dir)  # the embedded default: a cluster of one, made on first start
        self.credentials = authority.issue_host(authority.load(ca_dir), self.host.id)
        self.peer_root = PeerRoot(self)
        # The session a peer calls on a connection this host dialled is PeerRoot's too.
        self.peers = Peers(reactor, self.credentials, on_lost=self._connection_lost,
                           serve=self.peer_root.rootObject)
        self.membership: Optional[Membership] = None
        self.ready: Deferred = Deferred()
        self._port = None
        self._ssh_port = None
        self._control_port = None
        self.fuse = None
        if settings.mount:
            try:
                from circuit.fuse.mount import FuseMount  # pyfuse3 only when mounting
            except ImportError as e:
                raise errors.NotFound(f"mounting needs pyfuse3 and libfuse3 ({e}): "
                                      "pip install 'circuit[fuse]', or start without -m")
            self.fuse = FuseMount(self.circuit, settings.mount, reactor,
                                  allow_other=settings.allow_other, requests=self.host.requests,
                                  max_requests=settings.max_fuse_requests,
                                  on_failure=lambda why: give_up(reactor, why))
            self.fuse.setServiceParent(self)

    # -- starting ----------------------------------------------------------------------
    def startService(self) -> None:
        before, after = more_open_files()
        if after != before:
            log.info("open files: soft limit raised from {before} to {after}", before=before, after=after)
        self.keeper.start()
        super().startService()
        # twistd starts services before the reactor runs, and so before its signal
        # handlers are in: the URL (which scripts wait for, then may signal us) is
        # printed only once a SIGTERM would shut down cleanly.
        self.reactor.callWhenRunning(lambda: self._start().addErrback(self._failed_to_start))

    @inlineCallbacks
    def _start(self):
        from circuit.control.server import ControlFactory
        self._port = yield listen(self.reactor, self.settings.addr, self.credentials, self.peer_root,
                                  commands=ControlFactory(self.circuit, self.reactor))
        bound = self._port.getHost()
        shown = self.settings.advertise or _dialable(bound.host)
        shown = f"[{shown}]" if ":" in shown else shown
        self.host.url = f"circuit://{shown}:{bound.port}/{self.host.id}"
        self.circuit.set_url(self.host.id, self.host.url)
        self.membership = Membership(self.host.id, self.host.url, PBTransport(self.peers), self.reactor,
                                     self.settings.timing, listener=self._membership_changed)
        self.membership.start()
        if self.settings.join:
            yield self.membership.join(self.settings.join)
        yield self._listen_control()
        if self.settings.sftp:
            from circuit.ssh.server import listen as listen_ssh  # conch only when serving SSH
            self._ssh_port = yield listen_ssh(self.reactor, self.settings.sftp, self.circuit,
                                              self.settings.data, self.settings.authorized_keys,
                                              max_files=self.settings.ssh_max_files)
        if self.fuse is not None:
            yield self.fuse.mounted  # the URL says "ready", and with -m that means mounted too
        url_file = os.path.join(self.settings.data, "url")
        with open(url_file + ".new", "w") as f:  # replaced whole: readers never see half a URL
            f.write(self.host.url + "\n")
        os.replace(url_file + ".new", url_file)
        # The URL on a line of its own on the real standard output (twistd has
        # replaced sys.stdout with a logger), for people and scripts.
        try:
            os.write(1, (self.host.url + "\n").encode())
        except OSError:
            pass  # daemonized: no standard output
        log.info("circuit host {url}", url=self.host.url)
        self.ready.callback(self.host.url)

    @inlineCallbacks
    def _listen_control(self):
        """The control socket of the ``circuit`` command line; the host runs without it."""
        from circuit.control.server import listen as listen_control
        try:
            self._control_port = yield listen_control(self.reactor, self.settings.data, self.circuit)
        except Exception as e:
            log.warn("no control socket for the circuit command line: {why}", why=str(e))

    def _failed_to_start(self, failure) -> None:
        if failure.check(errors.CircuitError, OSError):
            why = getattr(failure.value, "message", None) or str(failure.value)
        else:  # a bug: keep the traceback
            why = failure.getErrorMessage()
            log.failure("could not start: {why}", failure, why=why)
        give_up(self.reactor, why)

    # -- the cluster -------------------------------------------------------------------
    def _membership_changed(self, event: str, member, reason: str = "") -> None:
        if event == "joined":
            self.peers.back(member.id)
            self.circuit.add_host(RemoteHostTree(self.peers, member.id, member.url), url=member.url)
            self.host.events.publish({"joined": member.id, "url": member.url})
        else:
            self.circuit.remove_host(member.id)
            self.peers.disconnect(member.id)
            self.peer_root.drop(member.id)
            self.host.events.publish({"left": member.id, "reason": reason})

    def _connection_lost(self, peer_id: str) -> None:
        if self.membership is not None and not self.membership.leaving:
            self.membership.probe_now(peer_id)

    # -- stopping ----------------------------------------------------------------------
    @inlineCallbacks
    def stopService(self):
        if self.membership is not None:
            leaving = self.membership.leave()
            leaving.addTimeout(1.0, self.reactor)
            try:
                yield leaving
            except Exception as e:  # the others then notice the departure by probing
                log.info("leaving the cluster was not acknowledged in time: {why}", why=e)
        yield super().stopService()
        for kind in list(self.host.elements):
            for name in list(self.host.elements[kind]):
                self.host.remove(kind, name)  # kills running processes
        self.keeper.stop()
        yield self.peers.close()  # the confirms told the owners of messages read here leave first
        for port in (self._ssh_port, self._control_port):
            if port is not None:
                yield port.stopListening()
        if self._port is not None:
            yield self._port.stopListening()


@implementer(IHostControl)
class HostControl:
    """sys/stop and sys/join of this host: a stop is the shutdown a SIGTERM starts; a join
    is the one `-j URL` makes at start, made now."""

    def __init__(self, service: CircuitService):
        self._service = service

    def stop(self) -> None:
        self._service.reactor.callLater(0, self._stop_reactor)  # the answer leaves first

    def _stop_reactor(self) -> None:
        try:
            self._service.reactor.stop()  # twistd then shuts down as on SIGTERM, and exits 0
        except ReactorNotRunning:
            pass  # stopping already (asked twice, or a signal came first)

    def _url(self, url: str) -> str:
        host_id = parse_url(url)[2]
        if host_id == self._service.host_id:
            raise errors.Invalid(f"{url} is this host: join through a host of the other circuit")
        if self._service.membership is None:
            raise errors.HostDown("this host is still starting")
        return host_id

    def check_join(self, url: str) -> Deferred:
        try:
            host_id = self._url(url)
        except errors.CircuitError as e:
            return fail(e)

        def answered(who):
            if who != host_id:
                raise errors.Invalid(f"{url}: that address answers as {who}")
        return self._service.peers.call(host_id, url, "hello").addCallback(answered)

    def join(self, url: str) -> Deferred:
        return self.check_join(url).addCallback(lambda _: self._service.membership.join(url))
