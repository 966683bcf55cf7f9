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

    def settings(self, concurrency: int) -> str:
        # SqliteHuey sets no synchronous level unless given fsync=: SQLite's default,
        # FULL, fsyncs every enqueue's commit, as workhorse's default store does.
        return f"{super().settings(concurrency)}, WAL, synchronous=FULL (SQLite's default)"


SYSTEM = HueySqlite
