"""Ended dashboard sessions in the PostgreSQL backend."""

from __future__ import annotations

from datetime import datetime

from workhorse.backends.postgres.pool import Pool
from workhorse.backends.postgres.statements import Statements


async def revoke(
    pool: Pool, sql: Statements, *, session_id: str, expires_at: datetime, now: datetime | None
) -> None:
    """Remember that a session ended; forget those expired by ``now``."""
    params = {"session_id": session_id, "expires_at": expires_at, "now": now}
    await pool.fetch(sql["session_revoke"], params, idempotent=True)  # an upsert


async def revoked(pool: Pool, sql: Statements, *, session_id: str) -> bool:
    """True if the session ended."""
    return bool(
        await pool.fetch(sql["session_revoked"], {"session_id": session_id}, idempotent=True)
    )
