"""The composition root of the web service: the API with the report mounted at /report. The one module (with
the command line, `ledger.cli`) that sees both the ledger and the report, so that neither imports the other."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from ledger.api import create_api
from ledger.clock import Clock
from ledger.settings import Settings
from reports.monthly import send_monthly_report
from reports.web import create_report_app


def create_app(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None) -> FastAPI:
    """The whole service as `tokenledger serve` runs it; nothing is created at import time."""
    app = create_api(settings, monthly_report=send_monthly_report, engine=engine, clock=clock)
    app.mount("/report", create_report_app(app.state.context))
    return app
