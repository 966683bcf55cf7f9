"""A worker process exits after SIGTERM even when a sync job never returns: the job is
released, and its abandoned thread does not keep the interpreter alive."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from workhorse import JobState, Workhorse


def test_sigterm_exits_despite_a_job_that_never_returns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    script = Path(__file__).with_name("_stuck_worker.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out
    app = Workhorse(url)
    try:
        (record,) = app.list_jobs_sync()
        assert record.state is JobState.QUEUED, "released back to the queue"
        assert record.attempt == 0
        assert app.workers_sync() == []
    finally:
        app.close()
