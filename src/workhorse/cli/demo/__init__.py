"""``workhorse demo``: a live tour on a fresh SQLite file, in a few seconds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from workhorse.app import Workhorse
from workhorse.cli._app import run
from workhorse.cli._errors import CliError
from workhorse.cli._output import console
from workhorse.cli.demo.script import run_demo
from workhorse.cli.demo.summary import next_steps, summary_table, takeaways

_SQLITE_MAGIC = b"SQLite format 3\x00"


def demo_command(
    jobs: Annotated[
        int, typer.Option("--jobs", "-n", min=10, max=100_000, help="How many jobs to enqueue.")
    ] = 300,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="The SQLite file to create (replaced if it exists).",
            show_default="workhorse-demo.db",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=1_000, help="Worker slots.")
    ] = 16,
) -> None:
    """Enqueue a few hundred jobs of five kinds (some retry, some fail, one is cancelled),
    run a worker under a live view, and explain what happened."""
    # Imported here: the demo app is built at import, which no other command needs.
    from workhorse.demo import DEMO_DB, register_tasks

    db = db or Path(DEMO_DB)
    _replace(db)
    url = f"sqlite:///{db}"
    app = register_tasks(Workhorse(url))
    result = run(app, lambda wh: run_demo(wh, total=jobs, concurrency=concurrency, console=console))
    console.print()
    console.print(summary_table(result.records))
    console.print()
    console.print(takeaways(result))
    console.print()
    for line in next_steps(result, url):
        console.print(line, soft_wrap=True)


def _replace(db: Path) -> None:
    """Delete a previous demo store (and its WAL files), refusing to touch anything that
    is not a workhorse SQLite file."""
    if db.is_dir():
        raise CliError(f"--db {str(db)!r} is a folder; give a file name")
    if db.exists() and db.stat().st_size > 0 and not _is_workhorse_store(db):
        raise CliError(f"refusing to replace {str(db)!r}: it is not a workhorse store")
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


def _is_workhorse_store(path: Path) -> bool:
    with path.open("rb") as file:
        if file.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workhorse_jobs'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None
