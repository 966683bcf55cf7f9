"""What may be stored as JSON: anything orjson takes, except a NUL character, which
PostgreSQL cannot hold (refused the same on every store)."""

from __future__ import annotations

from typing import Any

import pytest

from workhorse.errors import SerializationError
from workhorse.serialization import NUL_REPLACEMENT, dumps, loads, storable_text


@pytest.mark.parametrize(
    "value",
    ["a\x00b", ["\x00"], {"key\x00": 1}, {"nested": [{"deep": "x\x00"}]}, "\\\x00"],
)
def test_a_nul_character_anywhere_is_refused(value: Any) -> None:
    with pytest.raises(SerializationError, match=r"arguments of task 't'.*NUL character"):
        dumps(value, what="arguments of task 't'")


@pytest.mark.parametrize("value", ["\\u0000", ["\\\\u0000"], {"\\u0000": "\\\\\\u0000x"}])
def test_text_that_only_looks_like_an_escaped_nul_is_stored(value: Any) -> None:
    assert loads(dumps(value)) == value


def test_storable_text_replaces_nul_characters() -> None:
    assert storable_text("boom\x00 and \x00") == f"boom{NUL_REPLACEMENT} and {NUL_REPLACEMENT}"
    text = "nothing to replace"
    assert storable_text(text) is text
