"""Every step of the talk's Process, Channel and Select slides, through a real mount."""
import json


def test_listing_shows_the_host(host):
    out = host.sh(f"ls {host.mount}").stdout.split()
    assert out == [host.host_id]
    assert sorted(host.sh("ls").stdout.split()) == ["dc", "fs", "help", "sys"]
    assert sorted(host.sh("ls dc").stdout.split()) == ["chan", "dns", "proc", "select", "subs"]
    assert host.host_id in host.sh("cat help").stdout


def test_process_slide(host):
    host.sh("cd dc/proc && mkdir pippi")
    listing = host.sh("ls -l dc/proc/pippi").stdout
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()[1:]}
    assert modes == {
        "env": "-r--r--r--", "error": "-r--r--r--", "help": "-r--r--r--", "run": "-rw-rw-rw-",
        "signal": "--w--w--w-", "stat": "-r--r--r--", "stderr": "-r--r--r--",
        "stdin": "--w--w--w-", "stdout": "-r--r--r--", "waitexit": "-r--r--r--"}
    host.sh("""cd dc/proc/pippi
cat << EOF >> run
{
  "env": ["TERM=circuit"],
  "path": "/bin/ls",
  "args": ["-a", "/"]
}
EOF
""")
    record = json.loads(host.sh("cat dc/proc/pippi/waitexit").stdout)
    assert record["phase"] == "exited" and record["exit"] == 0
    assert record["cmd"]["path"] == "/bin/ls"
    assert ".\n..\n" in host.sh("cat dc/proc/pippi/stdout").stdout
    assert "bin" in host.sh("cat dc/proc/pippi/stdout").stdout.split()  # read again: still there
    assert json.loads(host.sh("cat dc/proc/pippi/run").stdout)["args"] == ["-a", "/"]


def test_process_slide_with_stdin_streaming(host, tmp_path):
    """`yes >> stdin &`, `cat stdout > ... &`: the slide's pipeline, with backpressure."""
    out = tmp_path / "out"
    host.sh(f"""cd dc/proc && mkdir yes-pipe && cd yes-pipe
echo '{{"path": "/usr/bin/head", "args": ["-c", "1000000"]}}' > run
yes >> stdin 2>/dev/null &
cat stdout > {out} &
cat waitexit > /dev/null
wait
""")
    assert out.read_bytes() == b"y\n" * 500000


def test_channel_slide(host):
    out = host.sh("""cd dc/chan && mkdir charlie && ls charlie
echo "0" >> charlie/cap
echo "¡Hello, world!" >> charlie/send &
cat charlie/recv
echo "close" >> charlie/close
wait
""").stdout
    lines = out.split("\n")
    files, message = lines[:-2], lines[-2]
    assert files == ["cap", "close", "error", "help", "recv", "send", "stat", "tryrecv",
                     "trysend", "waitrecv", "waitsend"]
    assert message == "¡Hello, world!"
    stat = json.loads(host.sh("cat dc/chan/charlie/stat").stdout)
    assert stat["closed"] and stat["sent"] == 1 and stat["received"] == 1


def test_select_slide_first_form(host):
    host.sh("""cd dc && mkdir proc/p0 chan/c1 chan/c2 select/sarah
echo 0 > chan/c1/cap && echo 1 > chan/c2/cap
echo '{"path": "/bin/sleep", "args": ["30"]}' > proc/p0/run
cat << EOF >> select/sarah/select
[
  {"op": "r", "file": "proc/p0/waitexit"},
  {"op": "w", "file": "chan/c1/send"},
  {"op": "r", "file": "chan/c2/recv"}
]
EOF
""")
    assert sorted(host.sh("ls dc/select/sarah").stdout.split()) == [
        "abort", "error", "help", "select", "stat", "wait"]
    host.sh("echo hola > dc/chan/c2/send")
    assert json.loads(host.sh("cat dc/select/sarah/wait").stdout) == {"clause": 2, "file": "read.2"}
    assert host.sh("cat dc/select/sarah/read.2").stdout == "hola\n"
    assert json.loads(host.sh("cat dc/chan/c2/stat").stdout)["len"] == 0
    host.sh("echo KILL > dc/proc/p0/signal")


def test_select_slide_readiness_form(host):
    """The second slide: waitsend written with op w, waitrecv with op r, full tree paths."""
    root = f"/{host.host_id}/dc"
    host.sh(f"""cd dc && mkdir proc/q0 chan/d1 chan/d2 select/sally
echo 1 > chan/d1/cap && echo 3 > chan/d2/cap
echo hold > chan/d1/send
echo '{{"path": "/bin/sleep", "args": ["30"]}}' > proc/q0/run
cat << EOF >> select/sally/select
[
    {{"op": "r", "file": "{root}/proc/q0/waitexit"}},
    {{"op": "w", "file": "{root}/chan/d1/waitsend"}},
    {{"op": "r", "file": "{host.mount}{root}/chan/d2/waitrecv"}}
]
EOF
echo "hola" >> chan/d2/send
""")
    assert json.loads(host.sh("cat dc/select/sally/wait").stdout) == {"clause": 2, "file": "read.2"}
    # A readiness clause takes nothing: the message is still there.
    assert host.sh("cat dc/chan/d2/recv").stdout == "hola\n"
    host.sh("echo KILL > dc/proc/q0/signal")
