"""Inserting a job with a unique key into a SQLite store, and what a duplicate does:
return the holder, replace a waiting holder's arguments, or raise."""

from __future__ import annotations

import sqlite3

from workhorse.backends._workflows import DEFAULT_RULE, UniqueRule
from workhorse.backends.base import InsertedJob
from workhorse.backends.sqlite.rows import InsertParams
from workhorse.backends.sqlite.statements import QUERIES
from workhorse.errors import DuplicateJobError
from workhorse.jobs import JobState

# Positions in InsertParams.
_PRIORITY, _ARGS, _KWARGS, _RUN_AT, _UNIQUE_KEY, _CREATED_AT = 3, 4, 5, 6, 11, 14


def insert_unique(
    conn: sqlite3.Connection, params: InsertParams, state: JobState, rule: UniqueRule | None
) -> InsertedJob:
    """Insert one job with a unique key, or settle it against the job holding the key."""
    rule = rule or DEFAULT_RULE
    key = params[_UNIQUE_KEY]
    created = conn.execute(QUERIES["job_insert_unique"], (*params, rule.mask)).fetchall()
    if created:
        return InsertedJob(id=created[0][0], state=state, created=True)
    holder = conn.execute(QUERIES["job_unique_holder"], {"unique_key": key}).fetchone()
    if holder is None:  # pragma: no cover - the conflict can only be the unique key
        raise sqlite3.IntegrityError(f"insert of unique key {key!r} conflicted")
    holder_id, holder_state = holder[0], JobState(holder[1])
    if rule.on_duplicate == "raise":
        raise DuplicateJobError(str(key), holder_id, holder_state.value)
    if rule.on_duplicate == "replace":
        replaced = conn.execute(
            QUERIES["job_replace_waiting"],
            {
                "id": holder_id,
                "args": params[_ARGS],
                "kwargs": params[_KWARGS],
                "priority": params[_PRIORITY],
                "run_at": params[_RUN_AT],
                "now": params[_CREATED_AT],
            },
        ).fetchone()
        if replaced is not None:
            holder_state = JobState(replaced[0])
    return InsertedJob(id=holder_id, state=holder_state, created=False)
