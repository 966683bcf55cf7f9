"""What a sqlite3 error means: another connection holds the lock (retry), the store is
unusable (``BackendUnavailableError``), or anything else (a bug or bad data)."""

from __future__ import annotations

import sqlite3

from workhorse.errors import BackendUnavailableError

_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
    }
)


def is_busy(exc: BaseException) -> bool:
    """True for "database is locked"/"busy": another connection holds the lock."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY
    message = str(exc)
    return "locked" in message or "busy" in message


def translate(exc: BaseException, path: str) -> BaseException:
    """``exc``, or a ``BackendUnavailableError`` caused by it when it means the store
    cannot be used (rather than a bad statement or bad data)."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    replacement: BackendUnavailableError | None = None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _UNAVAILABLE:
        replacement = BackendUnavailableError(f"SQLite store {path!r} is unavailable: {exc}")
    elif "no such table: workhorse_" in str(exc):
        replacement = BackendUnavailableError(
            f"SQLite store {path!r} has no workhorse schema: run `workhorse migrate` "
            "(or call migrate()) first"
        )
    if replacement is None:
        return exc
    replacement.__cause__ = exc
    return replacement
