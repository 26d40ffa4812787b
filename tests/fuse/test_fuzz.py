"""Every writable control file, fuzzed through the real mount (SPEC section 4).

Random bytes, JSON of any shape, odd encodings and sizes, written by one writer or by two
interleaved ones: the answer is the content taken, or an errno of SPEC section 4 with a line in
the element's `error` file and the element unchanged; the host never answers EIO nor logs a
traceback.
"""
import errno
import itertools
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

REFUSALS = {errno.EINVAL, errno.EBUSY, errno.ENOENT, errno.EPIPE, errno.EACCES, errno.E2BIG,
            errno.ESRCH, errno.EAGAIN}

# Where each kind of element starts, and the files written into it.  A channel has a cap
# (so that a send never blocks) unless the file is cap itself.
SETUPS = {
    "chan": {"cap": "", "send": "echo 1000 > {e}/cap", "trysend": "echo 1000 > {e}/cap",
             "close": "echo 1000 > {e}/cap"},
    "proc": {"run": "", "signal": "", "stdin": ""},
    "select": {"select": "", "abort": ""},
}
TARGETS = [(kind, file) for kind, files in SETUPS.items() for file in files]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["path", "args", "env", "dir", "scrub", "op", "file", "x"]), inner, max_size=4),
    max_leaves=12)
CONTENT = st.one_of(
    st.binary(max_size=2000),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"\n", b"0", b"-1", b"1e9", b"\xff\xfe", b"[" * 5000, b"KILL", b"SIGFOO",
                     b"99999", b"\x00" * 64, b"x" * (1024 * 1024 + 1)]),
)
_unique = itertools.count()


def _steps(path, content: bytes, split: int, fds: list) -> list:
    """One writer, or two interleaved (the second opened before the first closes), as steps
    (what, call), each of which may be refused.  Closing is the flush, where most files
    deliver; a descriptor opened with O_TRUNC and closed unwritten delivers the empty content."""
    def opening():
        fds.append(os.open(path, os.O_WRONLY | os.O_TRUNC))

    def closing(i):
        fd, fds[i] = fds[i], None
        os.close(fd)
    if not split:
        return [("open", opening), ("write", lambda: os.write(fds[0], content)),
                ("close", lambda: closing(0))]
    return [("open", opening), ("open", opening),
            ("write", lambda: os.write(fds[0], content[:split])),
            ("write", lambda: os.write(fds[1], content[split:])),
            ("close", lambda: closing(1)), ("close", lambda: closing(0))]


def _stat(element) -> dict:
    st_ = json.loads((element / "stat").read_text())
    st_.pop("uptime", None)
    return st_


@settings(max_examples=int(os.environ.get("CIRCUIT_FUZZ_EXAMPLES", 200)), deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(TARGETS), content=CONTENT, split=st.integers(0, 3))
def test_control_files_take_it_or_refuse_it_cleanly(host, target, content, split):
    kind, file = target
    element = host.root / "dc" / kind / f"fuzz{next(_unique)}"
    setup = SETUPS[kind][file]
    host.sh(f"mkdir {element}" + (" && " + setup.format(e=element) if setup else ""))
    split = min(split, len(content))
    fds: list = []
    try:
        for what, step in _steps(element / file, content, split, fds):
            before = _stat(element)
            try:
                step()
            except OSError as e:
                code = e.errno
                said = f"{what} of {file} <- {content[:80]!r} (split {split})"
                assert code in REFUSALS, f"{said}: {errno.errorcode.get(code)}"
                line = (element / "error").read_text()
                assert line.endswith(f"({errno.errorcode[code]})\n") and line.count("\n") == 1, line
                assert _stat(element) == before, f"{said} was refused but changed the element"
                if what == "open":
                    break
    finally:
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        host.sh(f"rmdir {element}", check=False)


@pytest.fixture(scope="module", autouse=True)
def no_traceback_in_the_log(host):
    yield
    text = host.log.read_text()
    assert "Traceback" not in text and "Unhandled" not in text, text[-3000:]
