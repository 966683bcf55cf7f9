"""Rows of the PostgreSQL tables as workhorse's typed records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workhorse.backends.base import ClaimedJob, WorkerRecord
from workhorse.jobs import JobError, JobRecord, JobState


def job_record(row: Mapping[str, Any]) -> JobRecord:
    """A ``workhorse_jobs`` row (jsonb columns already decoded)."""
    error = None
    if row["error_type"] is not None:
        error = JobError(
            type=row["error_type"],
            message=row["error_message"] or "",
            traceback=row["error_traceback"],
        )
    return JobRecord(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        state=JobState(row["state"]),
        priority=row["priority"],
        args=row["args"],
        kwargs=row["kwargs"],
        run_at=row["run_at"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        created_at=row["created_at"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        result=row["result"],
        error=error,
        tenant=row["tenant"],
        labels=row["labels"],
        unique_key=row["unique_key"],
        timeout=row["timeout"],
        worker_id=row["worker_id"],
        cancel_requested=row["cancel_requested"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
        lease_expires_at=row["lease_expires_at"],
        parent_id=row["parent_id"],
        meta=row["meta"],
        workflow_id=row.get("workflow_id"),
    )


def claimed_job(row: Mapping[str, Any]) -> ClaimedJob:
    """A row returned by a claim (args and kwargs kept as JSON text)."""
    return ClaimedJob(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        args=row["args"],
        kwargs=row["kwargs"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        lease_token=row["lease_token"],
        priority=row["priority"],
        timeout=row["timeout"],
        tenant=row["tenant"],
        meta=row["meta"],
        previous_attempt_lost=row["previous_attempt_lost"],
    )


def worker_record(row: Mapping[str, Any]) -> WorkerRecord:
    """A ``workhorse_workers`` row."""
    queues = row["queues"]
    return WorkerRecord(
        id=row["id"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=None if queues is None else tuple(queues),
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        running=row["running"],
        stop_requested=row["stop_requested"],
        meta=row["meta"],
    )
