"""A fresh, empty store for each example of a state machine: ``memory://``, a new SQLite
file, or a new PostgreSQL schema (dropped afterwards)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import PG_URL, backend_url
from workhorse.backends import Backend, open_backend


@dataclass
class FreshStores:
    """Opens a new store of ``kind`` per call and removes it when closed."""

    kind: str
    folder: Path
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    async def open(self) -> OpenStore:
        """A connected, migrated store nobody else uses."""
        schema = f"wh_prop_{uuid.uuid4().hex[:12]}" if self.kind == "postgres" else None
        folder = self.folder / f"example-{next(self._counter)}"
        folder.mkdir()
        store = open_backend(backend_url(self.kind, folder, schema))
        await store.connect()
        await store.migrate()
        return OpenStore(store, schema, folder)


@dataclass
class OpenStore:
    """One example's store and what to clean up after it."""

    backend: Backend
    schema: str | None
    folder: Path

    async def close(self) -> None:
        """Close the store and drop what it stored."""
        await self.backend.close()
        if self.schema is not None:
            import psycopg

            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()
