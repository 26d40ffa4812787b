"""twistd options and makeService for ``twistd -n circuit``."""
from __future__ import annotations

import os
import sys

from twisted.python import usage

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
        ["data", None, os.path.expanduser("~/.circuit"), "this host's state directory"],
        ["ca", None, None, "the cluster CA directory: ca.pem, and ca.key or signer.pem+signer.key "
                           "(default DATA/ca, made on first start)"],
        ["fs-root", None, None, "the directory exported as fs/ (default DATA/fs)"],
        ["max-fuse-requests", None, 10000, "FUSE requests served at once (blocked readers count)", int],
    ]
    optFlags = [
        ["allow-other", None, "let other users use the mount (FUSE allow_other)"],
    ]

    def postOptions(self) -> None:
        host, _, port = self["addr"].rpartition(":")
        if not host or not port.isdigit():
            raise usage.UsageError(f"--addr wants HOST:PORT, not {self['addr']!r}")


def settings_from(options: Options) -> Settings:
    return Settings(
        addr=options["addr"], mount=options["mount"], join=options["join"],
        data=options["data"], ca=options["ca"], fs_root=options["fs-root"],
        allow_other=bool(options["allow-other"]),
        max_fuse_requests=options["max-fuse-requests"])


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
    reactor = _ensure_asyncio_reactor()
    from circuit.service import CircuitService
    return CircuitService(settings_from(options), reactor)
