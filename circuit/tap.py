"""twistd options and makeService for ``twistd -n circuit``."""
from __future__ import annotations

import os
import sys

from twisted.python import usage

from circuit.membership.timing import Timing
from circuit.service import Settings


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Run one circuit host: processes, channels and selects, served as a file tree. "
                "With no options it keeps its state in ~/.circuit and mounts nothing; "
                "give -m DIR to mount the tree.")
    optParameters = [
        ["addr", "a", "127.0.0.1:0", "HOST:PORT where this host listens for peers"],
        ["mount", "m", None, "mount the circuit tree here with FUSE"],
        ["join", "j", None, "join the cluster through a member's URL"],
        ["advertise", None, None, "the address peers dial, when it is not the one in --addr "
                                  "(default: that one; for 0.0.0.0, this machine's name resolved)"],
        ["data", None, os.path.expanduser("~/.circuit"), "this host's state directory"],
        ["ca", None, None, "the cluster CA directory: ca.pem, and ca.key or signer.pem+signer.key "
                           "(default DATA/ca, made on first start)"],
        ["fs-root", None, None, "the directory exported as fs/ (default DATA/fs)"],
        ["sftp", None, None, "serve the tree over SSH (sftp, scp, ssh COMMAND) at HOST:PORT"],
        ["authorized-keys", None, os.path.expanduser("~/.ssh/authorized_keys"),
         "the SSH public keys allowed in (OpenSSH format; read again when it changes)"],
        ["ssh-max-files", None, 1024, "files one SSH connection may hold open (sftp handles and "
                                      "exec commands together)", int],
        ["max-fuse-requests", None, 10000, "FUSE requests served at once (blocked readers count)", int],
        ["probe-interval", None, Timing.probe_interval, "membership: seconds between probes", float],
        ["probe-timeout", None, Timing.probe_timeout, "membership: seconds to wait for a probe's answer",
         float],
        ["suspicion-min", None, Timing.suspicion_min,
         "membership: a suspect that refutes within this many seconds is never declared dead", float],
        ["suspicion-max", None, Timing.suspicion_max,
         "membership: seconds before an unconfirmed suspect is declared dead "
         "(times log10 of the members, at 10 and more)", float],
    ]
    optFlags = [
        ["allow-other", None, "let other users use the mount (FUSE allow_other)"],
    ]

    def postOptions(self) -> None:
        host, _, port = self["addr"].rpartition(":")
        if not host or not port.isdigit():
            raise usage.UsageError(f"--addr wants HOST:PORT, not {self['addr']!r}")
        if self["sftp"]:
            h, _, p = self["sftp"].rpartition(":")
            if not h or not p.isdigit():
                raise usage.UsageError(f"--sftp wants HOST:PORT, not {self['sftp']!r}")
        if self["join"]:
            from circuit import errors
            from circuit.pb.peers import parse_url
            try:
                parse_url(self["join"])
            except errors.CircuitError as e:
                raise usage.UsageError(e.message)
        t = [self["probe-interval"], self["probe-timeout"], self["suspicion-min"], self["suspicion-max"]]
        if min(t) <= 0 or t[1] >= t[0] or t[2] > t[3]:
            raise usage.UsageError("timings: want 0 < probe-timeout < probe-interval "
                                   "and 0 < suspicion-min <= suspicion-max")


def settings_from(options: Options) -> Settings:
    return Settings(
        addr=options["addr"], advertise=options["advertise"], mount=options["mount"],
        join=options["join"],
        data=options["data"], ca=options["ca"], fs_root=options["fs-root"],
        allow_other=bool(options["allow-other"]),
        sftp=options["sftp"], authorized_keys=options["authorized-keys"],
        ssh_max_files=options["ssh-max-files"],
        max_fuse_requests=options["max-fuse-requests"],
        timing=Timing(probe_interval=options["probe-interval"], probe_timeout=options["probe-timeout"],
                      suspicion_min=options["suspicion-min"], suspicion_max=options["suspicion-max"]))


def _ensure_asyncio_reactor():
    """The FUSE view and Twisted share one asyncio loop; insist on that reactor."""
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor
        asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    if not isinstance(reactor, AsyncioSelectorReactor):
        raise usage.UsageError("circuit needs the asyncio reactor: run twistd -r asyncio -n circuit ...")
    return reactor


def makeService(options: Options):
    try:
        reactor = _ensure_asyncio_reactor()
    except usage.UsageError as e:
        raise SystemExit(f"circuit: {e}")
    from circuit import errors
    from circuit.service import CircuitService
    try:
        return CircuitService(settings_from(options), reactor)
    except errors.CircuitError as e:
        raise SystemExit(f"circuit: {e.message}")
