"""Running the ``workhorse`` CLI as a real subprocess: one-shot commands and long-lived
worker processes, with the test apps of ``tests/acceptance/apps.py`` importable."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from _polling import eventually as eventually

REPO = Path(__file__).resolve().parents[2]
APP = "tests.acceptance.apps:app"
"""The test app, importable because the repository root is on PYTHONPATH."""

COMMAND = [sys.executable, "-m", "workhorse"]


def cli_env(url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: none of the caller's ``WORKHORSE_*`` settings,
    the repository root on the path, and ``url`` as the store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKHORSE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"  # wide tables: no cell is cut in the middle of what we look for
    if url is not None:
        env["WORKHORSE_URL"] = url
    env.update(extra)
    return env


@dataclass(frozen=True, slots=True)
class Result:
    """A finished CLI run."""

    code: int
    stdout: str
    stderr: str

    def error_line(self) -> str:
        """The one line a failed command prints (asserting it is one line, no traceback)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert "Traceback" not in self.stderr, self.stderr
        assert len(lines) == 1, f"expected one error line, got:\n{self.stderr}"
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]


def workhorse(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> Result:
    """Run ``workhorse ARGS`` to its end."""
    done = subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class WorkerProcess:
    """``workhorse worker start APP ...`` running in the background, its output in a file."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out: IO[Any] = log.open("ab")
        self.proc = subprocess.Popen(
            [*COMMAND, "worker", "start", *args],
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the worker."""
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit; the exit code."""
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.returncode is not None:
                self._out.close()

    def kill(self) -> None:
        """Stop the process for good (cleanup)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()
