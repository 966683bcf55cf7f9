"""``workhorse keys``: API keys of the HTTP API and the dashboard. A key's token is shown
once, at creation; the store keeps only its hash."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._errors import CliError
from workhorse.cli._output import ago, console, note, print_json

if TYPE_CHECKING:
    from workhorse.backends.base import ApiKeyRecord

keys_app = typer.Typer(
    name="keys",
    help="Create, list and revoke API keys for the HTTP API and the dashboard.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _public(key: ApiKeyRecord) -> dict[str, Any]:
    """What ``--json`` shows of a key (not its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "tenant": key.tenant,
        "admin": key.admin,
        "read_only": key.read_only,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@keys_app.command("create")
def create(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", "-t", help="The only tenant the key may see and change."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A key for every tenant.")] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="The key may read but not change jobs.")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="A note saying what the key is for.")
    ] = None,
    as_json: JsonOption = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Create a key bound to --tenant (or an --admin key) and print its token once."""
    if admin == (tenant is not None):
        raise CliError("give either --tenant NAME or --admin")
    from workhorse.web.auth import create_api_key

    found = resolve_app(app, url)
    issued = run(
        found,
        lambda wh: create_api_key(wh, tenant=tenant, admin=admin, read_only=read_only, name=name),
    )
    record = issued.record
    if as_json:
        print_json({"token": issued.token, **_public(record)})
        return
    console.print(issued.token, soft_wrap=True, highlight=False)
    scope = "every tenant (admin)" if admin else f"tenant {tenant}"
    access = "read-only" if read_only else "read-write"
    note(
        f"key {record.id}: {scope}, {access}. Keep the token: it is not stored and not shown again."
    )


@keys_app.command("list")
def list_keys(
    include_revoked: Annotated[
        bool, typer.Option("--all", "-a", help="Include revoked keys.")
    ] = False,
    as_json: JsonOption = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """The API keys (never their tokens)."""
    from workhorse.web.auth import list_api_keys

    found = resolve_app(app, url)
    keys = run(found, lambda wh: list_api_keys(wh, include_revoked=include_revoked), existing=True)
    if as_json:
        print_json([_public(key) for key in keys])
        return
    if not keys:
        note("no API keys yet: create one with 'workhorse keys create --tenant NAME'")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "scope", "access", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.id,
            key.name or "-",
            "admin" if key.admin else f"tenant {key.tenant}",
            "read-only" if key.read_only else "read-write",
            ago(key.created_at),
            ago(key.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see 'workhorse keys list').")],
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Revoke a key at once: its requests and dashboard sessions get 401 from now on."""
    from workhorse.web.auth import revoke_api_key

    found = resolve_app(app, url)
    if not run(found, lambda wh: revoke_api_key(wh, key_id), existing=True):
        raise CliError(f"no live API key with id {key_id!r}")
    note(f"key {key_id} revoked")
