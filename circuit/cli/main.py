"""The ``circuit`` command: ``start`` runs a host; ``ca`` makes and delegates the cluster CA; every
other command is run by the local host (`circuit.cli.client`), without loading Twisted here."""
from __future__ import annotations

import sys

USAGE = """\
usage: circuit start [-a HOST:PORT] [-m MOUNT] [-j URL] [--sftp HOST:PORT] [--data DIR] [...]
       circuit ca init DIR
       circuit ca issue --ca DIR OUT_DIR
       circuit ca client --ca DIR OUT_DIR [NAME]
       circuit [--data DIR] [--url URL [--pb]] COMMAND [ARGS...]   (circuit help lists the commands)

  start      run a circuit host in the foreground (twistd -n -r asyncio circuit ...);
             circuit start --help lists every option
  ca init    make a new cluster CA in DIR (ca.pem, ca.key); give DIR to every host as --ca,
             or copy ca.pem and use ca issue for hosts that should not hold ca.key
  ca issue   make OUT_DIR for a host without the CA key: ca.pem plus a signing certificate
             (signer.pem, signer.key) with which it certifies itself at every start
  ca client  make OUT_DIR with a client certificate: it may use elements on every host (PB
             over mutual TLS), never make membership calls nor pass for a host
  COMMAND    ls, mkchan, send, recv, mkproc, wait, peek, ... run by the host started with the
             same --data (default ~/.circuit) on this machine, through its control socket;
             paths are circuit tree paths (/X.../dc/chan/NAME).  With --url URL (or
             $CIRCUIT_URL) from any machine instead: the host at URL runs it, over mutual
             TLS with the client certificate in --data (circuit ca client makes one).
             With --pb the Python client runs it here over PB (slower: it loads Twisted)
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
    """twistd in the foreground, handed the circuit service maker itself: plugin discovery
    does not find twisted/plugins/ under an editable install (pip install -e .)."""
    from twisted.application.service import ServiceMaker
    from twisted.scripts import twistd

    maker = ServiceMaker("circuit", "circuit.tap",
                         "A circuit host: processes, channels and selects as a file tree", "circuit")

    class Options(twistd.ServerOptions):
        @staticmethod
        def _getPlugins(interface, package=None):
            return [maker] if interface.__name__ == "IServiceMaker" else []

    sys.argv = ["twistd", "--nodaemon", "--reactor=asyncio", "--pidfile=",
                "--logger=circuit.cli.main.stderr_logger", "circuit", *args]
    twistd.app.run(twistd.runApp, Options)
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
        if len(args) in (4, 5) and args[0] == "client" and args[1] == "--ca":
            name = args[4] if len(args) == 5 else "client"
            authority.issue_client(authority.load(args[2]), args[3], name)
            print(f"wrote {args[3]}: a client's credentials (ca.pem, client.pem, client.key)")
            return 0
    except errors.CircuitError as e:
        print(f"circuit ca: {e.message}", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr, end="")
    return 2


def client(argv: list[str]) -> int:
    """A command run by the local host (circuit.cli.client): no Twisted loaded here."""
    import os
    data = os.path.expanduser("~/.circuit")
    url = os.environ.get("CIRCUIT_URL") or None
    by_pb = False
    while argv and argv[0].startswith("--"):
        option = argv[0]
        if option == "--pb":
            by_pb, argv = True, argv[1:]
            continue
        if option in ("--data", "--url") and len(argv) > 1:
            value, argv = argv[1], argv[2:]
        elif option.startswith(("--data=", "--url=")):
            option, value = option.split("=", 1)
            argv = argv[1:]
        else:
            break
        if option == "--data":
            data = value
        else:
            url = value
    if not argv:
        print(USAGE, file=sys.stderr, end="")
        return 2
    from circuit.commands.usage import VERBS, overview, usage
    name = argv[0]
    if name == "help" or name in ("-h", "--help"):
        topic = argv[1] if len(argv) > 1 else None
        print(usage(topic) if topic in VERBS else USAGE + "\n" + overview("circuit "), end="")
        return 0
    if name not in VERBS:
        print(f"circuit: unknown command {name!r}\n{USAGE}", file=sys.stderr, end="")
        return 2
    if "--help" in argv[1:] or "-h" in argv[1:]:
        print(usage(name).replace("usage: ", "usage: circuit ", 1), end="")
        return 0
    if by_pb and url is None:
        print("circuit: --pb goes with --url URL (or $CIRCUIT_URL)", file=sys.stderr)
        return 2
    if url is not None and not by_pb:  # no host of our own to ask: the host at URL runs it
        from circuit.cli.url import run as run_url
        status = _ran(run_url, argv, url, data)
        if status is not None:
            return status
    if url is not None:  # --pb, or no credentials of a client: the Python client, here
        from circuit.cli.remote import run as run_remote
        return run_remote(argv, url, data)
    from circuit.cli.client import run
    return _ran(run, argv, data)


def _ran(run, *args):
    """The exit status of a command run by a host (``run``), its trouble told as a shell would."""
    from circuit.cli.client import NoHost
    try:
        return run(*args)
    except NoHost as e:  # no host to ask, or none that answers: one line
        print(f"circuit: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 141  # as a shell reports a reader that went away (128 + SIGPIPE)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(USAGE, end="", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "start":
        return start(rest)
    if command == "ca":
        return ca(rest)
    return client(argv)


if __name__ == "__main__":
    sys.exit(main())
