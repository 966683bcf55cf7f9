"""JSON in and out of the store (orjson). No pickle: other types need an explicit
conversion by the caller."""

from __future__ import annotations

from typing import Any

import orjson

from workhorse.errors import SerializationError

# Refuse what would silently change type on the way through (datetime -> str,
# dataclass -> dict): a task must receive exactly what was enqueued.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any, *, what: str = "value") -> str:
    """Serialize ``value`` to JSON text, or raise :class:`SerializationError` naming
    ``what`` (e.g. "arguments of task 'send_email'")."""
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS).decode()
    except TypeError as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from None


def loads(text: str | bytes) -> Any:
    """Parse JSON text (raises ``ValueError`` on malformed input)."""
    return orjson.loads(text)
