"""The FastAPI application of the API: built by `create_api(settings, ...)`, nothing created at import time."""

from __future__ import annotations

import functools
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from ledger.access.auth import PrincipalCache, same_text
from ledger.access.throttle import FailedAuthThrottle
from ledger.alerts.delivery import outbox_by_status
from ledger.api import events, findings, integrations, reconciliation, statements
from ledger.api.context import AppContext
from ledger.api.deadline import RequestDeadline
from ledger.api.dependencies import ContextDep
from ledger.api.openapi import complete_document, error_responses
from ledger.clock import Clock, SystemClock
from ledger.errors import ServiceUnavailable, TokenLedgerError, TooManyFailedAuthentications, Unauthorized
from ledger.pricing.catalog import base_layer
from ledger.service import log_redaction
from ledger.service.metrics import ServiceMetrics
from ledger.service.scheduler import MonthlyReportSender, start_scheduler
from ledger.settings import Settings
from ledger.sink.group_commit import GroupCommitWriter, is_unavailable
from ledger.storage.database import (
    create_db_engine,
    database_url,
    migrations_at_head,
    service_timeouts,
    session_factory,
)

log = logging.getLogger("tokenledger.api")
RETRY_AFTER_SECONDS = "2"
DEADLINE_EXEMPT = ("/v1/reconciliation/run",)  # waits its turn behind another run of the period, by design


def create_api(
    settings: Settings,
    *,
    monthly_report: MonthlyReportSender,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The API with its lifespan (group-commit writer, scheduler). `ledger.server.create_app` mounts the report
    on it; `monthly_report` is what the scheduler sends when it closes a month."""
    log_redaction.install()
    timeouts = service_timeouts(settings)
    engine = engine or create_db_engine(database_url(settings), pool_size=settings.pool_size, timeouts=timeouts)
    metrics = ServiceMetrics()
    writer = GroupCommitWriter(
        engine.url,
        max_wait_seconds=settings.group_commit_wait_ms / 1000,
        max_events=settings.group_commit_max_events,
        connections=settings.writer_connections,
        on_batch=metrics.observe_batch,
        timeouts=timeouts,
    )
    context = AppContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        writer=writer,
        metrics=metrics,
        clock=clock or SystemClock(),
        principals=PrincipalCache(settings.auth_cache_seconds),
        failed_auth=FailedAuthThrottle(per_minute=settings.auth_failures_per_minute, burst=settings.auth_failure_burst),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The price data (genai-prices' snapshot, half a second to read) is read now rather than by the first
        # reconciliation. Everything allocated so far (modules, app, metadata, prices) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise stall every request for ~100 ms
        # about once a second.
        base_layer()
        gc.collect()
        gc.freeze()
        writer.start()
        scheduler = (
            start_scheduler(settings, engine, context.sessions, monthly_report, context.clock, metrics.scheduler)
            if settings.scheduler_enabled
            else None
        )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await writer.stop()

    # The docs pages load Swagger UI and ReDoc from the installed package, not a CDN: they work offline and
    # behind networks that block CDNs.
    app = FastAPIOffline(
        title="TokenLedger",
        summary="What your LLM applications used, against what the providers billed.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.context = context
    # Completed once: FastAPI caches the document it generates, and 405 answers read it for their Allow header.
    app.openapi = functools.cache(lambda: complete_document(FastAPI.openapi(app)))  # type: ignore[method-assign]
    _install_error_handlers(app)
    app.include_router(events.router)
    app.include_router(statements.router)
    app.include_router(reconciliation.router)
    app.include_router(integrations.router)
    app.include_router(findings.router)
    _install_health(app)
    app.add_middleware(
        RequestDeadline,
        seconds=settings.request_timeout_seconds,
        retry_after=RETRY_AFTER_SECONDS,
        exempt=DEADLINE_EXEMPT,
    )
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TokenLedgerError)
    async def known_error(request: Request, error: TokenLedgerError) -> JSONResponse:
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if isinstance(error, ServiceUnavailable) else None
        if isinstance(error, TooManyFailedAuthentications):
            headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse(error.as_json(), status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": ".".join(str(part) for part in problem["loc"][1:]) or str(problem["loc"][0]),
                "message": problem["msg"],
            }
            for problem in error.errors()
        ]
        body = {"error": {"code": "invalid_request", "message": "invalid request parameters", "details": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def routing_error(request: Request, error: HTTPException) -> JSONResponse:
        """Starlette's own answers (no such path, a method the path does not take, an unreadable form) in the
        API's error envelope. A 405 lists every method of the path, whichever route matched first."""
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_methods_of(app, request)))
        if error.status_code == 400:  # a body FastAPI could not parse: invalid input, as everywhere in the API
            body = {"error": {"code": "invalid_request", "message": f"the body could not be read: {error.detail}"}}
            return JSONResponse(body, status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "bad_request")
        body = {"error": {"code": code, "message": f"{error.detail}: {request.method} {request.url.path}"}}
        return JSONResponse(body, status_code=error.status_code, headers=headers)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
        if is_unavailable(error):
            unavailable = ServiceUnavailable("the database is unreachable; retry shortly")
            return JSONResponse(unavailable.as_json(), status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})
        log.exception("database error")
        return JSONResponse({"error": {"code": "internal_error", "message": "internal error"}}, status_code=500)


class Readiness(BaseModel):
    status: str = Field(description="ready or not ready")
    checks: dict[str, str] = Field(description="database and migrations: ok, or what is wrong")


def _methods_of(app: FastAPI, request: Request) -> set[str]:
    """The methods the OpenAPI document gives the request's path."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        literal_parts = re.split(r"\{[^/]+?\}", template)  # the text between path parameters
        if re.fullmatch("[^/]+".join(map(re.escape, literal_parts)), path):
            methods |= {method.upper() for method in operations}
    return methods


def _install_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable and migrated",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: `checks` says what is missing."}},
    )
    def readyz(context: ContextDep) -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            with context.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            checks["migrations"] = (
                "ok" if migrations_at_head(context.engine) else "behind: run `tokenledger db upgrade`"
            )
        except SQLAlchemyError as error:
            checks["database"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values()) and "migrations" in checks
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (for the operator: the counters of every tenant)",
        description="Open to anyone who can reach the service unless `TOKENLEDGER_METRICS_TOKEN` is set; then "
        "it needs `Authorization: Bearer <that token>` (no tenant's key opens it).",
        response_class=PlainTextResponse,
        responses=error_responses(401),
    )
    def metrics(request: Request, context: ContextDep) -> PlainTextResponse:
        token = context.settings.metrics_token
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not same_text(given.strip(), token.get_secret_value()):
                raise Unauthorized("the metrics need 'Authorization: Bearer <TOKENLEDGER_METRICS_TOKEN>'")
        with context.sessions() as session:
            context.metrics.scheduler.outbox_depth(outbox_by_status(session))
        return PlainTextResponse(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
