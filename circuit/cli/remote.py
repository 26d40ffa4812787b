"""A command run from a machine without a host of its own: ``circuit --url URL COMMAND``.

The same commands as through the local socket, run here by the Python client over
PB with mutual TLS (`circuit.client`).  It loads Twisted, so a command costs a few
hundred milliseconds more than through a local host.
"""
from __future__ import annotations

import os
import sys
import threading

from circuit import errors


def run(argv: list, url: str, data: str) -> int:
    from circuit.client import blocking
    from circuit.commands import verbs

    try:
        client = blocking.connect(url, data)._inner
    except errors.CircuitError as e:
        print(f"circuit: {e.message}", file=sys.stderr)
        return 1
    reactor = client.reactor

    def pump(stdin: verbs.Stdin) -> None:  # standard input, read in a thread of its own
        while True:
            try:
                piece = os.read(0, 64 * 1024)
            except OSError:
                piece = b""
            if not piece:
                reactor.callFromThread(stdin.eof)
                return
            reactor.callFromThread(stdin.data, piece)

    def start():
        stdin = verbs.Stdin(wanted=lambda: threading.Thread(target=pump, args=(stdin,), daemon=True).start())
        ctx = verbs.Context(client.circuit, client.session, client.caller, out=lambda b: _write(1, b),
                            err=lambda b: _write(2, b), stdin=stdin, clock=reactor)
        return verbs.run_argv(ctx, argv)
    try:
        return blocking.call(start)
    except KeyboardInterrupt:
        return 130
    finally:
        blocking.call(client.close)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
