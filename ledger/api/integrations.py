"""Routes where usage arrives in other tools' formats: LiteLLM's generic API logger and OTLP/HTTP traces.

Both take the same keys (ingest or admin), limits (413 past the body size or event count), validation
(`ledger.events`) and idempotent group-commit writes as `POST /v1/events`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ledger import litellm_payload, otlp
from ledger.api.context import AppContext
from ledger.api.dependencies import ContextDep, PrincipalDep, known_query_only
from ledger.api.events import Accepted, max_future, read_body, store, validated
from ledger.api.openapi import KEYED, error_responses, json_or_ndjson_body, otlp_body
from ledger.auth import Principal
from ledger.errors import InvalidRequest, PayloadTooLarge, TokenLedgerError, UnsupportedMediaType
from ledger.events import EventRow, EventValidationError, parse_body, validate_events

router = APIRouter(prefix="/v1", tags=["integrations"], responses=KEYED, dependencies=[Depends(known_query_only)])

PROTOBUF = "application/x-protobuf"
MANY = 50  # validate bigger requests off the event loop


class UndecodableTraces(TokenLedgerError):
    """OTLP/HTTP asks for 400 when a body cannot be decoded (opentelemetry-proto docs/specification.md)."""

    status = 400
    code = "invalid_request"


@router.post(
    "/integrations/litellm",
    status_code=202,
    summary="Record LiteLLM calls: the generic API logger's standard logging payloads (object, array or NDJSON)",
    response_model=Accepted,
    responses=error_responses(413, 415),
    openapi_extra=json_or_ndjson_body(
        "LiteLLM standard logging payloads (one object, an array, or NDJSON), as its generic API logger sends them."
    ),
)
async def post_litellm(
    request: Request,
    context: ContextDep,
    principal: PrincipalDep,
    app: str | None = None,
    account: str | None = None,
) -> JSONResponse:
    principal.require("ingest")
    body = await read_body(request, context.settings.max_body_bytes)
    payloads = _litellm_payloads(body, request.headers.get("content-type", "application/json"))
    limit = context.settings.max_events_per_request
    if len(payloads) > limit:
        raise PayloadTooLarge(f"at most {limit} payloads per request, got {len(payloads)}")

    def rows() -> list[EventRow]:
        try:
            events, _ = litellm_payload.events_from_payloads(payloads, app=app, account=account)
        except EventValidationError as error:
            context.metrics.events_rejected.inc(len(payloads))
            raise InvalidRequest(
                f"{len(error.problems)} LiteLLM payload(s) cannot be mapped to usage events; nothing was stored",
                details=[problem.as_dict() for problem in error.problems],
            ) from error
        return validated(context, principal, events) if events else []

    mapped = rows() if len(payloads) < MANY else await run_in_threadpool(rows)
    if not mapped:
        return JSONResponse({"accepted": 0, "duplicates": 0}, status_code=202)
    return await store(context, mapped)


@router.post(
    "/traces",
    summary="Record the GenAI spans of an OTLP/HTTP trace export (protobuf or JSON)",
    responses={
        200: {
            "description": "The OTLP export response; spans that could not be recorded are counted as rejected.",
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **error_responses(400, 413, 415),
    },
    openapi_extra=otlp_body(PROTOBUF),
)
async def post_traces(request: Request, context: ContextDep, principal: PrincipalDep) -> Response:
    principal.require("ingest")
    limit = context.settings.max_body_bytes
    body = await read_body(request, limit, undecodable=UndecodableTraces)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (PROTOBUF, "application/json"):
        raise UnsupportedMediaType(f"Content-Type must be {PROTOBUF} or application/json, got {content_type!r}")
    protobuf = content_type == PROTOBUF
    try:
        export = otlp.decode_request(body, protobuf=protobuf)
    except otlp.OtlpDecodeError as error:
        raise UndecodableTraces(f"not an OTLP trace export request: {error}") from error

    def accept() -> tuple[list[EventRow], list[str]]:
        return _trace_rows(context, principal, otlp.events_from_request(export))

    many = sum(len(scope.spans) for resource in export.resource_spans for scope in resource.scope_spans) >= MANY
    rows, rejections = await run_in_threadpool(accept) if many else accept()
    if rows:
        await store(context, rows)
    answer = otlp.export_response(rejections)
    if protobuf:
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    return JSONResponse(otlp.response_json(answer))


def _trace_rows(
    context: AppContext, principal: Principal, mapped: otlp.TraceEvents
) -> tuple[list[EventRow], list[str]]:
    """Rows of the valid GenAI spans; each invalid one is rejected on its own (an OTLP partial success)."""
    limit = context.settings.max_events_per_request
    if len(mapped.events) > limit:
        raise PayloadTooLarge(f"at most {limit} GenAI spans per request, got {len(mapped.events)}")
    rejections = [rejection.describe() for rejection in mapped.rejected]
    rows: list[EventRow] = []
    now, skew = context.clock.now(), max_future(context)
    for event in mapped.events:
        try:
            rows.extend(validate_events([event], tenant_id=principal.tenant_id, now=now, max_future=skew))
        except EventValidationError as error:
            problem = error.problems[0]
            rejections.append(f"event {event['event_id']}: {problem.field}: {problem.message}")
    if rejections:
        context.metrics.events_rejected.inc(len(rejections))
    return rows, rejections


def _litellm_payloads(body: bytes, content_type: str) -> list[Any]:
    """A payload, a JSON array of them, or NDJSON (which LiteLLM sends as application/json)."""
    try:
        return parse_body(body, content_type)
    except EventValidationError as error:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) > 1 and "ndjson" not in content_type:
            try:
                return parse_body(body, "application/x-ndjson")
            except EventValidationError:
                pass
        raise InvalidRequest(
            "the body is not valid JSON", details=[problem.as_dict() for problem in error.problems]
        ) from error
