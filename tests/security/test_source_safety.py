"""No pickle, eval, exec, unsafe YAML or shell anywhere: a job store is a trust boundary
(whoever can write a row must not get code execution), so nothing in workhorse may turn
stored or received bytes into code, and neither may the tests, benchmarks and examples
that people copy from. ``make lint`` runs bandit over the same trees as well; this scan
keeps the rule in the test suite, with a self-test that it catches each pattern. No file
needs an exception: tests start processes from argument lists, never through a shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TREES = ("src", "tests", "benchmarks", "examples")

UNSAFE_MODULES = frozenset(
    {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "jsonpickle", "marshal", "shelve"}
)
UNSAFE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
UNSAFE_YAML = frozenset({"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load"})
SHELL_CALLS = frozenset({"system", "popen"})


def problems(source: str) -> list[str]:
    """What ``source`` does that workhorse never may, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [
                f"{line}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in UNSAFE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            found += _call_problems(node, line)
    return found


def _call_problems(node: ast.Call, line: int) -> list[str]:
    func = node.func
    if isinstance(func, ast.Name) and func.id in UNSAFE_BUILTINS:
        return [f"{line}: {func.id}()"]
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner, name = func.value.id, func.attr
        if owner == "yaml" and name in UNSAFE_YAML:
            return [f"{line}: yaml.{name}() (use yaml.safe_load)"]
        if owner == "os" and name in SHELL_CALLS:
            return [f"{line}: os.{name}()"]
    for keyword in node.keywords:
        if keyword.arg == "shell" and not (
            isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        ):
            return [f"{line}: shell=True"]
    return []


@pytest.mark.parametrize("tree", TREES)
def test_no_pickle_eval_exec_unsafe_yaml_or_shell(tree: str) -> None:
    # Hidden folders are other projects' code (the peers benchmark's virtualenvs).
    files = sorted(
        path
        for path in (REPO / tree).rglob("*.py")
        if not any(part.startswith(".") for part in path.relative_to(REPO).parts)
    )
    assert files, f"no Python found under {tree}"
    found = {
        str(path.relative_to(REPO)): issues
        for path in files
        if (issues := problems(path.read_text(encoding="utf-8")))
    }
    assert found == {}


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import cloudpickle as cp",
        "from marshal import loads",
        "eval(text)",
        "exec(code)",
        "compile(src, 'x', 'exec')",
        "yaml.load(text)",
        "yaml.unsafe_load(text)",
        "os.system('ls')",
        "subprocess.run(cmd, shell=True)",
    ],
)
def test_the_scan_catches(snippet: str) -> None:
    assert problems(snippet), f"the scan missed {snippet!r}"


def test_the_scan_allows_the_safe_forms() -> None:
    assert problems("import json\njson.loads(s)\nyaml.safe_load(s)\nrun(cmd, shell=False)") == []
