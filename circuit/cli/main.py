"""The ``circuit`` command: ``start`` runs a host; ``ca`` makes and delegates the cluster CA."""
from __future__ import annotations

import sys

USAGE = """\
usage: circuit start [-a HOST:PORT] [-m MOUNT] [-j URL] [--ca DIR] [--data DIR] [...]
       circuit ca init DIR
       circuit ca issue --ca DIR OUT_DIR

  start      run a circuit host in the foreground (twistd -n -r asyncio circuit ...);
             circuit start --help lists every option
  ca init    make a new cluster CA in DIR (ca.pem, ca.key); give DIR to every host as --ca,
             or copy ca.pem and use ca issue for hosts that should not hold ca.key
  ca issue   make OUT_DIR for a host without the CA key: ca.pem plus a signing certificate
             (signer.pem, signer.key) with which it certifies itself at every start
"""


def stderr_logger():
    """twistd's log observer for ``circuit start``: lines on standard error, which may be
    a terminal, a pipe or the journal (``--logfile=/dev/stderr`` would try to seek it).
    conch narrates every SSH connection (keys tried, channels opened, and a normal
    disconnect as an error): only its warnings and real errors are kept."""
    from twisted.logger import FilteringLogObserver, PredicateResult, textFileLogObserver
    from twisted.logger import LogLevel

    def quiet_conch(event):
        namespace = event.get("log_namespace", "")
        if namespace.startswith("twisted.conch"):
            if event.get("log_level", LogLevel.info) < LogLevel.warn:
                return PredicateResult.no
            if event.get("code") == 11:
                return PredicateResult.no  # SSH_DISCONNECT_BY_APPLICATION: a client leaving
        return PredicateResult.maybe
    return FilteringLogObserver(textFileLogObserver(sys.__stderr__), [quiet_conch])


def start(args: list[str]) -> int:
    from twisted.scripts.twistd import run
    sys.argv = ["twistd", "--nodaemon", "--reactor=asyncio", "--pidfile=",
                "--logger=circuit.cli.main.stderr_logger", "circuit", *args]
    run()
    return 0


def ca(args: list[str]) -> int:
    from circuit import errors
    from circuit.tls import authority
    try:
        if len(args) == 2 and args[0] == "init":
            authority.init(args[1])
            print(f"made a cluster CA in {args[1]}")
            return 0
        if len(args) == 4 and args[0] == "issue" and args[1] == "--ca":
            authority.issue_signer(authority.load(args[2]), args[3])
            print(f"wrote {args[3]}: use it as that host's --ca")
            return 0
    except errors.CircuitError as e:
        print(f"circuit ca: {e.message}", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr, end="")
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "start":
        return start(rest)
    if command == "ca":
        return ca(rest)
    print(f"circuit: unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
