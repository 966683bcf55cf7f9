"""``workhorse workflows show/cancel`` and the workflow lines of ``workhorse jobs show``,
against a real SQLite file."""

from __future__ import annotations

import json

from workhorse.backends.base import NewJob, NewWorkflow, StoredJobRef, WorkflowPart
from workhorse.jobs import JobState

from .conftest import Store


async def _workflow(store: Store) -> tuple[int, list[int], int]:
    """A stored job, then a workflow: a -> b (also waiting on the stored job)."""
    [stored] = await store.insert(NewJob(task="acceptance.add", args="[1, 2]"))
    inserted = await store.backend.workflow_insert(
        NewWorkflow(
            parts=[
                WorkflowPart(NewJob(task="acceptance.add", args="[3, 4]")),
                WorkflowPart(
                    NewJob(task="acceptance.boom", args='["x"]'), after=(0, StoredJobRef(stored))
                ),
            ],
            name="nightly",
            on_failure="cancel",
        )
    )
    return inserted.id, [job.id for job in inserted.jobs], stored


async def test_workflows_show_lists_parts_and_what_they_wait_for(store: Store) -> None:
    workflow_id, (a, b), stored = await _workflow(store)
    await store.finish(a, JobState.FAILED)

    table = store.cli("workflows", "show", str(workflow_id))
    as_json = store.cli("workflows", "show", str(workflow_id), "--json")

    assert table.code == 0, table.stderr
    assert f"workflow {workflow_id} nightly" in table.stdout
    assert "failed" in table.stdout
    assert "on failure: cancel" in table.stdout
    lines = {line.split()[0]: line for line in table.stdout.splitlines() if line.split()}
    assert "ValueError: bad input" in lines[str(a)]
    assert f"{a}, {stored}" in lines[str(b)]
    assert "cancelled" in lines[str(b)]
    assert "DependencyFailedError" in lines[str(b)]
    record = json.loads(as_json.stdout)
    assert record["id"] == workflow_id
    assert [part["id"] for part in record["parts"]] == [a, b]
    assert record["edges"] == [[b, a], [b, stored]]


async def test_jobs_show_prints_the_workflow_and_dependencies(store: Store) -> None:
    workflow_id, (a, b), stored = await _workflow(store)
    await store.finish(stored, JobState.COMPLETED)

    result = store.cli("jobs", "show", str(b))

    assert result.code == 0, result.stderr
    assert f"{workflow_id} (workhorse workflows show)" in result.stdout
    assert f"{a} (queued), {stored} (completed)" in result.stdout
    assert "blocked" in result.stdout


async def test_workflows_cancel(store: Store) -> None:
    workflow_id, (a, b), _ = await _workflow(store)

    result = store.cli("workflows", "cancel", str(workflow_id))
    missing = store.cli("workflows", "show", "9999")

    assert result.code == 0, result.stderr
    assert f"workflow {workflow_id} cancelled" in result.stdout
    for job_id in (a, b):
        record = await store.backend.job_get(job_id=job_id)
        assert record is not None
        assert record.state is JobState.CANCELLED
    assert missing.code == 2  # like every "not found" of the CLI
    assert missing.error_line() == "error: workflow 9999 not found"
