"""Process phases with a reactor stand-in: no real children needed for the state machine."""
import pytest
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure

from circuit import errors
from circuit.core.command import Command
from circuit.core.process import CREATED, EXITED, RUNNING, Process


class _Pipe:
    def registerProducer(self, producer, streaming):
        self.producer = producer


class _Transport:
    def __init__(self, pid):
        self.pid = pid
        self.pipes = {0: _Pipe()}
        self.signals = []
        self.stdin_closed = False

    def signalProcess(self, sig):
        self.signals.append(sig)

    def write(self, data):
        pass

    def closeStdin(self):
        self.stdin_closed = True


class _Reactor:
    """spawnProcess that can reap the child before it returns, as Twisted does."""

    def __init__(self, exit_at_once=False):
        self.exit_at_once = exit_at_once
        self.protocol = None

    def spawnProcess(self, protocol, executable, args, env=None, path=None):
        transport = _Transport(4242)
        self.protocol = protocol
        protocol.makeConnection(transport)
        if self.exit_at_once:
            transport.pid = None  # Twisted clears it once reaped
            protocol.processExited(Failure(ProcessDone(0)))
        return transport


def test_a_child_reaped_inside_spawn_is_exited_not_running():
    p = Process(_Reactor(exit_at_once=True), {"PATH": "/bin:/usr/bin"})
    p.run(Command(path="/bin/true"))
    assert p.phase == EXITED and p.exit_code == 0 and p.pid == 4242
    record = []
    p.wait_exit().addCallback(record.append)
    assert record[0]["phase"] == EXITED


def test_phases_and_signals():
    reactor = _Reactor()
    p = Process(reactor, {"PATH": "/bin:/usr/bin"})
    assert p.phase == CREATED
    with pytest.raises(errors.NoProcess):
        p.signal(15)
    p.run(Command(path="/bin/sleep", args=["1"]))
    assert p.phase == RUNNING and p.pid == 4242
    with pytest.raises(errors.Busy):
        p.run(Command(path="/bin/true"))
    waiting = []
    p.wait_exit().addCallback(waiting.append)
    p.signal(15)
    reactor.protocol.processExited(Failure(ProcessTerminated(signal=15)))
    assert waiting and waiting[0]["signal"] == "TERM" and waiting[0]["exit"] is None


def test_refused_run_changes_nothing():
    p = Process(_Reactor(), {"PATH": "/bin:/usr/bin"})
    with pytest.raises(errors.NotFound):
        p.run(Command(path="/no/such/program"))
    with pytest.raises(errors.NotFound):
        p.run(Command(path="/bin/true", dir="/no/such/dir"))
    assert p.phase == CREATED and p.command is None and p.started is None
