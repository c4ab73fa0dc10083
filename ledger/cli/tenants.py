"""`tokenledger tenants`: creating and listing tenants."""

from __future__ import annotations

import typer
from rich.table import Column, Table

from ledger.access import auth
from ledger.cli.command import console, one_line_errors, print_table, session_scope
from ledger.settings import get_settings

tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)


@tenants_app.command("create")
@one_line_errors
def tenants_create(name: str) -> None:
    """Create a tenant."""
    with session_scope(get_settings()) as session:
        tenant = auth.create_tenant(session, name)
        console.print(f"tenant {tenant.name!r} created (id {tenant.id})")


@tenants_app.command("list")
@one_line_errors
def tenants_list() -> None:
    """List the tenants and how many active keys each has."""
    from ledger.display import when

    with session_scope(get_settings()) as session:
        rows = [(tenant.name, str(tenant.id), tenant.created_at, keys) for tenant, keys in auth.list_tenants(session)]
    if not rows:
        console.print("no tenant yet: tokenledger tenants create NAME")
        return
    table = Table("name", Column("id", justify="right"), "created", Column("active keys", justify="right"))
    for name, tenant_id, created_at, keys in rows:
        table.add_row(name, tenant_id, when(created_at), str(keys))
    print_table(table)
