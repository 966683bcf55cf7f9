"""``workhorse enqueue``: store a job for a registered task and print its id."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workhorse import serialization
from workhorse.cli._app import AppOption, UrlOption, require_app, run
from workhorse.cli._errors import CliError
from workhorse.cli._output import console, note
from workhorse.reserved import enqueueable_task


def enqueue_command(
    task: Annotated[str, typer.Argument(help="The task's registered name.", show_default=False)],
    args: Annotated[
        str, typer.Option("--args", metavar="JSON", help="Positional arguments, a JSON array.")
    ] = "[]",
    kwargs: Annotated[
        str, typer.Option("--kwargs", metavar="JSON", help="Keyword arguments, a JSON object.")
    ] = "{}",
    queue: Annotated[
        str | None, typer.Option("--queue", "-q", help="Queue (default: the task's).")
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", "-p", help="Higher runs first (default: the task's)."),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option("--delay", min=0, metavar="SECONDS", help="Run no sooner than this."),
    ] = None,
    unique_key: Annotated[
        str | None,
        typer.Option("--unique-key", help="While a live job holds this key, return that job."),
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="The job's tenant.")] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=1,
            metavar="N",
            help="Attempts in all (default: the task's retry policy, else the app's).",
        ),
    ] = None,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Enqueue a job and print its id (on stdout, alone, for scripts). Tasks named
    workhorse.* are workhorse's own and cannot be enqueued."""
    positional = _json_option("--args", args, list, "array")
    keywords = _json_option("--kwargs", kwargs, dict, "object")
    found = require_app(app, url, why="enqueue")
    enqueueable_task(found, task)  # fail before touching the store
    job = run(
        found,
        lambda wh: wh.enqueue(
            task,
            args=positional,
            kwargs=keywords,
            queue=queue,
            priority=priority,
            delay=delay,
            unique_key=unique_key,
            tenant=tenant,
            max_attempts=max_attempts,
        ),
    )
    console.print(str(job.id))
    if not job.created:
        note(f"job {job.id} holds the same unique key and is still live: no new job was made")


def _json_option(flag: str, text: str, kind: type[Any], kind_name: str) -> Any:
    try:
        value = serialization.loads(text)
    except ValueError as exc:
        raise CliError(f"{flag} is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, kind):
        got = _JSON_KINDS.get(type(value), type(value).__name__)
        raise CliError(f"{flag} must be a JSON {kind_name}, got {got}: {text!r}")
    return value


_JSON_KINDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
