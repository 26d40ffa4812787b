"""Memory comes back when elements go: a host that held 200,000 select clauses gives most of
what they took back to the system once they are removed (tests/tree/test_memory.py shows that
nothing keeps them alive; this, that the host process shrinks)."""
import json

from helpers import rss_mb, wait_for


def test_memory_comes_back_after_rmdir(host, names):
    chan = names("c")
    host.sh(f"mkdir dc/chan/{chan} && echo 0 > dc/chan/{chan}/cap")
    clauses = json.dumps([{"op": "r", "file": f"chan/{chan}/recv"}] * 1000)
    (host.data.parent / "clauses.json").write_text(clauses)
    selects = [names(f"s{i}") for i in range(200)]
    before = rss_mb(host.proc.pid)
    host.sh("; ".join(f"mkdir dc/select/{s} && cat {host.data.parent}/clauses.json > dc/select/{s}/select"
                      for s in selects), timeout=120)
    grown = rss_mb(host.proc.pid) - before
    assert grown > 100, f"200,000 clauses took only {grown} MB: the test measures nothing"
    host.sh("rmdir " + " ".join(f"dc/select/{s}" for s in selects), timeout=60)
    wait_for(lambda: rss_mb(host.proc.pid) - before < grown / 3, 30,
             what=f"the {grown} MB the clauses took to come back")
