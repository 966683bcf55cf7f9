"""From a ``postgresql://`` URL and options to what the backend connects with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from workhorse.backends.postgres.statements import DEFAULT_SCHEMA
from workhorse.errors import ConfigurationError

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}
APPLICATION_NAME = "workhorse"
"""Connections name themselves so operators can find them in ``pg_stat_activity``."""


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """How to reach the database, and where the workhorse tables live."""

    conninfo: str
    """libpq connection string (without workhorse's own ``schema`` parameter)."""
    schema: str
    target: str
    """Where the database is, for error messages (never the password)."""
    min_size: int = 1
    max_size: int | None = None
    """The pool's size when set; None lets it grow to what its users reserve (a worker
    reserves what its services and job slots need), ``default_max_size`` at least."""
    timeout: float = 10.0
    """Seconds to wait for a pooled connection before the store counts as unavailable."""
    default_max_size: int = 10


_OPTIONS = {"schema", "min_size", "max_size", "timeout", "connect_timeout", "application_name"}
_POOL_OPTIONS = ("schema", "min_size", "max_size", "timeout")
"""Options that may also come as URL query parameters (libpq never sees them)."""


def parse_config(url: str, options: Mapping[str, Any]) -> PostgresConfig:
    """Read ``url`` and the backend ``options``: ``schema``, ``min_size``, ``max_size``,
    ``timeout``, ``connect_timeout`` (seconds) and ``application_name``. The first four
    may also be URL query parameters (``?schema=jobs&max_size=20``); ``options`` win."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            f"unknown PostgreSQL option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigurationError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    pool: dict[str, Any] = {name: _last(query, name) for name in _POOL_OPTIONS}
    pool.update({name: options[name] for name in _POOL_OPTIONS if options.get(name) is not None})
    libpq_url = urlunsplit(
        (
            "postgresql",
            parts.netloc,
            parts.path,
            # libpq decodes %XX but not "+": spaces must travel as %20.
            urlencode([(k, v) for k, v in query if k not in _POOL_OPTIONS], quote_via=quote),
            parts.fragment,
        )
    )
    try:
        params = conninfo_to_dict(libpq_url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"invalid PostgreSQL URL: {exc}") from None
    params["application_name"] = options.get(
        "application_name", params.get("application_name", APPLICATION_NAME)
    )
    params["connect_timeout"] = options.get("connect_timeout", params.get("connect_timeout", 5))
    # Records promise UTC datetimes whatever the server's default time zone. JIT
    # compilation costs far more than it saves on short queue statements (seconds on a
    # bulk insert whose row estimates are large).
    params["options"] = f"{params.get('options', '')} -c TimeZone=UTC -c jit=off".strip()
    try:
        return PostgresConfig(
            conninfo=make_conninfo("", **params),
            schema=str(pool["schema"] or DEFAULT_SCHEMA),
            target=_describe(params),
            min_size=1 if pool["min_size"] is None else int(pool["min_size"]),
            max_size=None if pool["max_size"] is None else int(pool["max_size"]),
            timeout=10.0 if pool["timeout"] is None else float(pool["timeout"]),
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid PostgreSQL pool option: {exc}") from None


def _last(pairs: list[tuple[str, str]], key: str) -> str | None:
    values = [value for name, value in pairs if name == key]
    return values[-1] if values else None


def _describe(params: Mapping[str, Any]) -> str:
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or 5432
    return f"{host}:{port}/{params.get('dbname', '')}"
