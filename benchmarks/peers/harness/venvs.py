"""The harness's own virtualenvs, created and kept in step with their requirements files.

Peers cannot share one environment: arq pins ``redis<6`` while Celery's kombu needs
``redis>=6.4``, so arq gets its own. Each environment is rebuilt when its requirements
file changes (a hash is kept inside it).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PEERS_DIR.parent.parent


@dataclass(frozen=True)
class Venv:
    """One harness virtualenv."""

    name: str
    directory: Path
    requirements: Path
    with_workhorse: bool

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.directory / "bin" / "python"

    def _stamp(self) -> str:
        digest = hashlib.sha256(self.requirements.read_bytes())
        digest.update(str(self.with_workhorse).encode())
        return digest.hexdigest()

    def ensure(self, log: Path) -> Path:
        """Create or update the environment if needed; return its interpreter."""
        stamp_file = self.directory / ".requirements.sha256"
        if stamp_file.exists() and stamp_file.read_text() == self._stamp():
            return self.python
        print(f"[peers] installing the {self.name!r} virtualenv (log: {log.name})", flush=True)
        with log.open("a") as out:

            def run(*cmd: str | Path) -> None:
                subprocess.run([str(c) for c in cmd], check=True, stdout=out, stderr=out)

            if not self.python.exists():
                run(sys.executable, "-m", "venv", self.directory)
            run(self.python, "-m", "pip", "install", "--upgrade", "pip")
            run(self.python, "-m", "pip", "install", "-r", self.requirements)
            if self.with_workhorse:
                run(self.python, "-m", "pip", "install", "-e", f"{REPO_DIR}[postgres]")
        stamp_file.write_text(self._stamp())
        return self.python


VENVS = {
    "main": Venv("main", PEERS_DIR / ".venv", PEERS_DIR / "requirements.txt", True),
    "arq": Venv("arq", PEERS_DIR / ".venv-arq", PEERS_DIR / "requirements-arq.txt", False),
}
