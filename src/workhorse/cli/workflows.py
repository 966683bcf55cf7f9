"""``workhorse workflows``: show a workflow's parts (state, what each waits for) and cancel
it; and the workflow lines of ``workhorse jobs show`` (workflow, dependencies, stage)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from workhorse.app import Workhorse
from workhorse.backends.base import Dependency, WorkflowRecord
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._output import ago, console, print_json, state_text, timestamp
from workhorse.jobs import JobRecord, JobState

workflows_app = typer.Typer(
    name="workflows",
    help="Show and cancel workflows (jobs that wait for other jobs).",
    no_args_is_help=True,
)

WorkflowIdArgument = Annotated[int, typer.Argument(metavar="ID", help="The workflow's id.", min=1)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@workflows_app.command("show")
def show_workflow(
    workflow_id: WorkflowIdArgument,
    as_json: JsonOption = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Show a workflow: its state and each part with what it waits for."""
    record = run(resolve_app(app, url), lambda wh: wh.get_workflow(workflow_id), existing=True)
    if as_json:
        print_json(record)
        return
    console.print(workflow_view(record))


@workflows_app.command("cancel")
def cancel_workflow(
    workflow_id: WorkflowIdArgument, app: AppOption = None, url: UrlOption = None
) -> None:
    """Cancel every live part of a workflow (running parts stop cooperatively)."""
    record = run(resolve_app(app, url), lambda wh: wh.cancel_workflow(workflow_id), existing=True)
    running = sum(1 for part in record.parts if part.state is JobState.RUNNING)
    message = f"workflow {workflow_id} cancelled"
    if running:
        message += f"; {running} running part(s) asked to stop"
    console.print(message)


def workflow_view(record: WorkflowRecord) -> RenderableType:
    """A workflow's summary line and the table of its parts."""
    head = Text(f"workflow {record.id}")
    if record.name:
        head.append(f" {record.name}", style="bold")
    head.append("  ")
    head.append_text(_workflow_state(record))
    head.append(f"  on failure: {record.on_failure}  created {ago(record.created_at)}")
    if record.tenant:
        head.append(f"  tenant {record.tenant}")
    if record.cancelled_at is not None:
        head.append(f"  cancelled {timestamp(record.cancelled_at)}")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "TASK", "STATE", "WAITS FOR", "TRY", "NOTE"):
        table.add_column(column, justify="right" if column in ("ID", "TRY") else "left")
    for part in record.parts:
        waits = ", ".join(str(dep) for dep in record.dependencies_of(part.id)) or "-"
        table.add_row(
            str(part.id),
            part.task,
            state_text(part.state),
            waits,
            f"{part.attempt}/{part.max_attempts}",
            _note(part),
        )
    return Group(head, table)


def _workflow_state(record: WorkflowRecord) -> Text:
    state = record.state.value
    style = {"completed": "green", "failed": "red", "cancelled": "magenta"}.get(state, "yellow")
    return Text(state, style=style)


def _note(part: JobRecord) -> Text:
    if part.error is not None and part.state is not JobState.COMPLETED:
        return Text(f"{part.error.type}: {part.error.message}", style="red")
    if part.stage is not None:
        return Text(f"stage {part.stage}")
    return Text("")


async def dependencies_of(wh: Workhorse, job_id: int) -> list[Dependency]:
    """The jobs ``job_id`` waits for (for ``jobs show``)."""
    return await (await wh.backend()).job_dependencies(job_id=job_id)


def job_fields(record: JobRecord, dependencies: list[Dependency]) -> list[tuple[str, Text]]:
    """The ``jobs show`` lines about a job's workflow, dependencies and pipeline stage."""
    fields: list[tuple[str, Text]] = []
    if record.workflow_id is not None:
        fields.append(("workflow", Text(f"{record.workflow_id} (workhorse workflows show)")))
    if dependencies:
        waits = Text()
        for position, dep in enumerate(dependencies):
            if position:
                waits.append(", ")
            waits.append(str(dep.job_id))
            if dep.state is None:
                waits.append(" (deleted)", style="dim")
            else:
                waits.append(" (")
                waits.append_text(state_text(dep.state))
                waits.append(")")
        fields.append(("waits for", waits))
    pipeline = record.meta.get("pipeline")
    if record.stage is not None and isinstance(pipeline, dict):
        stages = [str(name) for name in pipeline.get("stages", [])]
        position = stages.index(record.stage) + 1 if record.stage in stages else 0
        fields.append(("stage", Text(f"{record.stage} ({position} of {len(stages)})")))
    return fields
