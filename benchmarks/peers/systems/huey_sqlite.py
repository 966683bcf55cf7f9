"""Huey on a SQLite file."""

from __future__ import annotations

from harness import config
from huey import SqliteHuey

from systems._huey import HueySystem, register

huey = SqliteHuey("bench", filename=str(config.RUN_DIR / "huey.db"), results=False)
TASKS = register(huey)


class HueySqlite(HueySystem):
    backend = "sqlite"
    module = __name__
    huey_tasks = TASKS


SYSTEM = HueySqlite
