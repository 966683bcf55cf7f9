"""Workers and leadership in the SQLite backend, run on the connection's thread."""

from __future__ import annotations

import sqlite3

from workhorse.backends.base import WorkerInfo, WorkerRecord
from workhorse.backends.sqlite.rows import worker_params, worker_record
from workhorse.backends.sqlite.statements import QUERIES


def elect(conn: sqlite3.Connection, worker_id: str, ttl: float, now: float) -> bool:
    """Take a vacant or expired leadership, or renew ours; True if we lead now."""
    rows = conn.execute(
        QUERIES["leader_elect"], {"worker_id": worker_id, "now": now, "expires_at": now + ttl}
    ).fetchall()
    return bool(rows) and rows[0][0] == worker_id


def resign(conn: sqlite3.Connection, worker_id: str) -> None:
    """Give up leadership if held."""
    conn.execute(QUERIES["leader_resign"], {"worker_id": worker_id})


def register(conn: sqlite3.Connection, worker: WorkerInfo, now: float) -> None:
    """Insert or replace the worker's row."""
    conn.execute(QUERIES["worker_register"], worker_params(worker, now))


def heartbeat(conn: sqlite3.Connection, worker_id: str, running: int, now: float) -> bool:
    """Record that the worker lives; True if it was asked to stop."""
    rows = conn.execute(
        QUERIES["worker_heartbeat"], {"worker_id": worker_id, "running": running, "now": now}
    ).fetchall()
    return bool(rows) and bool(rows[0][0])


def deregister(conn: sqlite3.Connection, worker_id: str) -> None:
    """Remove the worker's row."""
    conn.execute(QUERIES["worker_deregister"], {"worker_id": worker_id})


def list_workers(conn: sqlite3.Connection) -> list[WorkerRecord]:
    """Every registered worker, oldest first."""
    return [worker_record(row) for row in conn.execute(QUERIES["worker_list"]).fetchall()]


def request_stop(conn: sqlite3.Connection, worker_id: str | None) -> int:
    """Ask one worker (or all) to stop; how many were asked."""
    return conn.execute(QUERIES["worker_request_stop"], {"worker_id": worker_id}).rowcount


def prune(conn: sqlite3.Connection, cutoff: float) -> int:
    """Delete workers silent since before ``cutoff``."""
    return conn.execute(QUERIES["worker_prune"], {"cutoff": cutoff}).rowcount
