"""`tokenledger serve`: the HTTP service."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from ledger.cli.command import configure_logging, console, one_line_errors, stop_cleanly_on_sigterm
from ledger.errors import InvalidRequest
from ledger.settings import get_settings
from ledger.storage.database import create_db_engine, database_url, upgrade


@one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default TOKENLEDGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TOKENLEDGER_PORT).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
) -> None:
    """Run the HTTP service (API docs at /docs)."""
    import uvicorn

    from ledger.server import create_app

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    refuse_a_port_in_use(bind_host, bind_port)
    stop_cleanly_on_sigterm()
    configure_logging(settings)
    url = database_url(settings)
    if migrate:
        upgrade(url)
    else:
        check_reachable(url)  # one line when it is not, as a failed migration gives, not the server's traceback
    settings = settings.model_copy(update={"database_url": url})
    application = create_app(settings)
    console.print(f"TokenLedger on http://{bind_host}:{bind_port} (API docs: /docs)", highlight=False)
    uvicorn.run(application, host=bind_host, port=bind_port, log_level=settings.log_level, access_log=False)


def check_reachable(url: str) -> None:
    """Connect to the database once (raises what the driver raises when it cannot)."""
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def refuse_a_port_in_use(host: str, port: int) -> None:
    """Refuse to start when the address is taken, before anything runs: the server would otherwise migrate,
    start the scheduler (whose jobs run at once) and announce itself, and only then fail to bind."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidRequest(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, protocol, _, address = addresses[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds its own
        try:
            probe.bind(address)
        except OSError as error:
            raise InvalidRequest(
                f"cannot listen on {host}:{port}: {error.strerror} (choose another with --port or TOKENLEDGER_PORT)"
            ) from None
