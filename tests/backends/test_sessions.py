"""Conformance: ended dashboard sessions (a logout is remembered until the session would
have expired anyway)."""

from __future__ import annotations

from datetime import datetime

from workhorse.backends.base import Backend

from ._support import at


async def test_a_revoked_session_stays_revoked(backend: Backend, now: datetime) -> None:
    assert not await backend.session_revoked(session_id="s1")
    await backend.session_revoke(session_id="s1", expires_at=at(now, 3600), now=now)
    assert await backend.session_revoked(session_id="s1")
    assert not await backend.session_revoked(session_id="s2")
    # Ending it again (a second logout with the same cookie) changes nothing.
    await backend.session_revoke(session_id="s1", expires_at=at(now, 7200), now=now)
    assert await backend.session_revoked(session_id="s1")


async def test_records_of_expired_sessions_are_pruned(backend: Backend, now: datetime) -> None:
    await backend.session_revoke(session_id="short", expires_at=at(now, 10), now=now)
    await backend.session_revoke(session_id="long", expires_at=at(now, 3600), now=now)
    # A later logout sweeps the records of sessions that expired meanwhile.
    await backend.session_revoke(session_id="later", expires_at=at(now, 3600), now=at(now, 60))
    assert not await backend.session_revoked(session_id="short")
    assert await backend.session_revoked(session_id="long")
    assert await backend.session_revoked(session_id="later")
