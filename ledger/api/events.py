"""Routes for usage events: ingest (`POST /v1/events`), listing, and rollup totals (`GET /v1/usage`)."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ledger.access.auth import Principal
from ledger.api.context import AppContext
from ledger.api.dependencies import (
    BEARER_KEY,
    PrincipalDep,
    SessionDep,
    get_context,
    get_principal,
    known_query_only,
    refuse_unknown_query,
)
from ledger.api.openapi import GROUP_BY, KEYED, AnyMonth, Since, Until, error_responses, events_body
from ledger.api.responses import Events, Usage, ok
from ledger.errors import InvalidRequest, PayloadTooLarge, TokenLedgerError, UndecodableBody, UnsupportedMediaType
from ledger.events.schema import (
    EventRow,
    EventValidationError,
    TooManyEvents,
    decode_events,
    is_json_media_type,
)
from ledger.queries.usage import MAX_PAGE, EventFilter, instant, list_events, resolve_range, usage_totals
from ledger.vocabulary import Role


class Accepted(BaseModel):
    """Answered once the events are committed."""

    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events whose id had been stored before (retries); not counted again.")


router = APIRouter(prefix="/v1", tags=["usage"], responses=KEYED)
T = TypeVar("T")


async def read_body(request: Request, limit: int, *, undecodable: type[TokenLedgerError] = UndecodableBody) -> bytes:
    """The request body, decompressed when its Content-Encoding is gzip (as OpenTelemetry collectors and most
    HTTP clients can send it); 413 as soon as it, or what it decompresses to, passes `limit` bytes; 415 for
    another encoding; `undecodable` for a body that is not gzip after all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding")
    if encoding is None:
        return body
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return _gunzip(body, limit, undecodable)
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip or none")
    return body


def _gunzip(body: bytes, limit: int, undecodable: type[TokenLedgerError]) -> bytes:
    """A gzip body, every member of it decompressed (RFC 1952 allows several, one after another); 413 as soon as
    it would pass `limit` bytes; `undecodable` for bytes after the last member that are not gzip."""
    parts: list[bytes] = []
    size, rest = 0, body
    while True:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            data = decompressor.decompress(rest, limit + 1 - size)
        except zlib.error as error:
            where = "" if rest is body else f" after {len(body) - len(rest)} bytes of valid gzip"
            raise undecodable(f"the body is not valid gzip{where}: {error}") from error
        size += len(data)
        if size > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body is over {limit} bytes")
        if not decompressor.eof:
            raise undecodable("the gzip body is truncated")
        parts.append(data)
        rest = decompressor.unused_data
        if not rest:
            return b"".join(parts)


async def write(context: AppContext, rows: list[EventRow]) -> dict[str, int]:
    """Write through the group-commit writer; return the counts once committed."""
    result = await context.writer.submit(rows)
    context.metrics.events_accepted.inc(result.accepted)
    context.metrics.events_duplicate.inc(result.duplicates)
    return {"accepted": result.accepted, "duplicates": result.duplicates}


async def store(context: AppContext, rows: list[EventRow]) -> JSONResponse:
    """Write through the group-commit writer; answer only after the commit."""
    return JSONResponse(await write(context, rows), status_code=202)


def decoded(context: AppContext, principal: Principal, body: bytes, content_type: str) -> list[EventRow]:
    """The body's events validated into rows, or the HTTP error that says what is wrong with them."""
    try:
        rows = decode_events(
            body,
            content_type,
            tenant_id=principal.tenant_id,
            now=context.clock.now(),
            max_future=max_future(context),
            max_events=context.settings.max_events_per_request,
        )
    except TooManyEvents as error:
        raise PayloadTooLarge(str(error)) from error
    except EventValidationError as error:
        if error.problems[0].field == "body":
            raise InvalidRequest(
                "the body is not valid JSON", details=[problem.as_dict() for problem in error.problems]
            ) from error
        raise refusal(context, error) from error
    return within_limits(context, rows)


def json_content_type(request: Request) -> str:
    """The request's Content-Type, which must name JSON or NDJSON (415 otherwise); none means JSON."""
    content_type = request.headers.get("content-type", "application/json")
    if not is_json_media_type(content_type):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json or application/x-ndjson, got {content_type[:100]!r}"
        )
    return content_type


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
    listed = "" if error.total == len(error.problems) else f"; the first {len(error.problems)} are listed"
    return InvalidRequest(
        f"{error.total} problem(s) in the events; nothing was stored{listed}",
        details=[problem.as_dict() for problem in error.problems],
    )


NO_QUERY: frozenset[str] = frozenset()

# Bodies above this size are decoded off the event loop, so small requests keep flowing meanwhile.
INLINE_DECODE_BYTES = 16_384


@router.post(
    "/events",
    status_code=202,
    summary="Record usage events (object, array or NDJSON)",
    response_model=Accepted,
    responses=error_responses(400, 413, 415),
    openapi_extra={
        **events_body("Usage events, schema version 1: one object, an array, or NDJSON; at most 10,000 events."),
        "security": [{BEARER_KEY.scheme_name: []}],
    },
)
async def post_events(request: Request) -> JSONResponse:
    # The hottest route: its two dependencies are resolved by hand, which spares FastAPI's
    # per-request dependency solving.
    context = await get_context(request)
    principal = await get_principal(request, context)
    principal.require(Role.INGEST)
    refuse_unknown_query(request, NO_QUERY)
    content_type = json_content_type(request)
    body = await read_body(request, context.settings.max_body_bytes)
    if len(body) < INLINE_DECODE_BYTES:
        rows = decoded(context, principal, body, content_type)
    else:
        rows = await run_in_threadpool(decoded, context, principal, body, content_type)
    return await store(context, rows)


@router.get(
    "/events",
    summary="List events, newest last, with keyset pagination",
    response_model=None,
    responses=ok(Events),
    dependencies=[Depends(known_query_only)],
)
def get_events(
    session: SessionDep,
    principal: PrincipalDep,
    period: AnyMonth = None,
    since: Since = None,
    until: Until = None,
    provider: str | None = None,
    model: str | None = None,
    app: str | None = None,
    account: Annotated[str | None, Query(description="Only this account (empty: events without one).")] = None,
    api_key_id: Annotated[
        str | None, Query(description="Only this provider key id (empty: events without one).")
    ] = None,
    limit: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": MAX_PAGE})] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    principal.require(Role.READ)
    filters = EventFilter(
        resolve_range(period, instant("since", since), instant("until", until)),
        provider,
        model,
        app,
        account=account,
        api_key_id=api_key_id,
    )
    events, next_cursor = list_events(session, principal.tenant_id, filters, limit=limit, cursor=cursor)
    return {"events": events, "next_cursor": next_cursor}


@router.get(
    "/usage",
    summary="Usage totals from the hourly rollup",
    response_model=None,
    responses=ok(Usage),
    dependencies=[Depends(known_query_only)],
)
def get_usage(
    session: SessionDep,
    principal: PrincipalDep,
    period: AnyMonth = None,
    since: Since = None,
    until: Until = None,
    group_by: Annotated[list[str] | None, Query(json_schema_extra=GROUP_BY)] = None,
) -> dict[str, Any]:
    principal.require(Role.READ)
    window = resolve_range(period, instant("since", since), instant("until", until))
    if window is None:
        raise InvalidRequest("give a period (2026-10) or since/until")
    groups = [name.strip() for value in group_by or [] for name in value.split(",") if name.strip()]
    return {
        "period": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "group_by": groups,
        "rows": usage_totals(session, principal.tenant_id, window, groups),
    }
