"""The API keys of a memory store. They share no state with jobs, so they have a lock of
their own."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from workhorse.backends.base import ApiKeyRecord
from workhorse.backends.memory.rows import utc


class MemoryApiKeys:
    """The API key methods of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._api_keys_lock = threading.Lock()
        self._api_keys: dict[str, ApiKeyRecord] = {}
        super().__init__()

    async def api_key_insert(
        self,
        *,
        id: str,
        key_hash: str,
        name: str | None,
        tenant: str | None,
        admin: bool,
        read_only: bool,
        now: datetime | None = None,
    ) -> ApiKeyRecord:
        """Store a key; ``ValueError`` if its id or hash is taken."""
        record = ApiKeyRecord(
            id=id,
            key_hash=key_hash,
            name=name,
            tenant=tenant,
            admin=admin,
            read_only=read_only,
            created_at=utc(now),
        )
        with self._api_keys_lock:
            taken = id in self._api_keys or any(
                key.key_hash == key_hash for key in self._api_keys.values()
            )
            if taken:
                raise ValueError(f"API key {id!r} cannot be stored: its id or hash is taken")
            self._api_keys[id] = record
        return record

    async def api_key_get(self, *, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not."""
        with self._api_keys_lock:
            return next((k for k in self._api_keys.values() if k.key_hash == key_hash), None)

    async def api_key_list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys, oldest first (in insertion order among equal times)."""
        with self._api_keys_lock:
            keys = [k for k in self._api_keys.values() if include_revoked or k.revoked_at is None]
        return sorted(keys, key=lambda key: key.created_at)

    async def api_key_revoke(self, *, key_id: str, now: datetime | None = None) -> bool:
        """Mark a live key revoked."""
        with self._api_keys_lock:
            key = self._api_keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            self._api_keys[key_id] = replace(key, revoked_at=utc(now))
        return True
