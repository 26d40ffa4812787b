"""The JSON a process is started with (SPEC 3, proc/NAME/run), and telling a document still
arriving from one that can never be valid (circuit/jsondoc.py)."""
from __future__ import annotations

import errno
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from circuit import errors, jsondoc
from circuit.core.command import Command


def parse(obj) -> Command:
    return Command.parse(json.dumps(obj).encode())


def refused(text: bytes) -> errors.CircuitError:
    with pytest.raises(errors.Invalid) as e:
        Command.parse(text)
    assert e.value.errno == errno.EINVAL
    return e.value


# -- Command.parse ----------------------------------------------------------------------------

def test_only_path_is_required():
    c = parse({"path": "/bin/ls"})
    assert c == Command(path="/bin/ls", args=[], env=None, dir=None, scrub=False)


def test_every_key():
    c = parse({"env": ["A=1", "B=x=y"], "dir": "/tmp", "path": "ls", "args": ["-l", ""], "scrub": True})
    assert (c.path, c.args, c.env, c.dir, c.scrub) == ("ls", ["-l", ""], ["A=1", "B=x=y"], "/tmp", True)


def test_to_json_reads_back_as_the_same_command():
    for obj in ({"path": "/bin/ls"}, {"path": "x", "args": ["a"], "env": [], "dir": "/", "scrub": True}):
        c = parse(obj)
        assert Command.from_json(json.loads(json.dumps(c.to_json()))) == c
    assert parse({"path": "/bin/ls"}).to_json() == {"path": "/bin/ls", "args": [], "scrub": False}


@pytest.mark.parametrize("text", [b"", b"   \n", b'{"path": "/bin/ls"', b"not json", b'{"path": }',
                                  b'{"path": "/bin/ls"}}', b"\xff\xfe", b'{"path": "/bin/\xe9"}'])
def test_text_that_is_not_one_json_document_is_refused(text):
    refused(text)


def test_an_unfinished_document_says_so():
    assert "incomplete" in refused(b'{"path": "/bin/ls", "args": [').message


@pytest.mark.parametrize("doc", ["null", "[]", '"/bin/ls"', "1", '[{"path": "/bin/ls"}]'])
def test_the_document_must_be_an_object(doc):
    refused(doc.encode())


def test_unknown_keys_are_named():
    e = refused(b'{"path": "/bin/ls", "argv": [], "cwd": "/"}')
    assert "argv" in e.message and "cwd" in e.message


@pytest.mark.parametrize("obj", [
    {}, {"args": ["x"]}, {"path": ""}, {"path": None}, {"path": 1}, {"path": ["/bin/ls"]},
])
def test_path_is_required_and_a_nonempty_string(obj):
    assert "path" in refused(json.dumps(obj).encode()).message


@pytest.mark.parametrize("args", ["-l", None, [1], ["-l", None], [["-l"]], {"0": "-l"}])
def test_args_must_be_a_list_of_strings(args):
    assert "args" in refused(json.dumps({"path": "/bin/ls", "args": args}).encode()).message


@pytest.mark.parametrize("env", ["A=1", ["A"], ["A=1", "B"], [1], [None], {"A": "1"}])
def test_env_must_be_a_list_of_name_value_strings(env):
    assert "env" in refused(json.dumps({"path": "/bin/ls", "env": env}).encode()).message


@pytest.mark.parametrize("d", [1, ["/tmp"], True])
def test_dir_must_be_a_string(d):
    assert "dir" in refused(json.dumps({"path": "/bin/ls", "dir": d}).encode()).message


@pytest.mark.parametrize("scrub", [0, 1, "true", None, []])
def test_scrub_must_be_a_boolean(scrub):
    assert "scrub" in refused(json.dumps({"path": "/bin/ls", "scrub": scrub}).encode()).message


@pytest.mark.parametrize("obj", [
    {"path": "/bin/ls", "env": ["=x"]},              # no name: exec refuses it later (ValueError)
    {"path": "/bin/ls", "env": ["A=x\u0000y"]},      # NUL cannot be passed to exec
    {"path": "/bin/ls", "args": ["a\u0000b"]},
])
def test_what_exec_cannot_take_is_refused_when_written(obj):
    """Otherwise spawnProcess raises ValueError, which Process.run does not turn into a
    CircuitError: the writer gets no clear EINVAL."""
    refused(json.dumps(obj).encode())


# -- what the command runs -----------------------------------------------------------------------

def test_environment_is_inherited_unless_given():
    inherited = {"PATH": "/usr/bin", "HOME": "/root"}
    env = parse({"path": "x"}).environment(inherited)
    assert env == inherited and env is not inherited
    assert parse({"path": "x", "env": []}).environment(inherited) == {}
    assert parse({"path": "x", "env": ["A=1=2", "B="]}).environment(inherited) == {"A": "1=2", "B": ""}


def _executable(path, mode=0o755):
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return str(path)


def test_executable_found_by_path_or_by_search(tmp_path):
    prog = _executable(tmp_path / "prog")
    assert Command(path=prog).executable({}) == prog
    assert Command(path="prog").executable({"PATH": f"/nonexistent:{tmp_path}"}) == prog
    assert Command(path="./prog", dir=str(tmp_path)).executable({}) == os.path.join(str(tmp_path), "./prog")


def test_a_missing_program_is_enoent_and_a_plain_file_is_eacces(tmp_path):
    with pytest.raises(errors.NotFound) as e:
        Command(path="no-such-program-here").executable({"PATH": str(tmp_path)})
    assert e.value.errno == errno.ENOENT
    plain = _executable(tmp_path / "plain", 0o644)
    with pytest.raises(errors.ReadOnly) as e:
        Command(path=plain).executable({})
    assert e.value.errno == errno.EACCES


# -- jsondoc: incomplete or invalid ---------------------------------------------------------------

@pytest.mark.parametrize("text", [
    b"", b"  \n", b"{", b'{"path', b'{"path": "/bin/ls"', b'{"path": "/bin/ls",', b"[1,", b"[1",
    b'["a\\', b'{"a": "\xe2\x82',  # a UTF-8 character cut in two
])
def test_check_partial_waits_for_more_of_an_unfinished_document(text):
    assert jsondoc.check_partial(text, "run") is None


@pytest.mark.parametrize("text", [b"xyz", b'{"a": }', b'{"a": 1}}', b"\xff", b"[1 2]", b"{'a': 1}"])
def test_check_partial_refuses_what_no_more_text_can_mend(text):
    with pytest.raises(errors.Invalid) as e:
        jsondoc.check_partial(text, "select")
    assert e.value.errno == errno.EINVAL and e.value.message.startswith("select: ")


def test_check_partial_gives_a_finished_document():
    assert jsondoc.check_partial(b'{"path": "/bin/ls"}\n', "run") == {"path": "/bin/ls"}
    assert jsondoc.parse(b'[{"op": "r", "file": "x"}]', "select") == [{"op": "r", "file": "x"}]


def test_check_partial_waits_when_a_write_ends_inside_a_literal():
    """`{"path": "/bin/ls", "scrub": true}` written in two writes split inside `true`."""
    assert jsondoc.check_partial(b'{"path": "/bin/ls", "scrub": tr', "run") is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(doc=st.lists(_json, max_size=4) | st.dictionaries(st.text(max_size=6), _json, max_size=4),
       ascii_only=st.booleans())
def test_no_prefix_of_a_valid_document_is_refused(doc, ascii_only):
    """A control file checks what has arrived at every write(2): wherever the writes split a
    valid list or object, the part so far must read as unfinished, never as invalid."""
    text = json.dumps(doc, ensure_ascii=ascii_only).encode()
    for cut in range(len(text)):
        assert jsondoc.check_partial(text[:cut], "run") is None, text[:cut]
    assert jsondoc.check_partial(text, "run") == doc
