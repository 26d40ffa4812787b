"""SPEC section 4: every refusal is an errno at the shell plus one line in `error`; nothing changes."""
import errno
import json
import os

import pytest


def _errno_of(fn):
    with pytest.raises(OSError) as e:
        fn()
    return e.value.errno


def _write(path, data: bytes):
    def go():
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return go


def test_malformed_and_unknown_json_in_run(host, names):
    p = host.root / "dc" / "proc" / names("p")
    host.sh(f"mkdir {p}")
    for bad in [b"{bad", b"[1, 2]", b'{"path": "/bin/true", "colour": "red"}', b'{"args": ["x"]}',
                b'{"path": "/bin/true", "args": "x"}', b'{"path": "/bin/true", "env": ["NOEQUALS"]}',
                b'{"path": 5}', b'{"path": "/bin/true"} trailing']:
        assert _errno_of(_write(p / "run", bad)) == errno.EINVAL, bad
        assert "(EINVAL)" in (p / "error").read_text()
        assert json.loads((p / "stat").read_text())["phase"] == "created"
    r = host.sh(f"echo '{{bad' > {p}/run", check=False)
    assert r.returncode == 1 and "Invalid argument" in r.stderr
    assert (p / "error").read_text().startswith("run: not JSON")
    # Left as it was: a good command still runs.
    host.sh(f"echo '{{\"path\": \"/bin/true\"}}' > {p}/run && cat {p}/waitexit")


def test_missing_binary_leaves_the_process_unstarted(host, names):
    p = host.root / "dc" / "proc" / names("p")
    host.sh(f"mkdir {p}")
    assert _errno_of(_write(p / "run", b'{"path": "/no/such/program"}')) == errno.ENOENT
    assert "no such program" in (p / "error").read_text()
    assert _errno_of(_write(p / "run", b'{"path": "/etc/passwd"}')) == errno.EACCES
    assert _errno_of(_write(p / "run", b'{"path": "/bin/true", "dir": "/no/dir"}')) == errno.ENOENT
    assert json.loads((p / "stat").read_text())["phase"] == "created"
    host.sh(f"echo '{{\"path\": \"/bin/true\"}}' > {p}/run")
    assert _errno_of(_write(p / "run", b'{"path": "/bin/true"}')) == errno.EBUSY  # once only


def test_cap_twice_and_bad_cap(host, names):
    c = host.root / "dc" / "chan" / names("c")
    host.sh(f"mkdir {c}")
    assert _errno_of(_write(c / "send", b"x")) == errno.EINVAL  # no cap yet
    assert _errno_of(_write(c / "cap", b"-1")) == errno.EINVAL
    assert _errno_of(_write(c / "cap", b"lots")) == errno.EINVAL
    assert json.loads((c / "stat").read_text())["cap"] is None
    host.sh(f"echo 2 > {c}/cap")
    r = host.sh(f"echo 3 > {c}/cap", check=False)
    assert r.returncode == 1 and "Device or resource busy" in r.stderr
    assert (c / "error").read_text() == "cap is already set to 2 (EBUSY)\n"
    assert (c / "cap").read_text() == "2\n"


def test_bad_names_and_unknown_paths(host):
    for bad in [".hidden", "a b", "x" * 65, "sl/ash"]:
        r = host.sh(f"mkdir 'dc/chan/{bad}'", check=False)
        assert r.returncode == 1, bad
    assert "Invalid argument" in host.sh("mkdir dc/chan/.hidden", check=False).stderr
    assert "Invalid argument" in host.sh("mkdir dc/thing", check=False).stderr
    assert "No such file" in host.sh("mkdir dc/nokind/x", check=False).stderr
    assert "No such file" in host.sh("cat dc/chan/nobody/recv", check=False).stderr
    assert "No such file" in host.sh(f"ls {host.mount}/X0000000000000000", check=False).stderr
    r = host.sh("mkdir dc/chan/dup && mkdir dc/chan/dup", check=False)
    assert "File exists" in r.stderr


def test_writing_read_only_and_reading_write_only(host, names):
    c = host.root / "dc" / "chan" / names("c")
    host.sh(f"mkdir {c} && echo 1 > {c}/cap")
    for f in ("recv", "stat", "help", "error", "tryrecv", "waitrecv", "waitsend"):
        r = host.sh(f"echo x > {c}/{f}", check=False)
        assert r.returncode == 1 and "Permission denied" in r.stderr, f
    assert (c / "error").read_text() == "waitsend is read-only (EACCES)\n"
    assert "Permission denied" in host.sh(f"cat {c}/send", check=False).stderr
    for f in ("id", "stat", "members"):
        assert "Permission denied" in host.sh(f"echo x > sys/{f}", check=False).stderr
    assert json.loads((c / "stat").read_text())["len"] == 0  # nothing was sent


def test_select_refusals(host, names):
    s = host.root / "dc" / "select" / names("s")
    c = names("c")
    host.sh(f"mkdir {s} dc/chan/{c} && echo 1 > dc/chan/{c}/cap")
    cases = {
        b"not json": errno.EINVAL,
        b"[]": errno.EINVAL,
        b'[{"op": "x", "file": "chan/c/recv"}]': errno.EINVAL,
        b'[{"op": "r", "file": "/etc/passwd"}]': errno.EINVAL,          # outside the circuit
        f'[{{"op": "r", "file": "chan/{c}/stat"}}]'.encode(): errno.EINVAL,  # not ready-able
        f'[{{"op": "r", "file": "chan/{c}"}}]'.encode(): errno.EINVAL,       # a directory
        b'[{"op": "r", "file": "chan/nobody/recv"}]': errno.EINVAL,      # unknown path
        f'[{{"op": "r", "file": "chan/{c}/send"}}]'.encode(): errno.EINVAL,  # send takes op w
    }
    for text, code in cases.items():
        assert _errno_of(_write(s / "select", text)) == code, text
        assert (s / "error").read_text().endswith("(EINVAL)\n")
        assert json.loads((s / "stat").read_text())["state"] == "idle"


def test_signal_refusals(host, names):
    p = host.root / "dc" / "proc" / names("p")
    host.sh(f"mkdir {p}")
    assert _errno_of(_write(p / "signal", b"TERM")) == errno.ESRCH  # not running
    host.sh(f"echo '{{\"path\": \"/bin/sleep\", \"args\": [\"30\"]}}' > {p}/run")
    assert _errno_of(_write(p / "signal", b"NOSUCHSIG")) == errno.EINVAL
    assert _errno_of(_write(p / "signal", b"999")) == errno.EINVAL
    assert json.loads((p / "stat").read_text())["phase"] == "running"
    host.sh(f"echo KILL > {p}/signal")


def test_closed_channel_send_and_close_twice(host, names):
    c = host.root / "dc" / "chan" / names("c")
    host.sh(f"mkdir {c} && echo 1 > {c}/cap && echo close > {c}/close")
    assert _errno_of(_write(c / "send", b"x")) == errno.EPIPE
    assert _errno_of(_write(c / "close", b"close")) == errno.EPIPE
    assert "closed" in (c / "error").read_text()


def test_abort_a_select(host, names):
    s, c = names("s"), names("c")
    host.sh(f"""mkdir dc/select/{s} dc/chan/{c} && echo 1 > dc/chan/{c}/cap
echo '[{{"op": "r", "file": "chan/{c}/recv"}}]' > dc/select/{s}/select
echo abort > dc/select/{s}/abort""")
    r = host.sh(f"cat dc/select/{s}/wait", check=False)
    assert r.returncode == 1 and "Operation canceled" in r.stderr
    host.sh(f"echo kept > dc/chan/{c}/send")
    assert host.sh(f"cat dc/chan/{c}/recv").stdout == "kept\n"  # an aborted select takes nothing


def test_abort_after_commit_gives_the_message_back(host, names):
    s, c = names("s"), names("c")
    host.sh(f"""mkdir dc/select/{s} dc/chan/{c} && echo 2 > dc/chan/{c}/cap
echo first > dc/chan/{c}/send; echo second > dc/chan/{c}/send
echo '[{{"op": "r", "file": "chan/{c}/recv"}}]' > dc/select/{s}/select
cat dc/select/{s}/wait > /dev/null
echo abort > dc/select/{s}/abort""")
    assert host.sh(f"cat dc/chan/{c}/recv; cat dc/chan/{c}/recv").stdout == "first\nsecond\n"


def test_write_n_is_refused_at_write_when_already_sent(host, names):
    s, c = names("s"), names("c")
    host.sh(f"""mkdir dc/select/{s} dc/chan/{c} && echo 1 > dc/chan/{c}/cap
echo '[{{"op": "w", "file": "chan/{c}/send"}}]' > dc/select/{s}/select
cat dc/select/{s}/wait > /dev/null
echo first > dc/select/{s}/write.0""")
    r = host.sh(f"echo again > dc/select/{s}/write.0", check=False)
    assert r.returncode == 1 and "Device or resource busy" in r.stderr
    assert host.sh(f"cat dc/chan/{c}/recv").stdout == "first\n"


def test_a_send_clause_on_a_closed_channel_commits_with_epipe(host, names):
    s, c = names("s"), names("c")
    host.sh(f"""mkdir dc/select/{s} dc/chan/{c} && echo 1 > dc/chan/{c}/cap && echo x > dc/chan/{c}/close
echo '[{{"op": "w", "file": "chan/{c}/send"}}]' > dc/select/{s}/select""")
    wait = json.loads(host.sh(f"cat dc/select/{s}/wait").stdout)
    assert wait["clause"] == 0 and "closed" in wait["error"]
    r = host.sh(f"echo late > dc/select/{s}/write.0", check=False)
    assert r.returncode == 1 and "Broken pipe" in r.stderr


def test_waitexit_takes_either_op(host, names):
    s, p = names("s"), names("p")
    host.sh(f"""mkdir dc/select/{s} dc/proc/{p} && echo '{{"path": "/bin/true"}}' > dc/proc/{p}/run
echo '[{{"op": "w", "file": "proc/{p}/waitexit"}}]' > dc/select/{s}/select""")
    assert json.loads(host.sh(f"cat dc/select/{s}/wait").stdout)["clause"] == 0


def test_the_root_and_a_host_itself_cannot_be_changed(host):
    """Hosts come and go by joining and leaving: / and /X.../ refuse what would make or unmake one."""
    m, me = host.mount, host.host_id
    assert _errno_of(lambda: os.mkdir(m / "X0123456789abcdef")) == errno.EACCES
    assert _errno_of(lambda: os.rmdir(m / me)) == errno.EACCES
    assert _errno_of(lambda: os.unlink(m / me)) in (errno.EACCES, errno.EISDIR)
    assert _errno_of(lambda: open(m / "made-here", "w")) == errno.EACCES
    assert _errno_of(lambda: open(m / me)) == errno.EISDIR
    assert _errno_of(lambda: os.rename(m / me / "fs", m / "elsewhere")) == errno.EACCES
    assert _errno_of(lambda: os.utime(m, (0, 0))) == errno.EPERM
    assert sorted(os.listdir(m)) == [me] and (m / me / "dc").is_dir()  # nothing changed


def test_deep_nesting_lone_surrogates_and_too_much_are_refused_cleanly(host, names):
    """Odd JSON is EINVAL and too much is E2BIG, each with a line in error, never EIO, never a
    traceback in the log; the element is left as it was."""
    p = host.root / "dc" / "proc" / names("p")
    s = host.root / "dc" / "select" / names("s")
    host.sh(f"mkdir {p} {s}")
    for target, bad, code, says in [
            (p / "run", b"[" * 100000, errno.EINVAL, "nested deeper"),
            (p / "run", b'{"path": "/bin/echo", "args": ["\\udc80"]}', errno.EINVAL, "lone surrogate"),
            (s / "select", json.dumps([{"op": "r", "file": "chan/x/recv"}] * 1001).encode(), errno.E2BIG,
             "at most 1000"),
            (p / "run", b'{"path": "/bin/echo", "args": ["' + b"a" * (2 << 20) + b'"]}', errno.E2BIG,
             "at most 1048576 bytes")]:
        assert _errno_of(_write(target, bad)) == code, says
        assert says in (target.parent / "error").read_text()
    assert json.loads((p / "stat").read_text())["phase"] == "created"
    assert json.loads((s / "stat").read_text())["state"] == "idle"
    assert "Traceback" not in host.log.read_text()


def test_a_whole_value_takes_effect_at_its_write(host, names):
    """`cap`'s line and `run`'s JSON document take effect at the write(2) that completes
    them (what is not whole yet waits for the close, as before); only the end of a line
    may follow, and a second value is refused there."""
    c = host.root / "dc" / "chan" / names("c")
    host.sh(f"mkdir {c}")
    fd = os.open(c / "cap", os.O_WRONLY)
    os.write(fd, b"3")
    assert json.loads((c / "stat").read_text())["cap"] is None  # no line yet: more may come
    os.write(fd, b"\n")
    assert json.loads((c / "stat").read_text())["cap"] == 3  # before the close
    os.write(fd, b"\n")
    assert _errno_of(lambda: os.write(fd, b"4\n")) == errno.EBUSY
    assert _errno_of(lambda: os.close(fd)) == errno.EBUSY  # the refusal, again at close
    assert (c / "cap").read_text() == "3\n"
    c2 = host.root / "dc" / "chan" / names("c2")
    host.sh(f"mkdir {c2} && printf 7 > {c2}/cap")  # no line end: set at the close
    assert (c2 / "cap").read_text() == "7\n"

    p = host.root / "dc" / "proc" / names("p")
    host.sh(f"mkdir {p}")
    fd = os.open(p / "run", os.O_WRONLY)
    os.write(fd, b'{"path": "/bin/echo", ')
    assert json.loads((p / "stat").read_text())["phase"] == "created"
    os.write(fd, b'"args": ["started"]}')
    assert json.loads((p / "stat").read_text())["phase"] != "created"  # before the close
    os.write(fd, b"\n")
    os.close(fd)
    assert json.loads(host.sh(f"cat {p}/waitexit").stdout)["exit"] == 0
    assert (p / "stdout").read_text() == "started\n"  # started once
