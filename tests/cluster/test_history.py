"""A checked history over four real hosts with stops, kills and restarts (see history.py).

60 s in CI.  For a longer run: CIRCUIT_HISTORY_SECONDS=1800 python -m pytest tests/cluster/test_history.py
(the figures of such runs are in docs/testing.md)."""
import json
import os

import pytest
from helpers import make_ca

from history import Run, check, observations

SECONDS = float(os.environ.get("CIRCUIT_HISTORY_SECONDS", "60"))


@pytest.mark.timeout(SECONDS + 240)  # setting up, the drain and the teardown
def test_a_checked_history_under_faults_has_no_anomaly(tmp_path):
    run = Run(tmp_path, make_ca(tmp_path / "ca"), SECONDS)
    try:
        run.run()
    finally:
        run.close()
        run.history.save(tmp_path / "history.json")
    summary = run.history.summary()
    print(json.dumps({**summary, **observations(run.history)}, indent=1))
    # The run did what it is for: messages went through, and every kind of fault happened.
    assert summary.get("send ok", 0) > 50 and summary.get("recv ok", 0) > 50, summary
    ended = ("fault kill", "fault restart", "fault stop past the failure detector, then kill")
    assert sum(summary.get(k, 0) for k in ended) >= 2, summary
    anomalies = check(run.history)
    assert anomalies == {k: [] for k in anomalies}, json.dumps(anomalies, indent=1)[:5000]
