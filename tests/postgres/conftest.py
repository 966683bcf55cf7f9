"""PostgreSQL-only fixtures: a backend whose connections carry a name of their own (so a
test can terminate exactly them), an admin connection, and a TCP proxy that can take the
database away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config

from ._proxy import Proxy


@pytest.fixture
def backend_kind() -> str:
    """Every test here runs on PostgreSQL (``store_url`` then names a fresh schema)."""
    return "postgres"


@pytest.fixture
def app_name() -> str:
    """The application_name of this test's backend connections."""
    return f"wh-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url(store_url: str, app_name: str) -> str:
    """The test's store URL, its connections named ``app_name``."""
    return f"{store_url}&application_name={app_name}"


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresBackend]:
    """A connected, migrated PostgreSQL backend."""
    store = PostgresBackend(pg_url)
    await store.connect()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def admin(store_url: str) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """An autocommit connection outside the backend, to watch and disturb it."""
    conninfo = parse_config(store_url, {"application_name": "wh-test-admin"}).conninfo
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def proxy(store_url: str) -> AsyncIterator[Proxy]:
    """A TCP proxy in front of the test server."""
    params = psycopg.conninfo.conninfo_to_dict(parse_config(store_url, {}).conninfo)
    server = Proxy(str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432)))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def proxy_url(pg_url: str, proxy: Proxy) -> str:
    """``pg_url`` through the proxy."""
    head, _, rest = pg_url.partition("@")
    _, _, path = rest.partition("/")
    return f"{head}@127.0.0.1:{proxy.port}/{path}"


async def terminate(admin: psycopg.AsyncConnection[TupleRow], app_name: str) -> int:
    """Terminate every server connection named ``app_name``, waiting until each is gone;
    how many there were."""
    cur = await admin.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
        " FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
        [app_name],
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
