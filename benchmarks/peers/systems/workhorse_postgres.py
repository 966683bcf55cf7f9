"""workhorse on PostgreSQL."""

from __future__ import annotations

from harness import config

from systems._workhorse import WorkhorseSystem, register
from workhorse import Workhorse

app = Workhorse(config.PG_DSN)
TASKS = register(app)


class WorkhorsePostgres(WorkhorseSystem):
    backend = "postgres"
    module = __name__
    workhorse_tasks = TASKS


WorkhorsePostgres.app = app
SYSTEM = WorkhorsePostgres
