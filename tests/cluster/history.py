"""A checked history, in the manner of Jepsen: real hosts, real clients, faults, and a checker.

Clients send and receive through randomly chosen live hosts and, for each operation, one of the
ways in (`VIEWS`): the shell's own tools on the host's mount (``echo > send``, ``cat recv``), the
``circuit`` command line through that host's control socket, ``ssh HOST COMMAND`` to that host's
SSH server, the command line from afar (``circuit --url``: the host runs it, over TLS), and the
Python client over PB (``circuit --url --pb``); the last two with a client certificate.  Each
operation is given up after ``OP_TIMEOUT`` seconds with SIGTERM, as ``timeout(1)`` would (the
harness sends it, so it knows when); every operation is recorded with its view, start, end,
outcome and the moment it was given up.  A nemesis stops (SIGSTOP), kills (SIGKILL) and
restarts (SIGTERM, then a new member) hosts meanwhile, and, with the hosts in network
namespaces of their own (`netlab.Lab`), cuts one off from the others and heals it.  The
channels live on host 0, which is only ever stopped or cut off briefly: a host's elements die
with it, so what is checked is what the circuit promises while the owner lives, whoever the
callers and whatever happens to their hosts.

An operation that timed out or failed is indeterminate: it may or may not have happened.  The
checker then finds:

- lost: a send that succeeded whose message nobody ever received (the drain at the end counts).
  A reader that gave up and was still handed the message dies with it unprinted: this is how
  such a hand-over shows;
- duplicated: a message received twice;
- phantom: something received that was never sent;
- reordered: two messages of one sender on one channel, the first sent successfully before the
  second was begun, received in the opposite order in real time (the later one's receive ended
  before the earlier one's began);
- slow: an operation that ended more than ``OP_TIMEOUT + 2`` seconds after it began, beyond the
  time that its own host or the owner spent stopped or dying meanwhile (a host that is stopped
  cannot answer even its own kernel).

`observations` reports, apart from the anomalies, what the promises allow:

- received as the timeout fired: a receive that printed its message, then timed out (``timeout``
  fired while ``cat`` was on its way out); the message was received;
- lost in the window: a lost message sent before a receive on its channel was given up, whose
  receive printed nothing and ended within ``WINDOW`` of its SIGTERM: the hand-over and the
  signal coincided.  The reader was asked at the last moment and was still there; the kernel
  took the message; the signal then killed the reader before read(2) returned to it, as it would
  with a pipe.  A reader handed a message after it gave up (the bug this history was built to
  find) is handed one sent after its SIGTERM, and that counts as lost.

Used by tests/cluster/test_history.py (60 s in CI; ``CIRCUIT_HISTORY_SECONDS`` for longer runs).
"""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers import make_client, start_daemon, wait_for
from ssh_clients import keypair

OP_TIMEOUT = 5.0
# How often each way in is chosen: the command line through PB loads Twisted (0.3 s of CPU), so
# it is chosen less, lest it starve the hosts of the two CPUs a CI machine has.
VIEWS = {"mount": 4, "cli": 2, "ssh": 2, "url": 1, "client": 1}
WINDOW = 0.05  # seconds: a receive's end this close to its deadline coincided with a hand-over
SLACK = 2.0


@dataclass
class Op:
    kind: str          # "send" or "recv"
    client: str
    channel: str
    host: int          # the host whose mount (or socket, or SSH server, or PB port) was used
    start: float
    end: float = 0.0
    outcome: str = ""  # "ok", "timeout" or "fail"
    message: str = ""  # sent, or received (recv: whatever cat printed)
    error: str = ""
    killed: float = 0.0  # when it was given up (SIGTERM), if it was
    view: str = "mount"


@dataclass
class Fault:
    what: str
    host: int
    start: float
    end: float = 0.0


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    drained: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"ops": [asdict(o) for o in self.ops],
                                    "faults": [asdict(f) for f in self.faults],
                                    "drained": self.drained}, indent=1))

    def summary(self) -> dict:
        count: dict[str, int] = {}
        for o in self.ops:
            for key in (f"{o.kind} {o.outcome}", f"{o.view} {o.kind} {o.outcome}"):
                count[key] = count.get(key, 0) + 1
        count.update({f"fault {f.what}": sum(1 for x in self.faults if x.what == f.what)
                      for f in self.faults})
        count["drained"] = sum(len(v) for v in self.drained.values())
        return count


def check(history: History) -> dict[str, list]:
    """Every anomaly found, by kind; all empty for a history that keeps the promises."""
    sends = {o.message: o for o in history.ops if o.kind == "send"}
    anomalies: dict[str, list] = {k: [] for k in (
        "lost", "duplicated", "phantom", "reordered", "slow")}
    received: dict[str, list] = {}   # message -> [(start, end, op or None for the drain)]
    end_of_run = max((o.end for o in history.ops), default=0.0) + 1
    def frozen(o: Op) -> float:
        return sum(max(0.0, min(o.end, f.end) - max(o.start, f.start))
                   for f in history.faults if f.host in (o.host, 0))
    for o in history.ops:
        if o.end - o.start > OP_TIMEOUT + SLACK + frozen(o):
            anomalies["slow"].append(asdict(o))
        if o.kind != "recv" or not o.message:
            continue
        received.setdefault(o.message, []).append((o.start, o.end, o))
    for channel, messages in history.drained.items():
        for m in messages:
            received.setdefault(m, []).append((end_of_run, end_of_run, None))
    for m, got in received.items():
        if m not in sends:
            anomalies["phantom"].append(m)
        elif sends[m].channel != (got[0][2].channel if got[0][2] else sends[m].channel):
            anomalies["phantom"].append(f"{m} (on the wrong channel)")
        if len(got) > 1:
            anomalies["duplicated"].append(m)
    window = dict(_lost_in_the_window(history, sends, received))
    for m, o in sends.items():
        if o.outcome == "ok" and m not in received and m not in window:
            anomalies["lost"].append(asdict(o))
    by_sender: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for m, o in sends.items():
        by_sender.setdefault((o.client, o.channel), []).append((int(m.rsplit("-", 1)[1]), m))
    for ms in by_sender.values():
        got = [m for _, m in sorted(ms) if m in received]
        for i, m1 in enumerate(got):
            if sends[m1].outcome != "ok":
                continue  # indeterminate: it may take effect at any time after it began
            begun = received[m1][0][0]
            for m2 in got[i + 1:]:
                if received[m2][0][1] < begun:  # received, in real time, before m1 was asked for
                    anomalies["reordered"].append((m1, m2))
    return anomalies


def explain(history: History, anomalies: dict[str, list]) -> list[str]:
    """For each lost or duplicated message: its operations and the faults around them, in
    seconds from the run's start (what a failure in CI needs to be understood afterwards)."""
    t0 = min((o.start for o in history.ops), default=0.0)
    lines = []
    named = anomalies.get("duplicated", []) + [o["message"] for o in anomalies.get("lost", [])]
    for m in named:
        ops = [o for o in history.ops if o.message == m]
        lines.append(f"{m}:")
        lines += [f"  {o.kind} {o.outcome} via {o.view} on host {o.host} {o.start - t0:.3f}-{o.end - t0:.3f}"
                  + (f" given up at {o.killed - t0:.3f}" if o.killed else "") + (f" ({o.error})" if o.error else "")
                  for o in ops]
        lines += [f"  drained from {c}" for c, ms in history.drained.items() if m in ms]
        lo, hi = min(o.start for o in ops) - 3, max(o.end for o in ops) + 3
        lines += [f"  fault {f.what} host {f.host} {f.start - t0:.3f}-{f.end - t0:.3f}"
                  for f in history.faults if f.start < hi and f.end > lo]
    return lines


def _lost_in_the_window(history: History, sends: dict, received: dict):
    """(message, the receive that coincided with its hand-over) for messages lost in the window;
    each such receive accounts for one message at most."""
    dying = [o for o in history.ops if o.kind == "recv" and o.killed and not o.message
             and o.end - o.killed <= WINDOW]
    for m, s in sorted(sends.items(), key=lambda kv: kv[1].end):
        if s.outcome != "ok" or m in received:
            continue
        for r in dying:
            # Sent before the reader's SIGTERM (else it was handed over after: the bug), and
            # not long before (a waiting reader would have had it then).
            if r.channel == s.channel and s.start <= r.killed <= s.end + WINDOW:
                dying.remove(r)
                yield m, r
                break


def observations(history: History) -> dict[str, list]:
    """What the promises allow but is worth knowing (see the module's docstring)."""
    sends = {o.message: o for o in history.ops if o.kind == "send"}
    received = {o.message for o in history.ops if o.kind == "recv" and o.message}
    received |= {m for ms in history.drained.values() for m in ms}
    return {
        "received as the timeout fired": [o.message for o in history.ops
                                          if o.kind == "recv" and o.message and o.outcome == "timeout"],
        "lost in the window": [(m, round(r.end - r.killed, 3))
                               for m, r in _lost_in_the_window(history, sends, received)],
    }


class Run:
    """Four hosts, clients and a nemesis for ``seconds``; then a drain.  ``run()`` -> History."""

    def __init__(self, tmp: Path, ca: Path, seconds: float, hosts: int = 4, clients: int = 4,
                 seed: int | None = None, views: dict | None = None, lab=None):
        self.tmp, self.ca, self.seconds = tmp, ca, seconds
        # With a netlab.Lab each host has a network namespace of its own, and the nemesis
        # also cuts hosts apart; clients that speak TCP (ssh, the client over PB) run in the
        # namespace of the host they use, as a program on that machine would.
        self.lab = lab
        self.rng = random.Random(seed)
        self.clients = clients
        self.views = views or VIEWS
        self.history = History()
        self.lock = threading.Lock()
        # The other ways in: an SSH key every host accepts, and a client certificate.
        self.ssh_key = keypair(tmp / "id_ed25519")
        (tmp / "authorized_keys").write_text((tmp / "id_ed25519.pub").read_text())
        make_client(ca, tmp / "client")
        self.hosts: list = [self._start(0, 0)]
        for i in range(1, hosts):
            self.hosts.append(self._start(i, 0, "-j", self.hosts[0].url))
        self.owner = self.hosts[0].host_id
        self.live = set(range(hosts))
        self.incarnation = [0] * hosts
        self.stopping = threading.Event()
        self.broken: list[BaseException] = []  # what went wrong in a client or the nemesis
        for h in self.hosts:
            wait_for(lambda: self.owner in {p.name for p in h.mount.iterdir()}, 15, what="hosts to meet")
        self.channels = {"rendezvous": 0, "buffered": 3}
        for name, cap in self.channels.items():
            self.hosts[0].sh(f"mkdir dc/chan/{name} && echo {cap} > dc/chan/{name}/cap")

    def _start(self, i: int, incarnation: int, *extra: str):
        where: tuple = ("--sftp", "127.0.0.1:0")
        if self.lab is not None:
            where = ("-a", f"{self.lab.addr(i)}:7700", "--sftp", f"{self.lab.addr(i)}:0")
        h = start_daemon(self.tmp / f"h{i}-{incarnation}", "--ca", str(self.ca), *where,
                         "--authorized-keys", str(self.tmp / "authorized_keys"), *extra,
                         prefix=self.lab.prefix(i) if self.lab is not None else ())
        wait_for(lambda: (h.data / "ssh").exists(), what="the SSH server")
        return h

    # -- clients --------------------------------------------------------------------------------
    def _path(self, host: int, channel: str, file: str) -> str:
        return str(self.hosts[host].mount / self.owner / "dc" / "chan" / channel / file)

    def _argv(self, view: str, host: int, verb: str, channel: str, message: str = "") -> list[str]:
        """The command that sends ``message`` (verb "send") or receives, through ``view``."""
        h = self.hosts[host]
        element = f"/{self.owner}/dc/chan/{channel}"
        if view == "mount":
            if verb == "send":
                # coreutils' echo, not bash's builtin: the builtin ignores what close(2) says (and
                # a blocked send is answered at close), so it reports success when the host dies.
                return ["bash", "-c", f"exec /bin/echo {message} > {self._path(host, channel, 'send')}"]
            return ["cat", self._path(host, channel, "recv")]
        near = list(self.lab.prefix(host)) if self.lab is not None else []
        if view == "ssh":
            address, _, port = (h.data / "ssh").read_text().strip().rpartition(":")
            command = f"echo {message} > {element}/send" if verb == "send" else f"cat {element}/recv"
            return near + ["ssh", "-p", port, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                           "-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-i", str(self.ssh_key),
                           f"me@{address.strip('[]')}", command]
        if view == "cli":  # a Unix socket: reached through the file system, in any namespace
            return [sys.executable, "-m", "circuit.cli.main", "--data", str(h.data), verb, element]
        pb = ["--pb"] if view == "client" else []  # the Python client, or the host runs it
        return near + [sys.executable, "-m", "circuit.cli.main", "--url", h.url, *pb, "--data",
                       str(self.tmp / "client"), verb, element]

    def _pick(self) -> int:
        with self.lock:
            return self.rng.choice(sorted(self.live))

    def _run(self, op: Op, argv: list[str], input: str | None = None) -> None:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL if input is None else subprocess.PIPE)
        try:
            out, err = p.communicate(input, timeout=OP_TIMEOUT)
        except subprocess.TimeoutExpired:
            op.killed = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                out, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                err += "\nhung past the harness's own limit"
        op.outcome = "timeout" if op.killed else "ok" if p.returncode == 0 else "fail"
        op.error = err.strip()[-200:]
        if op.kind == "recv":
            op.message = out.strip()
        op.end = time.monotonic()
        with self.lock:
            self.history.ops.append(op)

    def _view(self) -> str:
        with self.lock:
            return self.rng.choices(list(self.views), weights=list(self.views.values()))[0]

    def _sender(self, name: str) -> None:
        seq = 0
        while not self.stopping.is_set():
            seq += 1
            channel = self.rng.choice(list(self.channels))
            host, view = self._pick(), self._view()
            op = Op("send", name, channel, host, time.monotonic(), message=f"{name}-{seq}", view=view)
            argv = self._argv(view, host, "send", channel, op.message)
            self._run(op, argv, input=op.message + "\n" if view in ("cli", "url", "client") else None)

    def _receiver(self, name: str) -> None:
        while not self.stopping.is_set():
            channel = self.rng.choice(list(self.channels))
            host, view = self._pick(), self._view()
            op = Op("recv", name, channel, host, time.monotonic(), view=view)
            self._run(op, self._argv(view, host, "recv", channel))

    # -- the nemesis ----------------------------------------------------------------------------
    def _fault(self, what: str, i: int, act) -> None:
        fault = Fault(what, i, time.monotonic())
        act()
        fault.end = time.monotonic()
        self.history.faults.append(fault)

    def _stop(self, i: int, seconds: float) -> None:
        proc = self.hosts[i].proc
        proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        proc.send_signal(signal.SIGCONT)

    def _replace(self, i: int, sig) -> None:
        """Take host i out of the clients' choice, end it with sig, start a new member there."""
        with self.lock:
            self.live.discard(i)
        old = self.hosts[i]
        old.stop(sig)
        wait_for(lambda: old.host_id not in {p.name for p in self.hosts[0].mount.iterdir()}, 30,
                 what="the owner to see the host go")
        self.incarnation[i] += 1
        self.hosts[i] = self._start(i, self.incarnation[i], "-j", self.hosts[0].url)
        wait_for(lambda: self.owner in {p.name for p in self.hosts[i].mount.iterdir()}, 15,
                 what="the new member to see the owner")
        with self.lock:
            self.live.add(i)

    def _nemesis(self) -> None:
        others = list(range(1, len(self.hosts)))
        # Every kind of fault once first, in a random order (a roll in each kind's range),
        # so that even a short run has them all; then at random.
        kinds = [0.1, 0.3, 0.6, 0.8, 0.97] + ([0.9] if self.lab is not None else [])
        self.rng.shuffle(kinds)
        while not self.stopping.wait(self.rng.uniform(1.0, 3.0)):
            roll = kinds.pop() if kinds else self.rng.random()
            if roll < 0.25:
                self._fault("stop the owner", 0, lambda: self._stop(0, self.rng.uniform(0.1, 0.4)))
            elif roll < 0.5:
                i = self.rng.choice(others)
                self._fault("stop", i, lambda: self._stop(i, self.rng.uniform(0.1, 0.8)))
            elif roll < 0.7:
                i = self.rng.choice(others)
                self._fault("kill", i, lambda: self._replace(i, signal.SIGKILL))
            elif roll < 0.85:
                i = self.rng.choice(others)
                self._fault("restart", i, lambda: self._replace(i, signal.SIGTERM))
            elif self.lab is not None and roll < 0.95:
                # Cut one host (the owner too) off from all the others, then heal.
                i = self.rng.choice(range(len(self.hosts)))
                rest = [j for j in range(len(self.hosts)) if j != i]
                self._fault("cut off, then healed", i, lambda: self._cut(i, rest, self.rng.uniform(0.5, 3.0)))
            else:
                # Stopped past the failure detector, then killed: its hand-overs are settled as lost.
                i = self.rng.choice(others)

                def stop_then_kill(i=i):
                    with self.lock:
                        self.live.discard(i)
                    self._stop_until_gone(i)
                    self._replace(i, signal.SIGKILL)
                self._fault("stop past the failure detector, then kill", i, stop_then_kill)

    def _cut(self, i: int, rest: list[int], seconds: float) -> None:
        self.lab.cut([i], rest)
        time.sleep(seconds)
        self.lab.heal()

    def _stop_until_gone(self, i: int) -> None:
        h = self.hosts[i]
        h.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: h.host_id not in {p.name for p in self.hosts[0].mount.iterdir()}, 30,
                 what="the owner to declare the stopped host dead")

    # -- the run --------------------------------------------------------------------------------
    def _thread(self, target, *args) -> threading.Thread:
        def run():
            try:
                target(*args)
            except BaseException as e:  # the harness failed, not the circuit: stop and say so
                self.broken.append(e)
                self.stopping.set()
        return threading.Thread(target=run)

    def run(self) -> History:
        threads = [self._thread(self._sender, f"s{i}") for i in range(self.clients)]
        threads += [self._thread(self._receiver, f"r{i}") for i in range(self.clients)]
        nemesis = self._thread(self._nemesis)
        for t in threads + [nemesis]:
            t.start()
        self.stopping.wait(self.seconds)
        self.stopping.set()
        nemesis.join()
        for t in threads:
            t.join()
        if self.broken:
            raise self.broken[0]
        self._drain()
        return self.history

    def _drain(self) -> None:
        """Whatever is still in the channels, read through the owner's own mount."""
        owner = self.hosts[0]
        for name in self.channels:
            chan = owner.root / "dc" / "chan" / name
            wait_for(lambda: json.loads((chan / "stat").read_text()).get("handing_over", 0) == 0, 30,
                     what="hand-overs in flight to settle")
            got = []
            while True:
                r = owner.sh(f"cat dc/chan/{name}/tryrecv", check=False)
                if r.returncode != 0:
                    break
                got.append(r.stdout.strip())
            self.history.drained[name] = got

    def close(self) -> None:
        for h in self.hosts:
            if h.proc.poll() is None:
                h.proc.send_signal(signal.SIGCONT)
            h.stop()
