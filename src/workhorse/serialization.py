"""JSON in and out of the store (orjson). No pickle: other types need an explicit
conversion by the caller.

Stored values must fit every store: PostgreSQL refuses the NUL character in ``jsonb``
(``\\u0000``) and in text columns, so JSON holding it is refused here, on every backend
alike, and error text is made storable (:func:`storable_text`) before it is written.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from workhorse.errors import SerializationError

# Refuse what would silently change type on the way through (datetime -> str,
# dataclass -> dict): a task must receive exactly what was enqueued.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

_NUL_ESCAPE = b"\\u0000"
# An escape is one backslash after an even run of them: "\\\\u0000" is the text "\u0000".
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

NUL_REPLACEMENT = "\ufffd"
"""What a NUL character in stored text (error messages, tracebacks) becomes."""


def dumps(value: Any, *, what: str = "value") -> str:
    """Serialize ``value`` to JSON text that every store can hold, or raise
    :class:`SerializationError` naming ``what`` (e.g. "arguments of task 'send_email'"):
    for a value that is not JSON, and for one holding a NUL character."""
    try:
        raw = orjson.dumps(value, option=_DUMP_OPTIONS)
    except TypeError as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from None
    if _NUL_ESCAPE in raw and _ESCAPED_NUL.search(raw):  # a cheap test first: rarely true
        raise SerializationError(
            f"{what} cannot be stored: a string holds a NUL character (\\x00), which "
            "PostgreSQL cannot store; encode binary data (e.g. base64) first"
        )
    return raw.decode()


def render(value: Any) -> str:
    """JSON text of a value read back from the store, for display (never stored again,
    so not checked like :func:`dumps`)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON text (raises ``ValueError`` on malformed input)."""
    return orjson.loads(text)


def storable_text(text: str) -> str:
    """``text`` with every NUL character replaced (U+FFFD), so that any store takes it."""
    return text.replace("\x00", NUL_REPLACEMENT) if "\x00" in text else text
