"""`tokenledger keys`: TokenLedger's own API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledger.access import auth
from ledger.cli.command import console, one_line_errors, print_table, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings

keys_app = typer.Typer(help="TokenLedger API keys.", no_args_is_help=True)


@keys_app.command("create")
@one_line_errors
def keys_create(
    role: Annotated[str, typer.Option(help="ingest, read or admin.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
    label: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    with session_scope(get_settings()) as session:
        issued = auth.create_key(session, auth.tenant_for_cli(session, tenant).name, role, label=label)
    console.print(f"key id: {issued.key_id} (tenant {issued.tenant}, role {issued.role})", highlight=False)
    console.print("store this key now; it will not be shown again:", style="bold")
    print(issued.token)


@keys_app.command("list")
@one_line_errors
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant name (default: every tenant).")] = None,
) -> None:
    """List API keys by id, role and label, revoked ones marked (a key's secret is never stored or shown)."""
    from ledger.display import when

    with session_scope(get_settings()) as session:
        keys = auth.list_keys(session, tenant)
    if not keys:
        console.print("no key yet: tokenledger keys create --tenant NAME --role ingest")
        return
    table = Table("key id", "tenant", "role", "label", "created", "revoked")
    for key in keys:
        revoked = when(key.revoked_at) if key.revoked_at else ""
        table.add_row(key.key_id, key.tenant, key.role, key.label or "", when(key.created_at), revoked)
    print_table(table)


@keys_app.command("revoke")
@one_line_errors
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by its id."""
    with session_scope(get_settings()) as session:
        auth.revoke_key(session, key_id, now=SystemClock().now())
    console.print(f"key {key_id} revoked")
