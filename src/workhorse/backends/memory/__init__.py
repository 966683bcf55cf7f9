"""``memory://``: a store in plain dictionaries, for tests and eager mode.

Every instance is its own store and lives as long as the object. One lock guards all
state so the backend may be shared by event loops in several threads; no method awaits
while holding it, so each call is atomic. Values are copied in and out (JSON text in
storage, decoded on the way out) so callers can never reach stored state.
"""

from __future__ import annotations

from workhorse.backends.memory.backend import MemoryBackend

__all__ = ["MemoryBackend"]
