"""The SQLite backend's named queries, and the few composed from a template and ``where_*``
fragments (a claim's queue shape, a listing's filters)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from workhorse.backends._sql import load_queries
from workhorse.backends.base import JobFilter
from workhorse.backends.sqlite.rows import to_epoch
from workhorse.jobs import JobState
from workhorse.serialization import dumps

QUERIES: dict[str, str] = load_queries(__package__ or "workhorse.backends.sqlite")
"""Every ``-- name:`` block of queries.sql."""

_SLOT = "{filter}"
_QUEUE_PARAM = re.compile(r":queue\b")


def fill(template: str, text: str) -> str:
    """Query ``template`` with ``text`` (less its comment lines) in its ``{filter}`` slot."""
    sql = QUERIES[template]
    if _SLOT not in sql:
        raise KeyError(f"query {template!r} has no {_SLOT} slot")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return sql.replace(_SLOT, f"\n{code}\n")


@lru_cache(maxsize=256)
def compose(template: str, fragments: tuple[str, ...]) -> str:
    """``template`` with its ``{filter}`` slot filled by the ``where_<name>`` fragments
    joined by AND (``TRUE`` when there are none). Each fragment sits on its own lines
    in parentheses, so a comment inside one cannot swallow the next."""
    names = fragments or ("all",)
    return fill(template, "\n AND ".join(f"(\n{QUERIES['where_' + name]}\n)" for name in names))


def queue_filter(queues: Sequence[str] | None) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The fragment that restricts to ``queues`` (none for "every queue") and its
    parameters."""
    if queues is None:
        return (), {}
    if len(queues) == 1:
        return ("queue",), {"queue": queues[0]}
    return ("queues",), {"queues": dumps(list(queues))}


_MAX_QUEUE_ARMS = 32


def due_query(
    queues: Sequence[str] | None, job_ids: Sequence[int] | None
) -> tuple[str, dict[str, Any]]:
    """The query of the ids a claim takes, in claim order (``:now`` and ``:limit`` still
    to bind), and the parameters of its shape.

    Queued jobs of every queue, or of one queue, are one walk along a claim index that
    stops after ``:limit`` rows; several queues take the first ``:limit`` of each queue
    that way, so only those few rows are ever sorted.
    """
    if job_ids is not None:
        fragments, params = queue_filter(queues)
        params["job_ids"] = dumps(list(job_ids))
        return compose("job_due_ids", fragments), params
    if queues is not None and 1 < len(queues) <= _MAX_QUEUE_ARMS:
        params = {f"queue_{index}": queue for index, queue in enumerate(queues)}
        params["queues"] = dumps(list(queues))
        return _due_in_each_queue(len(queues)), params
    fragments, params = queue_filter(queues)
    return _due(fragments), params


@lru_cache(maxsize=8)
def _due(fragments: tuple[str, ...]) -> str:
    arms = (compose("job_due_queued", fragments), compose("job_due_scheduled", fragments))
    return fill("job_due", "\nUNION ALL\n".join(arms))


@lru_cache(maxsize=_MAX_QUEUE_ARMS)
def _due_in_each_queue(count: int) -> str:
    one_queue = compose("job_due_queued", ("queue",))
    arms = [_QUEUE_PARAM.sub(f":queue_{index}", one_queue) for index in range(count)]
    arms.append(compose("job_due_scheduled", ("queues",)))
    return fill("job_due", "\nUNION ALL\n".join(arms))


INSERT_CHUNK = 50
"""Rows per multi-row INSERT (15 parameters each, far below SQLite's limit)."""


@lru_cache(maxsize=4)
def insert_rows_sql(count: int) -> str:
    """job_insert_next with ``count`` rows of values."""
    head, values, row = QUERIES["job_insert_next"].rpartition("VALUES")
    if not values:
        raise KeyError("job_insert_next has no VALUES list")
    return f"{head}VALUES {', '.join([row.strip()] * count)}"


@lru_cache(maxsize=64)
def claim_sql(due: str) -> str:
    """The claim UPDATE of the jobs the ``due`` query picks."""
    return fill("job_claim", due)


def job_filter(
    template: str, flt: JobFilter, *, before_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """``template`` restricted to the jobs ``flt`` matches (and ids below ``before_id``),
    and its parameters."""
    names: list[str] = []
    params: dict[str, Any] = {}
    if before_id is not None:
        names.append("before_id")
        params["before_id"] = before_id
    if flt.tenant is not None:
        names.append("tenant")
        params["tenant"] = flt.tenant
    if flt.queue is not None:
        names.append("queue")
        params["queue"] = flt.queue
    if flt.states is not None:
        names.append("states")
        params["states"] = dumps([JobState(state).value for state in flt.states])
    if flt.task is not None:
        names.append("task")
        params["task"] = flt.task
    if flt.label is not None:
        names.append("label")
        params["label_key"], params["label_value"] = flt.label
    if flt.created_after is not None:
        names.append("created_after")
        params["created_after"] = to_epoch(flt.created_after)
    if flt.created_before is not None:
        names.append("created_before")
        params["created_before"] = to_epoch(flt.created_before)
    if flt.parent_id is not None:
        names.append("parent")
        params["parent_id"] = flt.parent_id
    return compose(template, tuple(names)), params
