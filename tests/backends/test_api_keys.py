"""Conformance: API keys (stored as hashes, found by hash, listed, revoked)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from workhorse.backends.base import ApiKeyRecord, Backend

from ._support import assert_time


async def add(
    backend: Backend,
    key_id: str,
    *,
    now: datetime,
    tenant: str | None = "acme",
    admin: bool = False,
    read_only: bool = False,
    name: str | None = None,
) -> ApiKeyRecord:
    return await backend.api_key_insert(
        id=key_id,
        key_hash=f"hash-{key_id}",
        name=name,
        tenant=tenant,
        admin=admin,
        read_only=read_only,
        now=now,
    )


async def test_insert_returns_the_stored_row(backend: Backend, now: datetime) -> None:
    record = await add(backend, "k1", now=now, read_only=True, name="ci")
    assert record == ApiKeyRecord(
        id="k1",
        key_hash="hash-k1",
        name="ci",
        tenant="acme",
        admin=False,
        read_only=True,
        created_at=record.created_at,
        revoked_at=None,
    )
    assert_time(record.created_at, now)


async def test_get_finds_a_key_by_hash_only(backend: Backend, now: datetime) -> None:
    await add(backend, "k1", now=now)
    admin = await add(backend, "k2", now=now, tenant=None, admin=True)
    found = await backend.api_key_get(key_hash="hash-k2")
    assert found == admin
    assert found is not None
    assert found.admin
    assert found.tenant is None
    assert await backend.api_key_get(key_hash="hash-k") is None
    assert await backend.api_key_get(key_hash="k1") is None


async def test_list_is_oldest_first_and_hides_revoked_keys(backend: Backend, now: datetime) -> None:
    for offset, key_id in enumerate(("b", "a", "c")):
        await add(backend, key_id, now=now + timedelta(seconds=offset))
    assert [k.id for k in await backend.api_key_list()] == ["b", "a", "c"]
    assert await backend.api_key_revoke(key_id="a", now=now + timedelta(seconds=5))
    assert [k.id for k in await backend.api_key_list()] == ["b", "c"]
    every = await backend.api_key_list(include_revoked=True)
    assert [k.id for k in every] == ["b", "a", "c"]
    assert_time(every[1].revoked_at, now + timedelta(seconds=5))


async def test_revoke_is_once_and_keeps_the_row(backend: Backend, now: datetime) -> None:
    await add(backend, "k1", now=now)
    assert await backend.api_key_revoke(key_id="k1", now=now)
    assert not await backend.api_key_revoke(key_id="k1", now=now)
    assert not await backend.api_key_revoke(key_id="missing")
    found = await backend.api_key_get(key_hash="hash-k1")
    assert found is not None
    assert found.revoked_at is not None


async def test_ids_and_hashes_are_unique(backend: Backend, now: datetime) -> None:
    await add(backend, "k1", now=now)
    with pytest.raises(ValueError, match="k1"):
        await add(backend, "k1", now=now)
    with pytest.raises(ValueError, match="k2"):
        await backend.api_key_insert(
            id="k2", key_hash="hash-k1", name=None, tenant="acme", admin=False,
            read_only=False, now=now,
        )  # fmt: skip
    assert [k.id for k in await backend.api_key_list()] == ["k1"]
