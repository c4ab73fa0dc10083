"""Usage event schema, version 1: what applications push, validated into rows ready to store.

Token semantics follow the OpenTelemetry GenAI conventions: `input_tokens` counts ALL input tokens, cache
reads and cache writes included; `output_tokens` includes reasoning tokens. Pure: the clock is passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from difflib import get_close_matches
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ledger.normalizers import NormalizedUsage, UnsupportedProviderError, UsageShapeError, normalize_usage

INTEGER_MAX = 2**31 - 1  # PostgreSQL's integer (milliseconds, max_tokens, web searches)
TOKENS_MAX = 10**12
"""A trillion tokens: far beyond any request, and far enough below bigint's limit that no rollup's sum over a
busy hour can overflow it (which would refuse every later event of that hour)."""
REPORTED_COST_LIMIT = Decimal(1_000_000)
"""USD: no request costs this much; rollup sums stay far inside their numeric(20, 10) columns."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No LLM request happened before this; an earlier `occurred_at` is a bad clock or a bad unit, and would
create a partition for it."""
TokenCount = Annotated[StrictInt, Field(ge=0, le=TOKENS_MAX)]
Milliseconds = Annotated[StrictInt, Field(ge=0, le=INTEGER_MAX)]
Label = Annotated[str, Field(min_length=1, max_length=256)]

ERROR_TYPES = ("rate_limit", "timeout", "server_error", "invalid_request", "auth", "content_filter", "other")
SERVICE_TIERS = ("standard", "batch", "flex", "priority")
MAX_TAGS = 32
_EXAMPLE_TIME = "2026-10-05T14:03:11Z"
MAX_FUTURE = timedelta(minutes=5)  # how far ahead of the clock an event's occurred_at may be, by default


_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class EventIn(BaseModel):
    """One LLM request's usage as the client sends it (schema version 1)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    occurred_at: AwareDatetime
    provider: Annotated[str, Field(min_length=1, max_length=64, pattern=_SLUG.pattern)]
    account: Label | None = None
    api_key_id: Label | None = None
    request_model: Label
    response_model: Label | None = None
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    cache_read_input_tokens: TokenCount = 0
    cache_creation_input_tokens: TokenCount = 0
    reasoning_tokens: TokenCount = 0
    system_prompt_tokens: TokenCount | None = None
    max_tokens: Annotated[StrictInt, Field(gt=0, le=INTEGER_MAX)] | None = None
    finish_reason: Annotated[str, Field(max_length=64)] | None = None
    status_code: Annotated[StrictInt, Field(ge=100, le=599)] = 200
    error_type: Annotated[str, Field(max_length=64)] | None = None
    latency_ms: Milliseconds | None = None
    ttft_ms: Milliseconds | None = None
    stream: StrictBool = False
    service_tier: Annotated[str, Field(max_length=32)] | None = None
    region: Label | None = None
    app: Label | None = None
    user: Label | None = None
    tags: dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=1024)]] | None = None
    provider_request_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    reported_cost: Decimal | None = None
    usage: dict[str, Any] | None = None

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _not_a_number(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # pydantic would read a Unix time, guessing seconds or milliseconds
            raise ValueError(f"must be an RFC 3339 time with its offset, such as {_EXAMPLE_TIME}, not a number")
        return value

    @field_validator("tags")
    @classmethod
    def _bounded_tags(cls, tags: dict[str, str] | None) -> dict[str, str] | None:
        if tags is not None and len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags, got {len(tags)}")
        return tags

    @field_validator("error_type")
    @classmethod
    def _known_error_type(cls, value: str | None) -> str | None:
        if value is not None and value not in ERROR_TYPES:
            raise ValueError(f"must be one of {', '.join(ERROR_TYPES)}")
        return value

    @field_validator("service_tier")
    @classmethod
    def _known_tier(cls, value: str | None) -> str | None:
        if value is not None and value not in SERVICE_TIERS:
            raise ValueError(f"must be one of {', '.join(SERVICE_TIERS)}")
        return value

    @field_validator("reported_cost")
    @classmethod
    def _finite_cost(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not value.is_finite():
            raise ValueError("must be a finite decimal")
        return value


@dataclass(frozen=True, slots=True)
class EventProblem:
    """One reason an event was rejected: which event (0-based), which field, and why."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class EventValidationError(ValueError):
    """The request's events are invalid; nothing of the request is written."""

    def __init__(self, problems: Sequence[EventProblem], *, events: int | None = None) -> None:
        self.problems = list(problems)
        self.events = events if events is not None else len({problem.index for problem in self.problems})
        """How many events the refused request held (all of them are refused)."""
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"event {first.index}: {first.field}: {first.message}{more}")


class EventRow(NamedTuple):
    """A validated event, its tokens normalized, ready to store. Field order is the column order of COPY."""

    tenant_id: int
    occurred_at: datetime
    event_id: str
    received_at: datetime
    provider: str
    account: str | None
    api_key_id: str | None
    request_model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cache_creation_1h_input_tokens: int
    reasoning_tokens: int
    web_search_requests: int
    system_prompt_tokens: int | None
    max_tokens: int | None
    finish_reason: str | None
    status_code: int
    error_type: str | None
    latency_ms: int | None
    ttft_ms: int | None
    stream: bool
    service_tier: str | None
    region: str | None
    app: str | None
    user_label: str | None
    tags: dict[str, str] | None
    provider_request_id: str | None
    reported_cost: Decimal | None
    usage_raw: dict[str, Any] | None


COLUMNS: tuple[str, ...] = EventRow._fields
_EVENT_LIST = TypeAdapter(list[EventIn])
# Fields that may hold a JSON number with a fraction, which must reach Decimal with every digit: a body
# that names one is decoded by the exact path (pydantic's JSON parser reads fractions as floats).
_DECIMAL_FIELDS = (b'"reported_cost"', b'"usage"')


def is_ndjson(content_type: str) -> bool:
    return "ndjson" in content_type or "jsonlines" in content_type


def decode_events(
    body: bytes, content_type: str, *, tenant_id: int, now: datetime, max_future: timedelta = MAX_FUTURE
) -> list[EventRow]:
    """A request body (one JSON object, an array, or NDJSON) validated into rows; raise EventValidationError
    naming every problem. Bodies of plain events are parsed and validated in one pass by pydantic-core;
    anything else, and any body with a problem, goes the exact path (`parse_body`, `validate_events`)."""
    if b"\\u0000" not in body and not any(field in body for field in _DECIMAL_FIELDS):
        if is_ndjson(content_type):
            array = b"[" + b",".join(line for line in body.splitlines() if line.strip()) + b"]"
        else:
            array = body if body.lstrip()[:1] == b"[" else b"[" + body + b"]"
        try:
            events = _EVENT_LIST.validate_json(array)
        except ValidationError:
            pass
        else:
            return _rows(events, events, tenant_id=tenant_id, now=now, max_future=max_future)
    return validate_events(parse_body(body, content_type), tenant_id=tenant_id, now=now, max_future=max_future)


def parse_body(body: bytes, content_type: str) -> list[Any]:
    """Decode a request body: one JSON object, a JSON array of objects, or NDJSON. Numbers with a fraction
    are read as Decimal so money keeps every digit."""
    if is_ndjson(content_type):
        items = []
        for number, line in enumerate(body.splitlines()):
            if line.strip():
                try:
                    items.append(json.loads(line, parse_float=Decimal))
                except (ValueError, RecursionError) as error:
                    raise EventValidationError(
                        [EventProblem(len(items), "body", f"line {number + 1}: invalid JSON: {_json_error(error)}")]
                    ) from error
        return items
    try:
        decoded = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError) as error:
        raise EventValidationError([EventProblem(0, "body", f"invalid JSON: {_json_error(error)}")]) from error
    return decoded if isinstance(decoded, list) else [decoded]


def _json_error(error: ValueError | RecursionError) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


MAX_USAGE_DEPTH = 16
"""How deeply a raw usage object may nest: providers' nest three or four levels."""


def _too_deep(value: Any, limit: int = MAX_USAGE_DEPTH) -> bool:
    """Whether `value` (parsed JSON) nests objects or arrays more than `limit` levels deep; without recursion."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return False


def json_text(value: Any) -> str:
    """JSON text for an event or a part of one: Decimals as exact JSON numbers (the standard encoder refuses
    them, and a float would round them), datetimes as RFC 3339 strings, no NaN."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)  # the common case, in C
    except TypeError:
        return _exact_json(value)


def _exact_json(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(key))}:{_exact_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact_json(item) for item in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return str(value)
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    return json.dumps(value, allow_nan=False)


def validate_events(
    items: Sequence[Any], *, tenant_id: int, now: datetime, max_future: timedelta = MAX_FUTURE
) -> list[EventRow]:
    """Validate every item; raise EventValidationError listing every problem of every event."""
    try:
        events = _EVENT_LIST.validate_python(items)
    except ValidationError:
        events = None  # at least one item is malformed: validate one by one to name every problem
    return _rows(items, events, tenant_id=tenant_id, now=now, max_future=max_future, check_nul=_holds_nul(items))


def _holds_nul(items: Sequence[Any]) -> bool:
    """Whether some string or key holds a NUL character (JSON's \\u0000), which PostgreSQL's text and jsonb
    cannot store: one encoding of the batch, in C; `nul_path` then names the place."""
    return "\\u0000" in json.dumps(items, default=str)


_NUL_MESSAGE = "must not contain a NUL character (\\u0000): PostgreSQL cannot store it"


def nul_path(value: Any, path: str) -> str | None:
    """The path of the first string or key in `value` that holds a NUL character, if any."""
    if isinstance(value, str):
        return (path or "event") if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = json.dumps(str(key))[1:-1]  # a NUL in a key shows as \u0000
            inner = f"{path}.{name}" if path else name
            if "\x00" in str(key):
                return inner
            if (found := nul_path(item, inner)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            if (found := nul_path(item, f"{path}[{position}]")) is not None:
                return found
    return None


def _rows(
    items: Sequence[Any],
    events: Sequence[EventIn] | None,
    *,
    tenant_id: int,
    now: datetime,
    max_future: timedelta,
    check_nul: bool = False,
) -> list[EventRow]:
    problems: list[EventProblem] = []
    rows: list[EventRow] = []
    for index, item in enumerate(items):
        if check_nul and (path := nul_path(item, "")) is not None:
            problems.append(EventProblem(index, path, _NUL_MESSAGE))
        if events is not None:
            event = events[index]
        else:
            try:
                event = EventIn.model_validate(item)
            except ValidationError as error:
                problems.extend(_problems_from(error, index))
                continue
        if event.usage is not None and _too_deep(event.usage):
            problems.append(EventProblem(index, "usage", f"nests more than {MAX_USAGE_DEPTH} levels deep"))
            continue
        try:
            rows.append(_to_row(event, tenant_id=tenant_id, received_at=now, max_future=max_future))
        except EventValidationError as error:
            problems.extend(EventProblem(index, p.field, p.message) for p in error.problems)
    if problems:
        raise EventValidationError(problems, events=len(items))
    return rows


def _problems_from(error: ValidationError, index: int) -> Iterable[EventProblem]:
    for detail in error.errors(include_url=False):
        field = ".".join(str(part) for part in detail["loc"]) or "event"
        yield EventProblem(index, field, _message(detail["type"], detail["loc"], detail.get("input"), detail["msg"]))


def _message(kind: str, location: tuple[int | str, ...], value: Any, message: str) -> str:
    """Pydantic's message for a problem, in the schema's words where it says something clearer: the field a
    misspelt name was meant to be, the slug a provider must be, the time format."""
    if kind == "model_type":
        return "each event must be a JSON object"
    if kind == "extra_forbidden":
        guess = get_close_matches(str(location[0]), EventIn.model_fields, n=1, cutoff=0.8) if len(location) == 1 else []
        return f"unknown field; did you mean {guess[0]!r}?" if guess else "unknown field"
    if location == ("provider",) and kind == "string_pattern_mismatch":
        hint = f" ({value.lower()!r}?)" if isinstance(value, str) and _SLUG.fullmatch(value.lower()) else ""
        return f"must be a lower-case slug such as 'openai' or 'anthropic'{hint}"
    if location == ("occurred_at",) and kind == "timezone_aware":
        return f"must carry its UTC offset (RFC 3339): {_EXAMPLE_TIME} or 2026-10-05T16:03:11+02:00"
    if location == ("occurred_at",) and kind.startswith("datetime"):
        return f"must be an RFC 3339 time with its offset, such as {_EXAMPLE_TIME}"
    return message.removeprefix("Value error, ")  # our own validators' words, without pydantic's label


def _normalized(provider: str, usage: dict[str, Any]) -> NormalizedUsage:
    try:
        return normalize_usage(provider, usage)
    except UnsupportedProviderError as error:
        raise _problem("usage", str(error)) from error
    except UsageShapeError as error:
        raise _problem(getattr(error, "path", "usage"), str(error)) from error


def _problem(field: str, message: str) -> EventValidationError:
    return EventValidationError([EventProblem(0, field, message)])


def _to_row(event: EventIn, *, tenant_id: int, received_at: datetime, max_future: timedelta) -> EventRow:
    event_id = event.event_id or event.provider_request_id
    if event_id is None:
        raise _problem("event_id", "required unless provider_request_id is given")
    if event.occurred_at < EARLIEST:
        raise _problem("occurred_at", f"is before {EARLIEST.date()}, earlier than any LLM request")
    if event.occurred_at > received_at + max_future:
        allowed = f"{max_future.total_seconds():g} seconds"
        raise _problem("occurred_at", f"is more than {allowed} in the future ({event.occurred_at.isoformat()})")

    if event.usage is None:
        if event.input_tokens is None or event.output_tokens is None:
            missing = "input_tokens" if event.input_tokens is None else "output_tokens"
            raise _problem(missing, f"required unless a usage object is given (provider {event.provider!r})")
        input_tokens, output_tokens = event.input_tokens, event.output_tokens
        cache_read, cache_creation = event.cache_read_input_tokens, event.cache_creation_input_tokens
        reasoning, cache_1h, web_search = event.reasoning_tokens, 0, 0
        reported_cost, service_tier = event.reported_cost, event.service_tier
    else:
        normalized = _normalized(event.provider, event.usage)
        given = event.model_fields_set

        def pick(name: str, fallback: int) -> int:
            value = getattr(event, name)
            return value if name in given and value is not None else fallback

        input_tokens = pick("input_tokens", normalized.input_tokens)
        output_tokens = pick("output_tokens", normalized.output_tokens)
        cache_read = pick("cache_read_input_tokens", normalized.cache_read_input_tokens)
        cache_creation = pick("cache_creation_input_tokens", normalized.cache_creation_input_tokens)
        reasoning = pick("reasoning_tokens", normalized.reasoning_tokens)
        cache_1h = min(normalized.cache_creation_1h_input_tokens, cache_creation)
        web_search = normalized.web_search_requests
        reported_cost = event.reported_cost if event.reported_cost is not None else normalized.reported_cost
        service_tier = event.service_tier or normalized.service_tier
        if max(input_tokens, output_tokens, cache_read, cache_creation, reasoning) > TOKENS_MAX:
            raise _problem("usage", f"holds a token count above {TOKENS_MAX:,}, more than any request uses")
        if web_search > INTEGER_MAX:
            raise _problem("usage", f"holds a web search count above {INTEGER_MAX}, more than can be stored")
    if reported_cost is not None and not 0 <= reported_cost < REPORTED_COST_LIMIT:
        field = "reported_cost" if event.reported_cost is not None else "usage"
        raise _problem(field, f"reported cost {reported_cost} USD is not between 0 and {REPORTED_COST_LIMIT:,}")
    if cache_read + cache_creation > input_tokens:
        raise _problem(
            "cache_read_input_tokens",
            f"cache_read_input_tokens + cache_creation_input_tokens ({cache_read + cache_creation}) "
            f"exceed input_tokens ({input_tokens})",
        )
    if reasoning > output_tokens:
        raise _problem("reasoning_tokens", f"reasoning_tokens ({reasoning}) exceed output_tokens ({output_tokens})")

    return EventRow(  # positional, in field order: a third cheaper than by keyword, on the hottest path
        tenant_id,
        event.occurred_at.astimezone(UTC),
        event_id,
        received_at,
        event.provider,
        event.account,
        event.api_key_id,
        event.request_model,
        event.response_model or event.request_model,
        input_tokens,
        output_tokens,
        cache_read,
        cache_creation,
        cache_1h,
        reasoning,
        web_search,
        event.system_prompt_tokens,
        event.max_tokens,
        event.finish_reason,
        event.status_code,
        event.error_type,
        event.latency_ms,
        event.ttft_ms,
        event.stream,
        service_tier,
        event.region,
        event.app,
        event.user,
        event.tags,
        event.provider_request_id,
        reported_cost,
        event.usage,
    )
