"""Stores for jobs, chosen by URL scheme: ``memory://``, ``sqlite:///path``,
``postgresql://...``. Optional backends import lazily."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workhorse.backends.base import Backend
from workhorse.errors import ConfigurationError

DEFAULT_URL = "sqlite:///workhorse.db"
"""Used when no URL is given: a SQLite file in the working directory."""


def open_backend(url: str, **options: Any) -> Backend:
    """Build the backend for ``url`` (not yet connected)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"not a workhorse URL: {url!r} (expected memory://, sqlite:///path or postgresql://...)"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        from workhorse.backends.memory import MemoryBackend

        return MemoryBackend(url, **options)
    if scheme == "sqlite":
        from workhorse.backends.sqlite import SQLiteBackend

        return SQLiteBackend(url, **options)
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        from workhorse.backends.postgres import PostgresBackend

        return PostgresBackend(url, **options)
    raise ConfigurationError(
        f"unsupported store {scheme!r} in {url!r}: use memory://, sqlite:/// or postgresql://"
    )


def redact_url(url: str) -> str:
    """``url`` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


__all__ = ["DEFAULT_URL", "Backend", "open_backend", "redact_url"]
