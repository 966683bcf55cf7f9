"""Fixtures of the conformance suite: a reference time close to the store's clock, and a
second instance of the same store for cross-instance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from workhorse.backends import Backend, open_backend


@pytest.fixture
def now() -> datetime:
    """The test's reference time. Close to the real clock, because a few methods (lease
    renewal, worker heartbeats) take no ``now`` and use the store's own clock."""
    return datetime.now(UTC)


@pytest.fixture
async def twin(backend: Backend) -> AsyncIterator[Backend]:
    """A second connected instance of the same store (skipped where a store cannot be
    shared, i.e. ``memory://``)."""
    if not backend.capabilities.shared_across_processes:
        pytest.skip(f"{backend.url} cannot be shared between instances")
    other = open_backend(backend.url)
    await other.connect()
    try:
        yield other
    finally:
        await other.close()
