"""workhorse on a SQLite file with ``synchronous=normal``: commits survive a crash of the
process but not a power loss. The default ``workhorse_sqlite`` row fsyncs every enqueue,
as Huey 3.5 does by default (it leaves SQLite at its WAL default, ``synchronous=FULL``);
this row shows what that durability costs."""

from __future__ import annotations

from harness import config

from systems._workhorse import WorkhorseSystem, register
from workhorse import Workhorse

app = Workhorse(f"sqlite:///{config.RUN_DIR / 'workhorse.db'}?synchronous=normal")
TASKS = register(app)


class WorkhorseSqliteNormal(WorkhorseSystem):
    backend = "sqlite, synchronous=normal"
    module = __name__
    workhorse_tasks = TASKS


WorkhorseSqliteNormal.app = app
SYSTEM = WorkhorseSqliteNormal
