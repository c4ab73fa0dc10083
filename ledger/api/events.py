"""Routes for usage events: ingest (`POST /v1/events`), listing, and rollup totals (`GET /v1/usage`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ledger.api.context import AppContext
from ledger.api.dependencies import PrincipalDep, SessionDep, get_context, get_principal
from ledger.auth import Principal
from ledger.errors import InvalidRequest, PayloadTooLarge
from ledger.events import EventRow, EventValidationError, decode_events, validate_events
from ledger.usage import EventFilter, list_events, resolve_range, usage_totals

router = APIRouter(prefix="/v1", tags=["usage"])
T = TypeVar("T")


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


def decoded(context: AppContext, principal: Principal, body: bytes, content_type: str) -> list[EventRow]:
    """The body's events validated into rows, or the HTTP error that says what is wrong with them."""
    try:
        rows = decode_events(
            body, content_type, tenant_id=principal.tenant_id, now=context.clock.now(), max_future=max_future(context)
        )
    except EventValidationError as error:
        if error.problems[0].field == "body":
            raise InvalidRequest(
                "the body is not valid JSON", details=[problem.as_dict() for problem in error.problems]
            ) from error
        raise refusal(context, error) from error
    return within_limits(context, rows)


def validated(context: AppContext, principal: Principal, items: list[Any]) -> list[EventRow]:
    """Decoded events (from another format's mapping) validated into rows, or the HTTP error."""
    within_limits(context, items)
    try:
        return validate_events(
            items, tenant_id=principal.tenant_id, now=context.clock.now(), max_future=max_future(context)
        )
    except EventValidationError as error:
        raise refusal(context, error) from error


def max_future(context: AppContext) -> timedelta:
    return timedelta(seconds=context.settings.max_future_skew_seconds)


def within_limits(context: AppContext, events: list[T]) -> list[T]:
    limit = context.settings.max_events_per_request
    if not events:
        raise InvalidRequest("the request holds no event")
    if len(events) > limit:
        raise PayloadTooLarge(f"at most {limit} events per request, got {len(events)}")
    return events


def refusal(context: AppContext, error: EventValidationError) -> InvalidRequest:
    context.metrics.events_rejected.inc(error.events)
    return InvalidRequest(
        f"{len(error.problems)} problem(s) in the events; nothing was stored",
        details=[problem.as_dict() for problem in error.problems],
    )


# Bodies above this size are decoded off the event loop, so small requests keep flowing meanwhile.
INLINE_DECODE_BYTES = 16_384


@router.post("/events", status_code=202, summary="Record usage events (object, array or NDJSON)")
async def post_events(request: Request) -> JSONResponse:
    # The hottest route: its two dependencies are resolved by hand, which spares FastAPI's
    # per-request dependency solving.
    context = await get_context(request)
    principal = await get_principal(request, context)
    principal.require("ingest")
    body = await read_body(request, context.settings.max_body_bytes)
    content_type = request.headers.get("content-type", "application/json")
    if len(body) < INLINE_DECODE_BYTES:
        rows = decoded(context, principal, body, content_type)
    else:
        rows = await run_in_threadpool(decoded, context, principal, body, content_type)
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
