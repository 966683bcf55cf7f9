"""Stores for jobs, chosen by URL scheme: ``memory://``, ``sqlite:///path``,
``postgresql://...``. Optional backends import lazily."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from workhorse.backends.base import Backend
from workhorse.errors import ConfigurationError

DEFAULT_URL = "sqlite:///workhorse.db"
"""Used when no URL is given: a SQLite file in the working directory."""


def open_backend(url: str, **options: Any) -> Backend:
    """Build the backend for ``url`` (not yet connected)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"not a workhorse URL: {redact_url(url)!r} "
            "(expected memory://, sqlite:///path or postgresql://...)"
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
        f"unsupported store {scheme!r} in {redact_url(url)!r}: "
        "use memory://, sqlite:/// or postgresql://"
    )


_BARE_USERINFO = re.compile(r"^([^:/@]*:)[^/@]*@")
_SECRET_PARAMS = frozenset({"password", "sslpassword"})
"""Query parameters that libpq reads as passwords (``postgresql://u@h/db?password=...``)."""


def redact_url(url: str) -> str:
    """``url`` without its password (in the user info or the query), fit for logs and
    error messages."""
    parts = urlsplit(url)
    redacted = url
    if parts.password is not None:
        # The user info comes first in a URL: the first match is the password.
        redacted = redacted.replace(f":{parts.password}@", ":***@", 1)
    elif not parts.netloc:
        # Not quite a URL ("user:password@host/db", the "//" forgotten): still hide it.
        redacted = _BARE_USERINFO.sub(r"\1***@", redacted, count=1)
    if parts.query:
        query = "&".join(_redact_param(pair) for pair in parts.query.split("&"))
        redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted


def _redact_param(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    return f"{name}=***" if sep and unquote(name).lower() in _SECRET_PARAMS else pair


__all__ = ["DEFAULT_URL", "Backend", "open_backend", "redact_url"]
