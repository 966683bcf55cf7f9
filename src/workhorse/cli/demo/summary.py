"""The demo's ending: a table per task, what the newcomer just saw, and what to try next."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from workhorse.cli._output import STATE_STYLES, duration
from workhorse.cli.demo.script import DemoResult
from workhorse.jobs import JobRecord, JobState

_COLUMNS = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def summary_table(records: list[JobRecord]) -> Table:
    """Per task: jobs, how they ended, retries, and mean run time of the last attempt."""
    by_task: dict[str, list[JobRecord]] = defaultdict(list)
    for record in records:
        by_task[record.task].append(record)
    table = Table(
        title="what the worker did",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("task", no_wrap=True)
    table.add_column("jobs", justify="right")
    for state in _COLUMNS:
        table.add_column(state.value, justify="right", style=STATE_STYLES[state])
    table.add_column("retries", justify="right")
    table.add_column("avg time", justify="right")
    for task in sorted(by_task):
        jobs = by_task[task]
        counts = [sum(1 for job in jobs if job.state is state) for state in _COLUMNS]
        retries = sum(max(0, job.attempt - 1) for job in jobs)
        times = [
            (job.finished_at - job.started_at).total_seconds()
            for job in jobs
            if job.started_at is not None and job.finished_at is not None
        ]
        table.add_row(
            task,
            str(len(jobs)),
            *(str(count) if count else Text("0", style="dim") for count in counts),
            str(retries) if retries else Text("0", style="dim"),
            duration(mean(times)) if times else "-",
        )
    return table


def takeaways(result: DemoResult) -> RenderableType:
    """Plain sentences on what just happened."""
    records = result.records
    by_task: dict[str, list[JobRecord]] = defaultdict(list)
    for record in records:
        by_task[record.task].append(record)
    flaky = by_task["demo.call_flaky_api"]
    invalid = by_task["demo.import_invoice"]
    if result.report_progress is None:
        cancel_line = f"The report (job {result.report_job}) was not cancelled in time."
    else:
        cancel_line = (
            f"demo.build_report (job {result.report_job}) was cancelled while running, at "
            f"{result.report_progress:.0f}%: the task checked job.cancelled and stopped."
        )
    lines = [
        f"{len(records)} jobs in {result.elapsed:.1f}s on one worker with "
        f"{result.concurrency} slots: async tasks shared its event loop, "
        "demo.resize_image (sync, CPU-bound) ran in its thread pool.",
        f"demo.call_flaky_api failed twice per job (ConnectionError) and succeeded on the "
        f"third attempt, after exponential backoff: "
        f"{sum(job.attempt - 1 for job in flaky)} retries, no job lost.",
        f"demo.import_invoice raised InvalidInvoiceError, listed in give_up_on: its "
        f"{len(invalid)} jobs failed at once, without retries; the error and traceback "
        "are stored.",
        cancel_line,
        f"{result.plan.delayed} page fetches were delayed 1-3s (state scheduled), and "
        f"{result.plan.urgent} image resizes had priority 10 and jumped the queue.",
    ]
    return Group(*(Text(f"- {line}") for line in lines))


def next_steps(result: DemoResult, url: str) -> list[Text]:
    """Commands to explore the store the demo left behind, one unwrapped line each."""
    failed = [record.id for record in result.records if record.state is JobState.FAILED]
    commands = [
        (f"export WORKHORSE_URL={url}", "the commands below use this store"),
        ("workhorse jobs list --state failed", "the failures"),
        (f"workhorse jobs show {failed[0] if failed else result.report_job}", "one job in full"),
        ("workhorse queues", "counts per queue and state"),
        (
            "workhorse enqueue demo.fetch_page -A workhorse.demo:app "
            "--args '[\"https://example.com\"]'",
            "one more job",
        ),
        ("workhorse worker start workhorse.demo:app", "serve it; Ctrl-C stops gracefully"),
    ]
    lines = [Text("Every job is still in the store; the tasks are in workhorse/demo.py. Try:")]
    for command, why in commands:
        lines.append(Text(f"  {command}", style="bold cyan") + Text(f"   # {why}", style="dim"))
    return lines
