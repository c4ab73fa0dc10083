"""`tokenledger demo`: a demo tenant populated through the real paths, reconciled and served."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ledger.cli.command import configure_logging, console, one_line_errors, stop_cleanly_on_sigterm
from ledger.cli.reconcile import print_reconciliation
from ledger.settings import get_settings
from ledger.storage.database import create_db_engine, database_url, upgrade


@one_line_errors
def demo(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default TOKENLEDGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TOKENLEDGER_PORT).")] = None,
    keep_serving: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after the demo.")] = True,
) -> None:
    """Populate a demo tenant with a month of usage and statements, reconcile it, and serve it."""
    from ledger.demo.month import describe_plants
    from ledger.demo.setup import BackgroundServer, ensure_demo_tenant, populate

    stop_cleanly_on_sigterm()
    settings = get_settings()
    configure_logging(settings.model_copy(update={"log_level": "warning"}))
    url = database_url(settings)
    upgrade(url)
    settings = settings.model_copy(update={"database_url": url})
    engine = create_db_engine(url, pool_size=settings.pool_size)
    server = BackgroundServer(settings, engine, host or settings.host, port or settings.port)
    server.start()
    try:
        keys = ensure_demo_tenant(engine)
        result = populate(
            settings,
            engine,
            server.base_url,
            keys,
            settings.data_dir / "demo",
            lambda line: console.print(line, highlight=False),
        )
        if result.outcome.result is None:
            raise RuntimeError(f"the demo reconciliation failed: {result.outcome.error}")
        print_reconciliation(result.tenant, result.period, result.outcome.result)
        console.print(priced_out_of_the_box(), highlight=False)
        console.print("\nPlanted in the statements (everything else is a clean control group):", style="bold")
        describe_plants(lambda line: console.print(line, highlight=False))
        base = server.base_url
        console.print(
            f"""
Where to look:
  web report   {base}/report          (sign in with the read key below)
  API docs     {base}/docs
  findings     curl -s -H "Authorization: Bearer {result.read_key}" "{base}/v1/findings?period={result.period}"
  drift        curl -s -H "Authorization: Bearer {result.read_key}" "{base}/v1/reconciliation?period={result.period}"
  re-run       tokenledger reconcile --period {result.period} --tenant {result.tenant}

Keys of tenant '{result.tenant}' (shown once):
  read   {result.read_key}
  admin  {result.admin_key}
  ingest {result.ingest_key}""",
            highlight=False,
        )
        if keep_serving:
            console.print(f"\nServing on {base} — Ctrl-C to stop.", highlight=False)
            # Sleep rather than join: a join that Ctrl-C or SIGTERM interrupts leaves the thread marked as
            # finished (CPython 3.11's Thread._wait_for_tstate_lock), and stop() would then not wait for it.
            while server.thread.is_alive():
                time.sleep(0.5)
    finally:
        server.stop()
        engine.dispose()


def priced_out_of_the_box() -> str:
    from ledger.pricing.catalog import base_layer, bundled_prices, shared_catalog

    base, _ = base_layer()
    overlay = {(row.provider, row.model) for row in bundled_prices()}
    return (
        f"{shared_catalog().model_count():,} models priced out of the box: {len(overlay)} from the sourced overlay "
        f"(ledger/pricing/prices.csv) over {base.model_count:,} from {base.describe()}"
    )
