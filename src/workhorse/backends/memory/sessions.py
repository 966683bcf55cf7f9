"""The ended dashboard sessions of a memory store, under a lock of their own."""

from __future__ import annotations

import threading
from datetime import datetime

from workhorse.backends.memory.rows import utc


class MemorySessions:
    """The session methods of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._sessions_lock = threading.Lock()
        self._revoked_sessions: dict[str, datetime] = {}
        super().__init__()

    async def session_revoke(
        self, *, session_id: str, expires_at: datetime, now: datetime | None = None
    ) -> None:
        """Remember that a session ended; forget sessions expired by ``now``."""
        moment = utc(now)
        with self._sessions_lock:
            self._revoked_sessions = {
                sid: until for sid, until in self._revoked_sessions.items() if until >= moment
            }
            self._revoked_sessions.setdefault(session_id, utc(expires_at))

    async def session_revoked(self, *, session_id: str) -> bool:
        """True if the session ended."""
        with self._sessions_lock:
            return session_id in self._revoked_sessions
