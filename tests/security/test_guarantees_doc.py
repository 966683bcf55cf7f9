"""docs/guarantees.md names the test behind every promise; this keeps those names true.
Every link must lead to a file that exists, and every ``::test_name`` must be a test
function of the file linked last before it (a bare ``::name`` reuses that file), so a
renamed or deleted test fails here instead of leaving a promise without proof."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUARANTEES = DOCS / "guarantees.md"
_REFERENCE = re.compile(r"\]\((?P<link>[^)\s]+)\)|`::(?P<test>[A-Za-z_]\w*)`")


def references(text: str, base: Path) -> list[tuple[Path, str | None]]:
    """``(file, test)`` for each test the text names, and ``(path, None)`` for each link,
    in order."""
    found: list[tuple[Path, str | None]] = []
    current: Path | None = None
    for match in _REFERENCE.finditer(text):
        if match["link"] is not None:
            if "://" in match["link"]:
                continue
            path = (base / match["link"].split("#")[0]).resolve()
            found.append((path, None))
            if path.suffix == ".py":
                current = path
        else:
            assert current is not None, f"::{match['test']} before any linked test file"
            found.append((current, match["test"]))
    return found


def defined_tests(path: Path) -> set[str]:
    """The names of the test functions (``test_*``, sync or async) defined in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_guarantees_name_exists() -> None:
    found = references(GUARANTEES.read_text(encoding="utf-8"), DOCS)
    named = [(path, test) for path, test in found if test is not None]
    assert len(named) > 30, "the guarantees name too few tests: is the parser broken?"
    missing_files = sorted({str(path) for path, _ in found if not path.exists()})
    assert missing_files == [], "links to missing files"
    missing = [
        f"{path.relative_to(DOCS.parent)}::{test}"
        for path, test in named
        if test not in defined_tests(path)
    ]
    assert missing == [], "tests the guarantees name but nobody defines"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[a](../tests/a.py)`::test_one`, `::test_two`", [("tests/a.py", None),
         ("tests/a.py", "test_one"), ("tests/a.py", "test_two")]),
        ("[d](../tests/web/) and [b](../tests/b.py) (`::test_x`)", [("tests/web", None),
         ("tests/b.py", None), ("tests/b.py", "test_x")]),
        ("[site](https://example.org/a.py) `::test_y` after [c](../c.py)", None),
    ],
)  # fmt: skip
def test_the_parser_reads_links_and_test_names(
    text: str, expected: list[tuple[str, str | None]] | None
) -> None:
    root = DOCS.parent
    if expected is None:  # a test name before any linked file
        with pytest.raises(AssertionError):
            references(text, DOCS)
        return
    assert [(str(p.relative_to(root)), t) for p, t in references(text, DOCS)] == expected
