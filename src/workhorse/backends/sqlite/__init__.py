"""The SQLite store, the default: one file, nothing to install."""

from __future__ import annotations

from workhorse.backends.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
