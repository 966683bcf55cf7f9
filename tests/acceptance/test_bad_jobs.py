"""A worker process meets jobs it cannot run: each fails with a clear error, nothing is
retried in vain, and the worker carries on with the good ones."""

from __future__ import annotations

import pytest

from cli._support import eventually
from workhorse.backends.base import NewJob
from workhorse.errors import CorruptJobError
from workhorse.jobs import FINAL_STATES, JobState

from .conftest import FAST, Site


async def test_bad_jobs_fail_clearly_and_the_worker_carries_on(site: Site) -> None:
    corrupted, unknown, raising, *good = await site.insert(
        [
            # The schema refuses text that is not JSON; a row of the wrong shape gets in.
            NewJob(task="acceptance.effect", args='{"not": "a list"}'),
            NewJob(task="acceptance.gone"),
            NewJob(task="acceptance.boom", args='["no such customer"]', max_attempts=1),
            *(NewJob(task="acceptance.effect", args=f"[{n}, 5]") for n in range(5)),
        ]
    )
    worker = site.start_worker("--concurrency", "2", *FAST)

    async def all_final() -> bool:
        return await site.count(*FINAL_STATES) == 8

    await eventually(all_final, timeout=30, what=f"8 final jobs\n{site.logs()}")

    for job_id, needle in (
        (unknown, "acceptance.gone"),
        (raising, "no such customer"),
    ):
        record = await site.store.job_get(job_id=job_id)
        assert record is not None
        assert record.state is JobState.FAILED
        assert record.error is not None
        assert needle in f"{record.error.type}: {record.error.message}", record.error
        assert record.attempt == 1, "an error retrying cannot fix is not retried"
    # The corrupted row failed too, at once: reading it back names the bad column.
    assert await site.count(JobState.FAILED) == 3
    with pytest.raises(CorruptJobError, match=rf"job {corrupted} is corrupt: column 'args'"):
        await site.store.job_get(job_id=corrupted)
    assert "column 'args'" in site.cli("jobs", "show", str(corrupted)).error_line()
    failing = [line for line in site.logs().splitlines() if "without retry" in line]
    assert len(failing) == 1, "failed once, not retried"
    assert f"job {corrupted} " in failing[0]
    assert set(site.effects()) == set(good)
    assert worker.proc.poll() is None, "the worker is still running"
    show = site.cli("jobs", "show", str(raising))
    assert "ValueError: no such customer" in show.stdout
    assert "Traceback" in show.stdout
