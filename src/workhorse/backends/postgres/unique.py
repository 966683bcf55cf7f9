"""What a PostgreSQL store does with a job whose unique key is held: return the holder,
replace a waiting holder's arguments, or raise (the batch's transaction then rolls
back, so nothing of it is stored)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from workhorse.backends._workflows import LIVE_MASK, unique_mask
from workhorse.backends.base import InsertedJob, NewJob
from workhorse.backends.postgres.sessions import Session
from workhorse.backends.postgres.statements import Statements
from workhorse.errors import DuplicateJobError
from workhorse.jobs import JobState

_REPLACEABLE = frozenset({JobState.SCHEDULED, JobState.QUEUED})


def unique_masks(jobs: Sequence[NewJob]) -> list[int]:
    """The ``unique_states`` bits of each job (``ValueError`` for states that leave out
    a live one). Jobs without a key keep the default."""
    return [LIVE_MASK if job.unique_key is None else unique_mask(job.unique_states) for job in jobs]


async def settle_duplicate(
    session: Session,
    sql: Statements,
    job: NewJob,
    holder: InsertedJob,
    now: datetime | None,
) -> InsertedJob:
    """The answer for ``job``, whose key ``holder`` holds, after doing what the job's
    ``on_duplicate`` says."""
    if job.on_duplicate == "raise":
        raise DuplicateJobError(str(job.unique_key), holder.id, holder.state.value)
    if job.on_duplicate != "replace" or holder.state not in _REPLACEABLE:
        return InsertedJob(holder.id, holder.state, False)
    run_at = job.run_at
    if run_at is not None and run_at.tzinfo is None:  # naive: UTC, as the session reads it
        run_at = run_at.replace(tzinfo=UTC)
    rows = await session.fetch(
        sql["replace_waiting_job"],
        {
            "id": holder.id,
            "args": job.args,
            "kwargs": job.kwargs,
            "priority": int(job.priority),
            "run_at": run_at,
            "delay": float(job.delay),
            "now": now,
        },
    )
    state = JobState(rows[0]["state"]) if rows else holder.state
    return InsertedJob(holder.id, state, False)
