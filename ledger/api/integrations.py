"""Routes where usage arrives in other tools' formats: LiteLLM's generic API logger and OTLP/HTTP traces.

Both take the same keys (ingest or admin), limits (413 past the body size or event count), validation
(`ledger.events.schema`) and idempotent group-commit writes as `POST /v1/events`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ledger.access.auth import Principal
from ledger.api.context import AppContext
from ledger.api.dependencies import ContextDep, PrincipalDep, known_query_only
from ledger.api.events import Accepted, json_content_type, max_future, read_body, store, write
from ledger.api.openapi import KEYED, error_responses, json_or_ndjson_body, otlp_body
from ledger.errors import InvalidRequest, PayloadTooLarge, TokenLedgerError, UnsupportedMediaType
from ledger.events.schema import (
    MAX_PROBLEMS,
    EventProblem,
    EventRow,
    EventValidationError,
    TooManyEvents,
    parse_body,
    validate_events,
)
from ledger.integrations import litellm_payload, otlp
from ledger.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["integrations"], responses=KEYED, dependencies=[Depends(known_query_only)])

PROTOBUF = "application/x-protobuf"
MANY = 50  # validate bigger requests off the event loop


class Rejection(BaseModel):
    index: int = Field(description="The payload's position in the request, from 0.")
    field: str = Field(description="Where in the payload (or its event) the problem is.")
    message: str


class UndecodableTraces(TokenLedgerError):
    """OTLP/HTTP asks for 400 when a body cannot be decoded (opentelemetry-proto docs/specification.md)."""

    status = 400
    code = "invalid_request"


class LiteLLMAccepted(Accepted):
    """Answered once the events of the payloads that could be recorded are committed."""

    rejected: list[Rejection] = Field(
        default=[],
        description="Present when some payloads could not be recorded: their problems (the first 100), by index "
        "in the request; the others were stored. LiteLLM does not retry a 4xx answer, so one bad payload does not "
        "refuse its neighbours.",
    )
    rejected_count: int = Field(default=0, description="Present with `rejected`: how many problems in all.")


@router.post(
    "/integrations/litellm",
    status_code=202,
    summary="Record LiteLLM calls: the generic API logger's standard logging payloads (object, array or NDJSON)",
    response_model=LiteLLMAccepted,
    responses=error_responses(400, 413, 415),
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
    principal.require(Role.INGEST)
    content_type = json_content_type(request)
    body = await read_body(request, context.settings.max_body_bytes)
    payloads = _litellm_payloads(body, content_type, context.settings.max_events_per_request)

    def rows() -> tuple[list[EventRow], list[EventProblem]]:
        mapped = litellm_payload.events_from_payloads(payloads, app=app, account=account)
        now, skew = context.clock.now(), max_future(context)
        problems, valid = list(mapped.problems), []
        for index, event in mapped.events:
            try:
                valid.extend(validate_events([event], tenant_id=principal.tenant_id, now=now, max_future=skew))
            except EventValidationError as error:
                problems.extend(EventProblem(index, problem.field, problem.message) for problem in error.problems)
        problems.sort(key=lambda problem: problem.index)
        return valid, problems

    valid, problems = rows() if len(payloads) < MANY else await run_in_threadpool(rows)
    refused = len({problem.index for problem in problems})
    if refused:
        context.metrics.events_rejected.inc(refused)
    if problems and not valid:
        raise InvalidRequest(
            f"{refused} LiteLLM payload(s) cannot be recorded; nothing was stored",
            details=[problem.as_dict() for problem in problems[:MAX_PROBLEMS]],
        )
    answer: dict[str, Any] = await write(context, valid) if valid else {"accepted": 0, "duplicates": 0}
    if problems:
        answer["rejected"] = [problem.as_dict() for problem in problems[:MAX_PROBLEMS]]
        answer["rejected_count"] = len(problems)
    return JSONResponse(answer, status_code=202)


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
    principal.require(Role.INGEST)
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


def _litellm_payloads(body: bytes, content_type: str, limit: int) -> list[Any]:
    """A payload, a JSON array of them, or NDJSON (which LiteLLM sends as application/json); 413 past `limit`
    payloads, counted before they are mapped."""
    try:
        try:
            return parse_body(body, content_type, max_items=limit)
        except EventValidationError as error:
            if "ndjson" not in content_type and body.strip().count(b"\n"):
                try:
                    return parse_body(body, "application/x-ndjson", max_items=limit)
                except EventValidationError:
                    pass
            raise InvalidRequest(
                "the body is not valid JSON", details=[problem.as_dict() for problem in error.problems]
            ) from error
    except TooManyEvents as error:
        raise PayloadTooLarge(f"at most {limit} payloads per request; the body holds more") from error
