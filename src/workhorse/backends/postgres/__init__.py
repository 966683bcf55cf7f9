"""The PostgreSQL store (``postgresql://...``): needs ``pip install 'workhorse[postgres]'``."""

from __future__ import annotations

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - the dev environment has the extra
    from workhorse.errors import MissingDependencyError

    raise MissingDependencyError("the PostgreSQL store", "postgres") from exc

from workhorse.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
