"""Looking for a store before connecting: a store that was never created is reported
absent (naming what is missing) and looking creates nothing; once migrated it is there.
``memory://`` lives in its instance, so it is always there."""

from __future__ import annotations

from workhorse.backends import Backend, open_backend


async def test_a_store_is_absent_until_it_is_created(store_url: str, backend_kind: str) -> None:
    fresh = open_backend(store_url)
    absence = await fresh.absent()
    if backend_kind == "memory":
        assert absence is None
    else:
        assert absence is not None
        assert absence.endswith("does not exist") or " does not exist in PostgreSQL at " in absence
        assert await fresh.absent() == absence, "looking created nothing"
    await fresh.connect()
    try:
        await fresh.migrate()
        assert await fresh.absent() is None
    finally:
        await fresh.close()


async def test_a_migrated_store_is_there(backend: Backend) -> None:
    assert await backend.absent() is None
