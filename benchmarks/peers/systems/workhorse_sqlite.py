"""workhorse on a SQLite file."""

from __future__ import annotations

from harness import config

from systems._workhorse import WorkhorseSystem, register
from workhorse import Workhorse

app = Workhorse(f"sqlite:///{config.RUN_DIR / 'workhorse.db'}")
TASKS = register(app)


class WorkhorseSqlite(WorkhorseSystem):
    backend = "sqlite"
    module = __name__
    workhorse_tasks = TASKS


WorkhorseSqlite.app = app
SYSTEM = WorkhorseSqlite
