"""Writes that can find out what they did when their reply was lost.

A connection may die after the server committed a statement but before its reply came
back. Repeating a claim then would take more jobs and strand the first ones (running,
owned by nobody, their attempt counted) until their lease expires; repeating an outcome
would find the lease ended and report it lost. Instead each of these writes leaves a
mark to recognise its own work by:

- a claim chooses its token before it runs; every lease it takes starts with it, so the
  claim's jobs are found again (``claimed_jobs``) and only a claim that never committed
  runs again;
- an outcome or a release leaves its lease token on the job, so a repeat reports the
  leases that already ended (``ended_leases``) as done rather than lost.

:meth:`~workhorse.backends.postgres.pool.Pool.run` runs these recoveries only once the
server has finished with the lost session, so what it did is settled.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.rows import DictRow

from workhorse.backends.postgres.pool import Connection, Work
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.backends.postgres.statements import Statements


def new_claim_token() -> str:
    """A token no other claim has (the prefix of the lease tokens a claim hands out)."""
    return secrets.token_hex(16)


def statement(query: str, params: Mapping[str, Any]) -> Work[list[DictRow]]:
    """Work that runs one statement and returns its rows."""

    async def run(conn: Connection) -> list[DictRow]:
        return await AsyncConnSession(conn).fetch(query, params)

    return run


def claim_recovery(
    sql: Statements, *, worker_id: str, claim_token: str, claim: Work[list[DictRow]]
) -> Work[list[DictRow]]:
    """The jobs that the claim with ``claim_token`` took, when it committed; otherwise
    the claim itself, run again."""

    async def recover(conn: Connection) -> list[DictRow]:
        found = await AsyncConnSession(conn).fetch(
            sql["claimed_jobs"], {"worker_id": worker_id, "claim": claim_token}
        )
        return found or await claim(conn)

    return recover


def lease_end_recovery(
    sql: Statements, ids: Sequence[int], tokens: Sequence[str], end: Work[list[DictRow]]
) -> Work[list[DictRow]]:
    """Run ``end`` (an outcome or release, which touches only leases still running)
    again, then answer as it would have: every lease of ``ids``/``tokens`` that has
    ended, as ``id``/``token`` rows."""

    async def recover(conn: Connection) -> list[DictRow]:
        await end(conn)
        return await AsyncConnSession(conn).fetch(
            sql["ended_leases"], {"ids": list(ids), "tokens": list(tokens)}
        )

    return recover
