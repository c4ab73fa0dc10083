"""Routes for usage events: ingest (`POST /v1/events`), listing, and rollup totals (`GET /v1/usage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ledger.api.context import AppContext
from ledger.api.dependencies import ContextDep, PrincipalDep, SessionDep
from ledger.auth import Principal
from ledger.errors import InvalidRequest, PayloadTooLarge
from ledger.events import EventRow, EventValidationError, parse_body, validate_events
from ledger.usage import EventFilter, list_events, resolve_range, usage_totals

router = APIRouter(prefix="/v1", tags=["usage"])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def store(context: AppContext, rows: list[EventRow]) -> JSONResponse:
    """Write through the group-commit writer; answer only after the commit."""
    result = await context.writer.submit(rows)
    context.metrics.events_accepted.inc(result.accepted)
    context.metrics.events_duplicate.inc(result.duplicates)
    return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates}, status_code=202)


def validated(context: AppContext, principal: Principal, items: list[Any]) -> list[EventRow]:
    settings = context.settings
    if len(items) > settings.max_events_per_request:
        raise PayloadTooLarge(f"at most {settings.max_events_per_request} events per request, got {len(items)}")
    if not items:
        raise InvalidRequest("the request holds no event")
    try:
        return validate_events(items, tenant_id=principal.tenant_id, now=context.clock.now())
    except EventValidationError as error:
        context.metrics.events_rejected.inc(len(items))
        raise InvalidRequest(
            f"{len(error.problems)} problem(s) in the events; nothing was stored",
            details=[problem.as_dict() for problem in error.problems],
        ) from error


@router.post("/events", status_code=202, summary="Record usage events (object, array or NDJSON)")
async def post_events(request: Request, context: ContextDep, principal: PrincipalDep) -> JSONResponse:
    principal.require("ingest")
    body = await read_body(request, context.settings.max_body_bytes)
    try:
        items = parse_body(body, request.headers.get("content-type", "application/json"))
    except EventValidationError as error:
        raise InvalidRequest(
            "the body is not valid JSON", details=[problem.as_dict() for problem in error.problems]
        ) from error
    rows = (
        validated(context, principal, items)
        if len(items) < 50
        else await run_in_threadpool(validated, context, principal, items)
    )
    return await store(context, rows)


@router.get("/events", summary="List events, newest last, with keyset pagination")
def get_events(
    session: SessionDep,
    principal: PrincipalDep,
    period: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    provider: str | None = None,
    model: str | None = None,
    app: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    principal.require("read")
    filters = EventFilter(resolve_range(period, since, until), provider, model, app)
    events, next_cursor = list_events(session, principal.tenant_id, filters, limit=limit, cursor=cursor)
    return {"events": events, "next_cursor": next_cursor}


@router.get("/usage", summary="Usage totals from the hourly rollup")
def get_usage(
    session: SessionDep,
    principal: PrincipalDep,
    period: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    principal.require("read")
    window = resolve_range(period, since, until)
    if window is None:
        raise InvalidRequest("give a period (2026-10) or since/until")
    groups = [name.strip() for value in group_by or [] for name in value.split(",") if name.strip()]
    return {
        "period": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "group_by": groups,
        "rows": usage_totals(session, principal.tenant_id, window, groups),
    }
