"""A PostgreSQL database per system: created before its run, dropped after."""

from __future__ import annotations

import os

SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
"""The local server; every database the harness creates there starts with ``peers_``."""


def dsn_for(database: str) -> str:
    """The connection string of ``database`` on the local server."""
    return f"{SERVER}/{database}"


def _admin_execute(sql: str) -> None:
    import psycopg  # only the main harness venv has it; arq's never calls this

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def create_database(dsn: str) -> None:
    """(Re)create the database ``dsn`` names, empty."""
    name = _name(dsn)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{name}"')


def drop_database(dsn: str) -> None:
    """Drop the database ``dsn`` names, closing its connections first."""
    _admin_execute(f'DROP DATABASE IF EXISTS "{_name(dsn)}" WITH (FORCE)')


def _name(dsn: str) -> str:
    name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    if not name.startswith("peers_"):
        raise ValueError(f"refusing to touch database {name!r}: not one of the harness's")
    return name
