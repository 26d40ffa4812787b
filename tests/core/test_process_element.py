"""A process element beyond its phases (test_process.py): signal names, pipes, exit records,
removal and stdin, driven through a fake reactor (SPEC 3, proc/)."""
from __future__ import annotations

import errno

import pytest
from twisted.internet import error as ierror
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from circuit import errors
from circuit.core.command import Command
from circuit.core.process import CREATED, EXITED, RUNNING, Process, parse_signal
from core_model import failure, pending, value


# -- parse_signal -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, number", [
    ("TERM", 15), ("SIGTERM", 15), ("term", 15), ("sigterm", 15), (" TERM\n", 15),
    ("KILL", 9), ("9", 9), ("9\n", 9), ("INT", 2), ("HUP", 1), ("15", 15),
])
def test_parse_signal_takes_names_and_numbers(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["", "\n", "FOO", "SIG", "0", "999", "-9", "9x", "TERM KILL",
                                  "SIGSIGTERM", "²", "٣"])
def test_parse_signal_refuses_the_rest_with_einval(text):
    with pytest.raises(errors.Invalid) as e:
        parse_signal(text)
    assert e.value.errno == errno.EINVAL


# -- a fake reactor ------------------------------------------------------------------------------

class FakePipe:
    def __init__(self):
        self.producer = None

    def registerProducer(self, producer, streaming):
        self.producer = producer


class FakeTransport:
    def __init__(self, pid: int):
        self.pid = pid
        self.pipes = {0: FakePipe()}
        self.written: list[bytes] = []
        self.signals: list = []
        self.stdin_closed = False
        self.exited = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def signalProcess(self, sig) -> None:
        if self.exited:
            raise ierror.ProcessExitedAlready()
        self.signals.append(sig)


class FakeReactor:
    def __init__(self, refuse: Exception | None = None):
        self.spawned: list[dict] = []
        self.refuse = refuse

    def spawnProcess(self, protocol, executable, args, env=None, path=None):
        if self.refuse is not None:
            raise self.refuse
        transport = FakeTransport(pid=1000 + len(self.spawned))
        self.spawned.append({"protocol": protocol, "executable": executable, "args": args,
                             "env": env, "path": path, "transport": transport})
        protocol.makeConnection(transport)
        return transport


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sh(tmp_path):
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    return str(prog)


def started(sh, **kw):
    reactor, clock = FakeReactor(), Clock()
    proc = Process(reactor, {"PATH": "/usr/bin", "HOME": "/"}, clock)
    proc.run(Command(path=sh, **kw))
    return proc, reactor.spawned[0], clock


def exit_with(spawned, reason: Exception) -> None:
    spawned["transport"].exited = True
    spawned["protocol"].processExited(Failure(reason))


# -- phases ------------------------------------------------------------------------------------

def test_a_new_process_is_created_and_not_running():
    proc = Process(FakeReactor(), {}, Clock())
    assert proc.phase == CREATED
    assert proc.stat() == {"cmd": None, "pid": None, "phase": "created", "exit": None,
                           "signal": None, "started": None, "ended": None, "waiting": 0}
    with pytest.raises(errors.NoProcess) as e:
        proc.signal(15)
    assert e.value.errno == errno.ESRCH
    waited = proc.wait_exit()
    assert pending(waited) and proc.stat()["waiting"] == 1
    waited.cancel()
    assert proc.stat()["waiting"] == 0


def test_run_spawns_the_command_with_its_args_env_and_dir(sh, tmp_path):
    proc, spawned, _ = started(sh, args=["-x", "y"], env=["A=1"], dir=str(tmp_path))
    assert spawned["executable"] == sh
    assert spawned["args"] == [sh, "-x", "y"]
    assert spawned["env"] == {"A": "1"} and spawned["path"] == str(tmp_path)
    assert proc.phase == RUNNING and proc.pid == 1000
    st = proc.stat()
    assert st["cmd"]["path"] == sh and st["started"] == 100.0 and st["phase"] == "running"


def test_a_command_without_env_inherits_the_hosts(sh):
    _, spawned, _ = started(sh)
    assert spawned["env"] == {"PATH": "/usr/bin", "HOME": "/"}




@pytest.mark.parametrize("refusal", [
    OSError(errno.E2BIG, "Argument list too long"),
    ValueError("embedded null byte"),                 # what spawnProcess raises for a NUL in args
    ValueError("illegal environment variable name"),  # ... and for an env entry "=x"
])
def test_a_spawn_that_fails_is_a_circuit_error_and_changes_nothing(sh, refusal):
    proc = Process(FakeReactor(refuse=refusal), {}, Clock())
    failure(proc.run(Command(path=sh)), errors.CircuitError)
    assert proc.phase == CREATED and not proc.starting and proc.command is None and proc.started is None


def test_output_is_streamed_to_stdout_and_stderr(sh):
    proc, spawned, _ = started(sh)
    protocol = spawned["protocol"]
    protocol.childDataReceived(1, b"out")
    protocol.childDataReceived(2, b"err")
    protocol.childDataReceived(1, b"put")
    assert value(proc.stdout.read(0, 99)) == b"output"
    assert value(proc.stderr.read(0, 99)) == b"err"
    protocol.childConnectionLost(1)
    protocol.childConnectionLost(2)
    assert proc.stdout.eof and proc.stderr.eof


def test_exit_with_a_code(sh):
    proc, spawned, clock = started(sh)
    w = proc.wait_exit()
    clock.now = 103.5
    exit_with(spawned, ierror.ProcessTerminated(exitCode=3))
    record = value(w)
    assert record["phase"] == "exited" and record["exit"] == 3 and record["signal"] is None
    assert record["ended"] == 103.5
    assert value(proc.wait_exit()) == record
    with pytest.raises(errors.NoProcess):
        proc.signal(15)


def test_exit_cleanly(sh):
    proc, spawned, _ = started(sh)
    exit_with(spawned, ierror.ProcessDone(0))
    assert proc.phase == EXITED and proc.stat()["exit"] == 0




def test_signal_after_the_process_has_gone_is_esrch(sh):
    proc, spawned, _ = started(sh)
    spawned["transport"].exited = True  # gone, but the exit not yet reported
    with pytest.raises(errors.NoProcess) as e:
        proc.signal(9)
    assert e.value.errno == errno.ESRCH


def test_output_read_once_exited_and_each_stream_read_to_its_end(sh):
    proc, spawned, _ = started(sh)
    protocol = spawned["protocol"]
    protocol.childDataReceived(1, b"x")
    protocol.childConnectionLost(1)
    protocol.childConnectionLost(2)
    exit_with(spawned, ierror.ProcessDone(0))
    assert not proc.output_read()  # stdout not yet read; stderr is empty
    value(proc.stdout.read(0, 10))
    value(proc.stdout.read(1, 10))
    assert proc.output_read()


# -- removal -----------------------------------------------------------------------------------

def test_removing_a_running_process_kills_it_and_fails_waiters(sh):
    proc, spawned, _ = started(sh)
    w = proc.wait_exit()
    proc.remove()
    assert spawned["transport"].signals == ["KILL"]
    assert failure(w, errors.NotFound).errno == errno.ENOENT
    failure(proc.wait_exit(), errors.NotFound)
    with pytest.raises(errors.NotFound):
        proc.check_run(Command(path=sh))
    proc.remove()  # idempotent


def test_removing_an_exited_process_keeps_its_exit_record(sh):
    proc, spawned, _ = started(sh)
    exit_with(spawned, ierror.ProcessDone(0))
    proc.remove()
    assert spawned["transport"].signals == []
    assert value(proc.wait_exit())["exit"] == 0


# -- stdin -------------------------------------------------------------------------------------

def test_stdin_writes_reach_the_pipe_and_the_last_writer_closes_it(sh):
    proc, spawned, _ = started(sh)
    transport = spawned["transport"]
    assert transport.pipes[0].producer is proc.stdin
    proc.stdin.open_writer()
    proc.stdin.open_writer()
    assert value(proc.stdin.write(b"abc")) == 3
    proc.stdin.close_writer()
    assert not transport.stdin_closed
    proc.stdin.close_writer()
    assert transport.stdin_closed
    failure(proc.stdin.write(b"late"), errors.Closed)
    assert transport.written == [b"abc"]


def test_stdin_writes_wait_while_the_pipe_is_full(sh):
    proc, spawned, _ = started(sh)
    proc.stdin.pauseProducing()
    w = proc.stdin.write(b"x")
    assert pending(w)
    proc.stdin.resumeProducing()
    assert value(w) == 0
    proc.stdin.pauseProducing()
    w = proc.stdin.write(b"y")
    spawned["protocol"].childConnectionLost(0)  # the process closed its stdin
    assert failure(w, errors.Closed).errno == errno.EPIPE


def test_stdin_before_run_is_closed():
    proc = Process(FakeReactor(), {}, Clock())
    failure(proc.stdin.write(b"x"), errors.Closed)


class _SlowSpawner:
    """A keeper that has not answered yet."""

    def __init__(self):
        self.asked = []

    def spawn(self, protocol, executable, args, env, path):
        self.asked.append((protocol, Deferred()))
        return self.asked[-1][1]


@pytest.mark.parametrize("outcome", ["started", "refused"])
def test_a_caller_that_gives_up_while_the_keeper_starts_it_hears_it_was_made(sh, outcome):
    """A start asked of the keeper cannot be taken back: a caller that leaves meanwhile
    (Ctrl-C on a write of run) hears that it was made, and the process is what the keeper
    says, once (it used to hear an error while the process ran without its command)."""
    spawner = _SlowSpawner()
    proc = Process(FakeReactor(), {}, Clock(), spawner)
    heard = proc.run(Command(path=sh))
    assert pending(heard) and proc.starting
    heard.cancel()
    assert value(heard) is None
    protocol, answer = spawner.asked[0]
    if outcome == "started":
        protocol.makeConnection(FakeTransport(pid=1000))
        answer.callback(None)
        assert proc.phase == RUNNING and proc.command.path == sh and not proc.starting
    else:
        answer.errback(OSError(errno.EAGAIN, "the process keeper ended before it answered"))
        assert proc.phase == CREATED and proc.command is None and not proc.starting
    assert len(spawner.asked) == 1
