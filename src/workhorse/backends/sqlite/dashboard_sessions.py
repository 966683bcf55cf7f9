"""Ended dashboard sessions in the SQLite backend, run on the connection's thread."""

from __future__ import annotations

import sqlite3

from workhorse.backends.sqlite.statements import QUERIES


def revoke(conn: sqlite3.Connection, *, session_id: str, expires_at: float, now: float) -> None:
    """Remember that a session ended; forget those expired by ``now``."""
    conn.execute(QUERIES["session_prune"], {"now": now})
    conn.execute(QUERIES["session_revoke"], {"session_id": session_id, "expires_at": expires_at})


def revoked(conn: sqlite3.Connection, *, session_id: str) -> bool:
    """True if the session ended."""
    return (
        conn.execute(QUERIES["session_revoked"], {"session_id": session_id}).fetchone() is not None
    )
