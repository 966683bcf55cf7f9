"""Limited claims in a memory store, under the job table's lock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import cast

from workhorse.backends.base import ClaimedJob, ClaimLimits
from workhorse.backends.memory.rows import StoredJob, utc
from workhorse.backends.memory.table import JobTable
from workhorse.jobs import JobState
from workhorse.limits.admission import (
    KEY,
    QUEUE,
    TASK,
    Admission,
    Candidate,
    Exclusions,
    run_rounds,
)
from workhorse.limits.config import LIMIT_KEY
from workhorse.serialization import loads


class MemoryLimits:
    """The limited claim of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._rate_windows: list[tuple[str, datetime]] = []
        """(bucket, expires_at) of recent starts; guarded by the job table's lock."""
        super().__init__()

    async def job_claim_limited(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        limits: ClaimLimits,
        now: datetime | None = None,
    ) -> list[ClaimedJob]:
        """Claim the most urgent due jobs whose buckets have room."""
        table = cast(JobTable, self)
        moment = utc(now)
        wanted = None if queues is None else frozenset(queues)
        claimed: list[ClaimedJob] = []
        with table._lock:
            self._rate_windows = [start for start in self._rate_windows if start[1] > moment]
            due = sorted(
                (
                    job
                    for job in table._jobs.values()
                    if job.due(moment) and (wanted is None or job.queue in wanted)
                ),
                key=lambda job: (-job.priority, job.run_at, job.id),
            )
            candidates = [_candidate(job) for job in due]
            admission = Admission(limits, limit)
            admission.count(
                _running(table._jobs.values(), limits),
                Counter(bucket for bucket, _ in self._rate_windows),
            )

            def fetch(excluded: Exclusions, count: int) -> list[Candidate]:
                fits = (
                    job
                    for job in candidates
                    if table._jobs[job.id].waiting and _has_room(job, excluded)
                )
                return [job for _, job in zip(range(count), fits, strict=False)]

            def take(chosen: Sequence[Candidate]) -> None:
                for job in chosen:
                    stored = table._jobs[job.id]
                    claimed.append(table._claim(stored, worker_id, lease_seconds, moment))
                self._rate_windows.extend(
                    (start.bucket, moment + timedelta(seconds=start.period))
                    for start in admission.starts_of(chosen)
                )

            run_rounds(admission, fetch, take)
        return claimed


def _candidate(job: StoredJob) -> Candidate:
    limit_key = None if job.meta == "{}" else loads(job.meta).get(LIMIT_KEY)
    return Candidate(job.id, job.queue, job.task, limit_key)


def _running(jobs: Iterable[StoredJob], limits: ClaimLimits) -> Counter[str]:
    counts: Counter[str] = Counter()
    for stored in jobs:
        if stored.state is not JobState.RUNNING:
            continue
        job = _candidate(stored)
        if job.queue in limits.queues:
            counts[QUEUE + job.queue] += 1
        if job.task in limits.tasks:
            counts[TASK + job.task] += 1
        if job.limit_key is not None:
            counts[KEY + job.limit_key] += 1
    return counts


def _has_room(job: Candidate, excluded: Exclusions) -> bool:
    return (
        job.queue not in excluded.queues
        and job.task not in excluded.tasks
        and (job.limit_key is None or job.limit_key not in excluded.keys)
    )
