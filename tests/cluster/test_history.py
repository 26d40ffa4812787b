"""A checked history over four real hosts with stops, kills, restarts and network cuts, clients
using every way in (see history.py).

90 s in CI.  For a longer run: CIRCUIT_HISTORY_SECONDS=1800 python -m pytest tests/cluster/test_history.py
(the figures of such runs are in docs/testing.md)."""
import json
import os

import pytest
from helpers import make_ca

from history import Run, check, explain, observations
from netlab import Lab, available

SECONDS = float(os.environ.get("CIRCUIT_HISTORY_SECONDS", "90"))


@pytest.mark.timeout(SECONDS + 300)  # setting up, the drain and the teardown
def test_a_checked_history_under_faults_has_no_anomaly(tmp_path):
    # Each host in a network namespace of its own, so that the nemesis can cut them apart
    # (root only; elsewhere the hosts share loopback and the nemesis does not cut).
    lab = Lab(f"hist{os.getpid() % 10000}", 4) if available() else None
    try:
        run = Run(tmp_path, make_ca(tmp_path / "ca"), SECONDS, lab=lab)
        try:
            run.run()
        finally:
            run.close()
            run.history.save(tmp_path / "history.json")
    finally:
        if lab is not None:
            lab.close()
    summary = run.history.summary()
    print(json.dumps({**summary, **observations(run.history)}, indent=1))
    # The run did what it is for: messages went through every view, and every kind of fault happened.
    assert summary.get("send ok", 0) > 50 and summary.get("recv ok", 0) > 50, summary
    for view in run.views:
        assert summary.get(f"{view} send ok", 0) and summary.get(f"{view} recv ok", 0), (view, summary)
    ended = ("fault kill", "fault restart", "fault stop past the failure detector, then kill")
    assert sum(summary.get(k, 0) for k in ended) >= 2, summary
    if lab is not None:
        assert summary.get("fault cut off, then healed", 0) >= 1, summary
    anomalies = check(run.history)
    assert anomalies == {k: [] for k in anomalies}, \
        json.dumps(anomalies, indent=1)[:5000] + "\n" + "\n".join(explain(run.history, anomalies))
