"""A process element: run one command, stream its pipes, report its exit.

Phases: *created* (no command yet) -> *running* -> *exited*; *removed* at any
point (a running process is killed first).
"""
from __future__ import annotations

import os
import signal as _signal
import time
from typing import Callable, Optional

from twisted.internet import error as ierror
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from circuit import errors
from circuit.core.command import Command
from circuit.core.output import Output
from circuit.core.waiters import WaiterSet, made_once_asked

CREATED, RUNNING, EXITED = "created", "running", "exited"

log = Logger("circuit")


def parse_signal(text: str) -> int:
    """``TERM``, ``SIGTERM``, ``term`` or ``15`` -> 15; Invalid otherwise."""
    word = text.strip()
    if word.isascii() and word.isdigit():  # not "²": isdigit() alone takes any Unicode digit
        number = int(word)
        if number in {s.value for s in _signal.Signals}:
            return number
        raise errors.Invalid(f"signal: no signal number {number}")
    name = word.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return _signal.Signals[name].value
    except KeyError:
        raise errors.Invalid(f"signal: unknown signal {word!r} (try TERM, KILL, INT or a number)")


class _Pipes(ProcessProtocol):
    def __init__(self, process: "Process"):
        self.process = process

    def connectionMade(self) -> None:
        self.process._began(self.transport)

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.process.stdout.append(data)
        elif fd == 2:
            self.process.stderr.append(data)

    def childConnectionLost(self, fd: int) -> None:
        if fd == 0:
            self.process.stdin.lost()
        elif fd == 1:
            self.process.stdout.finish()
        elif fd == 2:
            self.process.stderr.finish()

    def processExited(self, reason) -> None:
        self.process._exited(reason.value)


class Stdin:
    """The process's standard input: open writers, backpressure, close on the last."""

    def __init__(self) -> None:
        self.transport = None
        self.writers = 0
        self.closed = False
        self._paused = False
        self._resumed = WaiterSet()

    def open_writer(self) -> None:
        self.writers += 1

    def close_writer(self) -> None:
        self.writers -= 1
        if self.writers == 0 and self.transport is not None:
            self.close()

    def write(self, data: bytes) -> Deferred:
        """Fires when the pipe has room for more, so a fast writer waits for a slow reader."""
        if self.closed or self.transport is None:
            return fail(errors.Closed("the process's stdin is closed"))
        self.transport.write(data)
        if self._paused:
            return self._resumed.wait()
        return succeed(len(data))

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.closeStdin()

    def lost(self) -> None:
        self.closed = True
        self._resumed.fail_all(errors.Closed("the process closed its stdin"))

    # IPushProducer, driven by the stdin pipe writer
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._resumed.fire_all(0)

    def stopProducing(self) -> None:
        self.lost()


class SpawnHere:
    """Starts processes in this very process (``spawnProcess``): a host without a keeper
    (`circuit.core.keeper.Keeper`, the one a service runs), as tests make."""

    def __init__(self, reactor):
        self._reactor = reactor

    def spawn(self, protocol, executable: str, args: list, env: dict, path: Optional[str]) -> Deferred:
        try:
            self._reactor.spawnProcess(protocol, executable, args, env=env, path=path)
        except (OSError, ValueError) as e:
            return fail(e)
        return succeed(None)


class Process:
    def __init__(self, reactor, inherited_env: Optional[dict[str, str]] = None,
                 clock: Callable[[], float] = time.time, spawner=None):
        # circuit.core.keeper.Keeper, or anything with its spawn()
        self._spawner = spawner if spawner is not None else SpawnHere(reactor)
        self._clock = clock
        self.inherited_env = dict(os.environ if inherited_env is None else inherited_env)
        self.phase = CREATED
        self.starting = False  # asked to start, not yet started
        self.command: Optional[Command] = None
        self.pid: Optional[int] = None
        self.exit_code: Optional[int] = None
        self.exit_signal: Optional[int] = None
        self.started: Optional[float] = None
        self.ended: Optional[float] = None
        self.removed = False
        self.stdout = Output()
        self.stderr = Output()
        self.stdin = Stdin()
        self._transport = None
        self._exit = WaiterSet()

    def check_run(self, command: Command) -> tuple[str, dict[str, str]]:
        """Raise what ``run(command)`` would be refused with; else (executable, environment)."""
        if self.removed:
            raise errors.NotFound("the process was removed")
        if self.phase != CREATED or self.starting:
            raise errors.Busy("run: the process was already started")
        environment = command.environment(self.inherited_env)
        if command.dir is not None and not os.path.isdir(command.dir):
            raise errors.NotFound(f"run: no such directory: {command.dir}")
        return command.executable(environment), environment

    def check_signal(self) -> None:
        if self.phase != RUNNING or self._transport is None:
            raise errors.NoProcess(f"signal: the process is {self.phase}, not running")

    def run(self, command: Command) -> Deferred:
        """Start the command, once: fires once it runs.  Nothing changes when it is refused
        (raised here, or failed later if it could not be started)."""
        executable, environment = self.check_run(command)
        self.command, self.starting = command, True

        def refused(failure):
            self.command, self.starting = None, False
            e = failure.value
            refusal = errors.CircuitError(f"run: could not start {command.path}: "
                                          f"{getattr(e, 'strerror', None) or e}")
            if getattr(e, "errno", None):  # EMFILE, EAGAIN, ENOMEM: the host's want, said as it is
                refusal.errno = e.errno
            raise refusal
        asked = maybeDeferred(self._spawner.spawn, _Pipes(self), executable, [executable] + command.args,
                              environment, command.dir).addCallbacks(lambda _: None, refused)
        # Asked, it may start whatever the caller does now: one that gives up hears so.
        return made_once_asked(asked, None, lambda failure: log.info(
            "{path}, run for a caller that gave up while it was being started: {why}",
            path=command.path, why=failure.getErrorMessage()))

    def _began(self, transport) -> None:
        """Running.  A child that exits at once may be reaped (and processExited called)
        right after this, before the spawn returns."""
        self.phase, self.started, self.starting = RUNNING, self._clock(), False
        self.pid = transport.pid
        self._transport = transport
        self.stdin.transport = transport
        # Backpressure for stdin: the pipe's writer pauses us when its buffer is full.
        transport.pipes[0].registerProducer(self.stdin, True)
        if self.removed:  # removed while it was being started
            transport.signalProcess("KILL")

    def _exited(self, reason) -> None:
        self.phase = EXITED
        self.ended = self._clock()
        # Let the transport go (its pipes hold it while they drain): a finished process is
        # kept until removed, maybe among 100,000 elements.
        self._transport = self.stdin.transport = None
        if isinstance(reason, ierror.ProcessTerminated) and reason.signal is not None:
            self.exit_signal = reason.signal
        else:
            self.exit_code = getattr(reason, "exitCode", 0) or 0
        self._exit.fire_all(self.exit_record())

    def wait_exit(self) -> Deferred:
        """Fires with the exit record once the process has exited (not waiting on stdin)."""
        if self.phase == EXITED:
            return succeed(self.exit_record())
        if self.removed:
            return fail(errors.NotFound("the process was removed"))
        return self._exit.wait()

    def signal(self, number: int) -> None:
        self.check_signal()
        try:
            self._transport.signalProcess(number)
        except (ierror.ProcessExitedAlready, OSError):
            raise errors.NoProcess("signal: the process has already exited")

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        if self.phase == RUNNING:
            try:
                self._transport.signalProcess("KILL")
            except (ierror.ProcessExitedAlready, OSError):
                pass
        self._exit.fail_all(errors.NotFound("the process was removed"))
        self.stdout.discard()
        self.stderr.discard()

    def output_read(self) -> bool:
        """Exited, and each of stdout and stderr read through to its end (or empty)."""
        return self.phase == EXITED and all(
            o.eof and (o.drained or len(o) == 0) for o in (self.stdout, self.stderr))

    def exit_record(self) -> dict:
        return self._record()

    def stat(self) -> dict:
        """The record, and how many wait for the exit (a waitexit read, a make that waits)."""
        return dict(self._record(), waiting=len(self._exit))

    def _record(self) -> dict:
        record = {
            "cmd": self.command.to_json() if self.command else None,
            "pid": self.pid,
            "phase": self.phase,
            "exit": self.exit_code,
            "signal": None,
            "started": self.started,
            "ended": self.ended,
        }
        if self.exit_signal is not None:
            record["signal"] = _signal.Signals(self.exit_signal).name[3:]
        return record
