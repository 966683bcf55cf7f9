"""Fixtures of the web tests: a real uvicorn server (in a thread) serving the API over a
real store, SQLite by default and PostgreSQL too where the API tests ask for it, and API
keys made the way ``workhorse keys create`` makes them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from workhorse import Workhorse
from workhorse.web import create_api_key, create_app

from ._server import ServerThread
from ._tasks import make_app

CHROMIUM = "/usr/bin/chromium"
SESSION_SECRET = "test-session-secret-of-some-length"


@pytest.fixture(params=("sqlite", pytest.param("postgres", marks=pytest.mark.postgres)))
def backend_kind(request: pytest.FixtureRequest) -> str:
    """The web tests run over a real SQLite file and a real PostgreSQL schema."""
    kind: str = request.param
    return kind


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store in the test's folder."""
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@dataclass
class Live:
    """A running server and the app behind it (usable from the test's own loop)."""

    url: str
    app: Workhorse
    tmp: Path
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def key(
        self, tenant: str | None = None, *, admin: bool = False, read_only: bool = False
    ) -> str:
        """A new API key's token."""
        issued = await create_api_key(self.app, tenant=tenant, admin=admin, read_only=read_only)
        return issued.token

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """An HTTP client for the server, sending ``token`` as a bearer key."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    async def enqueue(self, task: str, **options: Any) -> int:
        """Enqueue straight through the library (not the API); the job's id."""
        return (await self.app.enqueue(task, **options)).id


async def serve(url: str, tmp: Path, **options: Any) -> AsyncIterator[Live]:
    """Serve ``create_app(..., **options)`` over ``url`` for as long as it is iterated."""
    app = make_app(url)
    server = ServerThread(create_app(app, session_secret=SESSION_SECRET, **options)).start()
    live = Live(url=server.url, app=app, tmp=tmp)
    try:
        yield live
    finally:
        for client in live.clients:
            await client.aclose()
        server.stop()
        await app.aclose()


@pytest.fixture
async def live(store_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    """The API served over SQLite and over PostgreSQL, no worker."""
    async for served in serve(store_url, tmp_path):
        yield served


@pytest.fixture
async def live_sqlite(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    """The API served over SQLite, no worker."""
    async for served in serve(sqlite_url, tmp_path):
        yield served


@pytest.fixture
async def live_worker(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    """The API served over SQLite with an in-process worker (one job at a time)."""
    async for served in serve(sqlite_url, tmp_path, with_worker=True, concurrency=1):
        yield served


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium: skipped (with the reason) when absent, a failure under CI."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return CHROMIUM
