"""The keeper process itself (standard library only: it runs as a script, ``python -I``).

It starts its host's processes, reaps them, and kills those still running when its
input ends (the host stopped, or died and the kernel closed the socket): they are its
own unreaped children, so each PID is still the very process.

Its standard input is a Unix socket to the host, one JSON document a line each way.
The host asks::

    {"start": ID, "path": P, "args": [...], "env": {...}, "dir": D}
        with three descriptors passed beside the line (the child's stdin, stdout, stderr)
    {"kill": ID, "signal": N}

and the keeper answers::

    {"started": ID, "pid": PID}        with the process's pidfd passed beside it
    {"failed": ID, "errno": E, "error": TEXT}
    {"exited": ID, "status": S}        the wait status, as waitpid(2) gives it
"""
import signal

# Ctrl-C at a terminal, and a service manager's SIGTERM (systemd's stop signals the whole
# control group), reach the keeper with its host: the host then stops its processes
# itself, and the keeper waits for the end of its input as always.  Ignored before
# anything else is imported: a stop can come the moment the host starts.
if __name__ == "__main__":
    for _signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(_signum, signal.SIG_IGN)

import array  # noqa: E402
import collections  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import selectors  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

# Ignored here (below) or by Python itself (SIGPIPE, SIGXFSZ): an ignored signal stays
# ignored across exec, so each child gets them back as the default.
_TO_DEFAULT = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ)


class Keeper:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.fds = collections.deque()  # received, not yet taken by a start
        self.running = {}  # pid -> ID
        self.ids = {}  # ID -> pid

    def received(self) -> bool:
        """Read what the host sent; False at the end of the input."""
        # Not socket.recv_fds: it drops its flags, and without MSG_CMSG_CLOEXEC every process
        # started after would inherit the pipes of those whose starts arrive with its own.
        data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4), socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                self.fds.extend(fds)
        if not data:
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.serve(line)
        return True

    def serve(self, line: bytes) -> None:
        try:
            asked = json.loads(line)
            if "start" in asked:
                self.start(asked, [self.fds.popleft() for _ in range(3)])
            elif "kill" in asked:
                pid = self.ids.get(asked["kill"])
                if pid is not None:  # else reaped already: its exit is on its way
                    os.kill(pid, int(asked["signal"]))
            else:
                raise ValueError("neither start nor kill")
        except (ValueError, KeyError, IndexError, TypeError, OSError) as e:
            print(f"circuit keeper: a bad request {line[:200]!r}: {e}", file=sys.stderr, flush=True)

    def start(self, asked: dict, fds: list) -> None:
        ident = asked["start"]
        try:
            os.chdir(asked["dir"])  # posix_spawn has no chdir of its own; the keeper is all ours
            pid = os.posix_spawn(asked["path"], asked["args"], asked["env"],
                                 file_actions=[(os.POSIX_SPAWN_DUP2, fd, child)
                                               for child, fd in enumerate(fds)],
                                 setsigdef=_TO_DEFAULT)
        except Exception as e:  # OSError, or ValueError for what exec cannot take: always answered
            self.send({"failed": ident, "errno": getattr(e, "errno", None) or errno.EINVAL,
                       "error": getattr(e, "strerror", None) or str(e)})
            return
        finally:
            for fd in fds:
                os.close(fd)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as e:  # EMFILE: a process the host could not kill without us is none
            os.kill(pid, signal.SIGKILL)  # reaped unreported: its start failed
            self.send({"failed": ident, "errno": e.errno or errno.EIO, "error": e.strerror or str(e)})
            return
        self.running[pid], self.ids[ident] = ident, pid
        try:
            self.send({"started": ident, "pid": pid}, [pidfd])
        finally:
            os.close(pidfd)

    def reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.running.pop(pid, None)
            if ident is not None:
                del self.ids[ident]
                self.send({"exited": ident, "status": status})

    def send(self, answer: dict, fds=()) -> None:
        socket.send_fds(self.sock, [json.dumps(answer).encode() + b"\n"], list(fds))

    def kill_all(self) -> None:
        for pid in self.running:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def main() -> None:
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
    keeper = Keeper(socket.socket(fileno=0))
    selector = selectors.DefaultSelector()
    selector.register(keeper.sock, selectors.EVENT_READ, "host")
    selector.register(woken, selectors.EVENT_READ, "child")
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                os.read(woken, 4096)
                keeper.reap()
            elif not keeper.received():
                keeper.kill_all()
                return


if __name__ == "__main__":
    main()
