"""`tokenledger db`: the database schema."""

from __future__ import annotations

import typer

from ledger.cli.command import configure_logging, console, one_line_errors
from ledger.settings import get_settings
from ledger.storage.database import database_url, upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply every migration (creates the schema on a new database)."""
    settings = get_settings()
    configure_logging(settings)
    upgrade(database_url(settings))
    console.print("database schema is at the latest revision")
