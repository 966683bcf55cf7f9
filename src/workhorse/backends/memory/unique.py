"""What a memory store does with a job whose unique key is held: refuse the whole batch
(``on_duplicate="raise"``) before anything is stored, or replace a waiting holder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from workhorse.backends._workflows import unique_mask
from workhorse.backends.base import NewJob
from workhorse.backends.memory.rows import StoredJob, utc
from workhorse.errors import DuplicateJobError
from workhorse.jobs import JobState

_REPLACEABLE = frozenset({JobState.SCHEDULED, JobState.QUEUED})


def refuse_duplicates(
    jobs: Sequence[NewJob], holder_of: Callable[[str | None], StoredJob | None]
) -> None:
    """Check a batch before it is stored: ``ValueError`` for unique states without the
    live ones, ``DuplicateJobError`` for a job that must not be a duplicate and is one
    (of a stored job, or of an earlier job of the batch)."""
    taken: set[str] = set()
    for job in jobs:
        key = job.unique_key
        if key is None:
            continue
        unique_mask(job.unique_states)
        holder = holder_of(key)
        if job.on_duplicate == "raise":
            if holder is not None:
                raise DuplicateJobError(key, holder.id, holder.state.value)
            if key in taken:
                raise DuplicateJobError(key, None, None)
        if holder is None:
            taken.add(key)


def replace_waiting(holder: StoredJob, new: NewJob, now: datetime) -> None:
    """Give a scheduled or queued holder the new job's arguments, priority and run time
    (its id, attempts and everything else stay); a holder in any other state is left
    alone."""
    if holder.state not in _REPLACEABLE:
        return
    run_at = utc(new.run_at) if new.run_at is not None else now + timedelta(seconds=new.delay)
    holder.args = new.args
    holder.kwargs = new.kwargs
    holder.priority = new.priority
    holder.run_at = run_at
    holder.state = JobState.SCHEDULED if run_at > now else JobState.QUEUED
