"""Mistakes a user can make print one red line on stderr and exit 2, never a traceback
(unless ``--debug``); the help of every command works."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ._support import APP, cli_env, workhorse

APP_MISTAKES = [
    ("no_colon", "APP must look like module:attribute"),
    ("nosuchmodule_xyz:app", "cannot import 'nosuchmodule_xyz' from 'nosuchmodule_xyz:app'"),
    ("tests.acceptance.nosuch:app", "no module named 'tests.acceptance.nosuch'"),
    ("tests.acceptance.apps:nothing", "module 'tests.acceptance.apps' has no attribute 'nothing'"),
    ("tests.acceptance.apps:EFFECTS_ENV", "is 'str', not a Workhorse app"),
    (
        "tests.acceptance.broken_app:app",
        "importing 'tests.acceptance.broken_app' failed: RuntimeError: settings file",
    ),
]


@pytest.mark.parametrize(("spec", "message"), APP_MISTAKES)
def test_a_wrong_app_path_for_worker_start(tmp_path: Path, spec: str, message: str) -> None:
    result = workhorse("worker", "start", spec, cwd=tmp_path, env=cli_env(_url(tmp_path)))

    assert result.code == 2
    assert message in result.error_line()


@pytest.mark.parametrize(("spec", "message"), APP_MISTAKES[1:3])
def test_a_wrong_app_path_for_store_commands(tmp_path: Path, spec: str, message: str) -> None:
    env = cli_env(_url(tmp_path), WORKHORSE_APP=spec)

    result = workhorse("enqueue", "acceptance.add", cwd=tmp_path, env=env)

    assert result.code == 2
    assert message in result.error_line()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = workhorse(
        "--debug",
        "worker",
        "start",
        "tests.acceptance.broken_app:app",
        cwd=tmp_path,
        env=cli_env(_url(tmp_path)),
    )

    assert result.code == 2
    assert "Traceback" in result.stderr
    assert 'raise RuntimeError("settings file' in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: importing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lease", "5", "--heartbeat-interval", "10"], "must be shorter than the lease"),
        (["--concurrency", "0"], "concurrency must be at least 1"),
        (["--concurrency", "many"], "Invalid value for '--concurrency'"),
        (["--queues", " , "], "--queues names no queue"),
        (["--log-level", "loud"], "--log-level must be one of"),
        (["--max-attempts", "0"], "--max-attempts: Retry.max_attempts must be at least 1"),
        (["--backoff-factor", "0.5"], "--backoff-factor: Backoff.factor must be a finite number"),
        (["--backoff-jitter", "nan"], "--backoff-jitter: Backoff.jitter must be a finite number"),
    ],
)
def test_bad_worker_settings(tmp_path: Path, args: list[str], message: str) -> None:
    result = workhorse("worker", "start", APP, *args, cwd=tmp_path, env=cli_env(_url(tmp_path)))

    assert result.code == 2
    assert message in result.error_line()


def test_a_bad_worker_setting_from_the_environment(tmp_path: Path) -> None:
    env = cli_env(_url(tmp_path), WORKHORSE_LEASE="soon")

    result = workhorse("worker", "start", APP, cwd=tmp_path, env=env)

    assert result.code == 2
    assert "'--lease'" in result.error_line()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost", "unsupported store 'redis'"),
        ("jobs.db", "not a workhorse URL"),
        ("sqlite:///{tmp}/a_file/jobs.db", "cannot create the folder"),
    ],
)
def test_a_store_that_cannot_be_used(tmp_path: Path, url: str, message: str) -> None:
    (tmp_path / "a_file").write_text("not a folder")

    result = workhorse("migrate", "--url", url.format(tmp=tmp_path), cwd=tmp_path, env=cli_env())

    assert result.code == 2
    assert message in result.error_line()


@pytest.mark.parametrize(
    "command",
    [["jobs", "list"], ["queues"], ["worker", "start", APP], ["serve", APP]],
    ids=" ".join,
)
def test_an_unreachable_postgres_fails_at_once_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.socket() as sock:  # a local port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://u@127.0.0.1:{port}/x"
    started = time.monotonic()

    result = workhorse(*command, "--url", url, cwd=tmp_path, env=cli_env())

    took = time.monotonic() - started
    assert result.code == 2
    line = result.error_line()  # one line: none of the pool's multi-line retry warnings
    assert f"PostgreSQL at 127.0.0.1:{port}/x is unavailable" in line
    assert "Connection refused" in line, "the server's reason, not just a timeout"
    assert took < 8, f"took {took:.1f}s; the pool alone retries for its 10 s timeout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["worker", "start"], "Missing argument"),
        (["jobs", "list", "--limit", "0"], "Invalid value for '--limit'"),
        (["jobs", "show", "abc"], "Invalid value for 'ID'"),
        (["jobs", "list", "--state", "done"], "unknown state 'done'"),
        (["worker", "stop"], "say which workers to stop"),
        (["worker", "stop", "--all", "--id", "x"], "say which workers to stop"),
    ],
)
def test_command_line_mistakes(tmp_path: Path, args: list[str], message: str) -> None:
    result = workhorse(*args, cwd=tmp_path, env=cli_env(_url(tmp_path)))

    assert result.code == 2
    assert message in result.error_line()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["worker", "start"],
        ["worker", "status"],
        ["worker", "stop"],
        ["enqueue"],
        ["jobs", "list"],
        ["jobs", "show"],
        ["jobs", "cancel"],
        ["jobs", "retry"],
        ["jobs", "purge"],
        ["queues"],
        ["migrate"],
        ["demo"],
    ],
)
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = workhorse(*command, "--help", cwd=tmp_path, env=cli_env())

    assert result.code == 0, result.stderr
    assert "Usage: workhorse" in result.stdout


def test_worker_start_help_shows_defaults_and_environment_variables(tmp_path: Path) -> None:
    result = workhorse("worker", "start", "--help", cwd=tmp_path, env=cli_env())

    for text in ("--lease", "WORKHORSE_LEASE", "15.0", "--concurrency", "(16)", "--queues"):
        assert text in result.stdout
    for text in ("--max-attempts", "--backoff-base", "$WORKHORSE_BACKOFF_BASE", "(600)"):
        assert text in result.stdout


@pytest.mark.parametrize("group", [[], ["jobs"], ["worker"]])
def test_a_bare_group_prints_its_help(tmp_path: Path, group: list[str]) -> None:
    result = workhorse(*group, cwd=tmp_path, env=cli_env())

    assert result.code == 0
    assert "Usage: workhorse" in result.stdout


def test_version(tmp_path: Path) -> None:
    result = workhorse("--version", cwd=tmp_path, env=cli_env())

    assert result.code == 0
    assert result.stdout.startswith("workhorse ")


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"
