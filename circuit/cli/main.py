"""``circuit start ...`` runs the twistd service in the foreground; ``circuit help`` explains."""
from __future__ import annotations

import sys

USAGE = """\
usage: circuit start [-a HOST:PORT] [-m MOUNT] [--data DIR] [--fs-root DIR] [...]
       circuit start --help

  start   run a circuit host in the foreground (twistd -n -r asyncio circuit ...)
"""


def start(args: list[str]) -> int:
    from twisted.scripts.twistd import run
    sys.argv = ["twistd", "--nodaemon", "--reactor=asyncio", "--pidfile=",
                "--logfile=/dev/stderr", "circuit", *args]
    run()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "start":
        return start(rest)
    print(f"circuit: unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
