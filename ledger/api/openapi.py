"""What the OpenAPI document says beyond what FastAPI reads off the routes: the error envelope and the statuses
each route answers with, the shape of query parameters that are checked by hand (so their messages stay
ours), and the bodies of the routes that read their request themselves. A contract test replays the
document against the app (tests/api/test_openapi_contract.py), so what is written here is what happens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field
from pydantic.config import JsonDict

from ledger.events.schema import EventIn
from ledger.queries.findings import KINDS, SEVERITIES, STATUSES
from ledger.queries.usage import GROUPS


class ErrorDetail(BaseModel):
    """One problem: for events, the event's position in the request and the field."""

    index: int | None = Field(default=None, description="Position of the event in the request (events only).")
    field: str | None = None
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine code: unauthorized, forbidden, not_found, invalid_request, …")
    message: str = Field(description="What is wrong, naming the field, parameter or line.")
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    """Every error of the API has this shape."""

    error: ErrorInfo


_ERRORS: dict[int, str] = {
    400: "The body could not be read.",
    401: "No key, or a key that is unknown or revoked.",
    403: "The key's role may not do this.",
    404: "Nothing with this id for the key's tenant (another tenant's data is not found, never shown).",
    413: "The body is over the size limit, or holds more events than one request may.",
    415: "A content type this route does not read.",
    422: "Invalid parameters or body; `details` lists every problem. Nothing was stored.",
    429: "Too many wrong keys came from this address lately; retry after `Retry-After` seconds.",
    503: "The database is unreachable; nothing was stored. Retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given error statuses, each with the error envelope."""
    return {
        status: {
            "model": ErrorBody,
            "description": _ERRORS[status],
            **({"headers": _RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }


KEYED = error_responses(401, 403, 422, 429, 503)
"""What any route that takes a key may answer besides its success."""

PERIOD_PATTERN = r"^\s*[0-9]{4}-(0[1-9]|1[0-2])\s*$"
PERIOD: JsonDict = {"pattern": PERIOD_PATTERN, "examples": ["2026-10"]}
"""A calendar month in UTC, `YYYY-MM`."""
INSTANT: JsonDict = {"format": "date-time", "examples": ["2026-10-05T00:00:00Z"]}
"""An RFC 3339 instant with its UTC offset."""
FINDING_KINDS: JsonDict = {"enum": list(KINDS)}
FINDING_STATUSES: JsonDict = {"enum": list(STATUSES)}
FINDING_SEVERITIES: JsonDict = {"enum": list(SEVERITIES)}
_GROUP = "|".join(GROUPS)
GROUP_BY: JsonDict = {"items": {"type": "string", "pattern": rf"^\s*({_GROUP})\s*(,\s*({_GROUP})\s*)*$"}}
"""Dimensions to group by, repeated or comma-separated."""


def json_or_ndjson_body(description: str, item: dict[str, Any] | None = None, min_items: int = 0) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: one `item` (a JSON object unless given), an array
    of at least `min_items` of them, or NDJSON (one per line)."""
    item = item or {"type": "object"}
    array = {"type": "array", "items": item, "minItems": min_items}
    return {
        "requestBody": {
            "required": True,
            "description": f"{description} It may be gzip-compressed (Content-Encoding: gzip).",
            "content": {
                "application/json": {"schema": {"anyOf": [item, array]}},
                "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON object per line."}},
            },
        }
    }


def events_body(description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads usage events itself: one event, an array, or NDJSON."""
    return json_or_ndjson_body(description, {"$ref": "#/components/schemas/UsageEvent"}, min_items=1)


def otlp_body(protobuf: str) -> dict[str, Any]:
    """`openapi_extra` for OTLP/HTTP's ExportTraceServiceRequest, binary protobuf or its JSON mapping."""
    return {
        "requestBody": {
            "required": True,
            "description": "An OTLP/HTTP ExportTraceServiceRequest, optionally gzip-compressed (Content-Encoding).",
            "content": {
                protobuf: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    }


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """The schemas the hand-written parts above refer to; query parameters without FastAPI's `null` (a query
    string cannot send one: leaving the parameter out is how to say none)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                members = [member for member in schema.get("anyOf", []) if member != {"type": "null"}]
                if len(members) == 1 and len(members) < len(schema["anyOf"]):
                    del schema["anyOf"]
                    schema.update(members[0])
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    event = EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(event.pop("$defs", {}))
    schemas["UsageEvent"] = {**event, "title": "UsageEvent"}
    return document


# Query parameters several routes take, checked by hand (see `ledger.queries.usage.resolve_range`, `instant`).
Month = Annotated[
    str, Query(description="A calendar month in UTC: YYYY-MM, years 1970 to 9998.", json_schema_extra=PERIOD)
]
AnyMonth = Annotated[
    str | None, Query(description="A calendar month in UTC: YYYY-MM, years 1970 to 9998.", json_schema_extra=PERIOD)
]
"""`Month`, or every month when left out."""
Since = Annotated[str | None, Query(description="With `until`, instead of `period`.", json_schema_extra=INSTANT)]
Until = Annotated[str | None, Query(description="Exclusive end, with `since`.", json_schema_extra=INSTANT)]
