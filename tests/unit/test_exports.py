from __future__ import annotations

import workhorse


def test_public_names_are_sorted_documented_and_importable() -> None:
    names = [n for n in workhorse.__all__ if n != "__version__"]
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    for name in names:
        obj = getattr(workhorse, name)
        assert obj.__doc__, f"workhorse.{name} has no docstring"
