"""``workhorse webhooks``: signing secrets per tenant, and the delivery log of a job."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._output import ago, console, note, print_json

webhooks_app = typer.Typer(
    name="webhooks",
    help="Webhook signing secrets, and the delivery attempts of a job's webhooks.",
    no_args_is_help=True,
)


@webhooks_app.command("secret")
def secret(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            "-t",
            help="The tenant whose deliveries it signs (default: jobs without a tenant).",
        ),
    ] = None,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Create (or replace) a tenant's signing secret and print it, once."""
    found = resolve_app(app, url)
    value = run(found, lambda wh: wh.webhooks.create_secret(tenant))
    console.print(value, soft_wrap=True, highlight=False)
    who = f"tenant {tenant}" if tenant else "jobs without a tenant"
    note(
        f"signing secret of {who}: give it to the receiver now, it is not shown again "
        "(running this again replaces it)"
    )


@webhooks_app.command("deliveries")
def deliveries(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The job that was announced.", min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """The delivery attempts of a job's webhook, oldest first."""
    found = resolve_app(app, url)
    attempts = run(found, lambda wh: wh.webhooks.deliveries(job_id), existing=True)
    if as_json:
        print_json(attempts)
        return
    if not attempts:
        note(f"no delivery attempts for job {job_id} (yet)")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ATTEMPT", "DELIVERY JOB", "URL", "STATUS", "ERROR", "AT"):
        table.add_column(column)
    for attempt in attempts:
        table.add_row(
            str(attempt.attempt),
            str(attempt.delivery_job_id),
            attempt.url,
            "-" if attempt.status_code is None else str(attempt.status_code),
            attempt.error or "-",
            ago(attempt.at),
        )
    console.print(table)
