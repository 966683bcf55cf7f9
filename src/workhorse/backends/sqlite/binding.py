"""Parameters that the sqlite3 module binds without its adaptation lookups.

sqlite3 binds an exact ``int``, ``float``, ``str`` or ``bytes`` at once. Any other value
first goes through its adaptation protocol, ``None`` included (Python 3.11): a registry
lookup keyed by a tuple it builds, then ``__adapt__`` and ``__conform__`` lookups that
fail, each failure formatting an AttributeError message that is thrown away. An
enqueue's row binds four NULLs; that cost 8,000 of its 247,000 instructions, and 6% of
a bulk insert's. So the store binds its states as plain text (``JobState.value``), and
registers an adapter for ``None`` that returns it unchanged: the registry finds it at
the first lookup, and sqlite3 binds NULL, as it does after the failed lookups.
"""

from __future__ import annotations

import sqlite3

_NONE_KEY = (type(None), sqlite3.PrepareProtocol)


def _unchanged(value: None) -> None:
    return value


def bind_none_directly() -> None:
    """Register the adapter for ``None`` (once per process). An adapter that someone
    else registered for ``None`` stays in place: the registry is the whole process's."""
    if _NONE_KEY not in sqlite3.adapters:
        sqlite3.register_adapter(type(None), _unchanged)
