"""Usage event schema, version 1: what applications push, validated into rows ready to store.

Token semantics follow the OpenTelemetry GenAI conventions: `input_tokens` counts ALL input tokens, cache
reads and cache writes included; `output_tokens` includes reasoning tokens. Pure: the clock is passed in.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
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

from ledger.events.normalizers import NormalizedUsage, UnsupportedProviderError, UsageShapeError, normalize_usage
from ledger.vocabulary import SERVICE_TIERS

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
MAX_TAGS = 32
_EXAMPLE_TIME = "2026-10-05T14:03:11Z"
MAX_FUTURE = timedelta(minutes=5)  # how far ahead of the clock an event's occurred_at may be, by default


_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
EVENT_ID_MAX = 128
PROVIDER_ID_MAX = 1024
"""Provider response ids can be long: LiteLLM's Responses ids are `resp_` + base64 of the provider, the model id
and the provider's own id, 137 to 201 characters (litellm responses/utils.py `_build_responses_api_response_id`)."""


def stable_event_id(provider_id: str) -> str:
    """An event id for a provider's response id: the id itself when it fits `event_id`, else `sha256:` and the
    hex SHA-256 of it (the same for every retry of the same call; the id itself is kept in
    `provider_request_id`)."""
    if len(provider_id) <= EVENT_ID_MAX:
        return provider_id
    return "sha256:" + hashlib.sha256(provider_id.encode("utf-8", "surrogatepass")).hexdigest()


_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
COST_PLACES = 10
"""Decimal places of the cost columns (numeric(20, 10)): a cost with more would be stored rounded."""
_COST_QUANTUM = Decimal(1).scaleb(-COST_PLACES)


def stored_cost(cost: Decimal) -> Decimal:
    """A cost computed by a provider or gateway (a float such as LiteLLM's 0.00030000000000000003, or
    OpenRouter's 20-digit cost), to the places the cost columns keep, as PostgreSQL would round it. Costs a
    client states itself are never rounded: `cost_problem` refuses them."""
    return cost.quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP) if cost.is_finite() else cost


def cost_problem(cost: Decimal) -> None:
    """Raise ValueError unless `cost` is a USD amount the database stores exactly, from 0 to under
    REPORTED_COST_LIMIT with at most COST_PLACES decimal places (rounding would change it, silently)."""
    if not cost.is_finite():
        raise ValueError("must be a finite decimal")
    if not 0 <= cost < REPORTED_COST_LIMIT:
        raise ValueError(f"reported cost {cost} USD is not between 0 and {REPORTED_COST_LIMIT:,}")
    if cost != cost.quantize(_COST_QUANTUM):
        raise ValueError(f"reported cost {cost} USD has more than {COST_PLACES} decimal places; it would be rounded")


class EventIn(BaseModel):
    """One LLM request's usage as the client sends it (schema version 1)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: Annotated[str, Field(min_length=1, max_length=EVENT_ID_MAX)] | None = None
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
    cache_creation_1h_input_tokens: TokenCount = 0
    reasoning_tokens: TokenCount = 0
    web_search_requests: Annotated[StrictInt, Field(ge=0, le=INTEGER_MAX)] = 0
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
    provider_request_id: Annotated[str, Field(min_length=1, max_length=PROVIDER_ID_MAX)] | None = None
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

    @field_validator("reported_cost", mode="before")
    @classmethod
    def _plain_decimal(cls, value: Any) -> Any:
        """A JSON number, or a string of plain decimal digits ("0.0123"): pydantic would also read "1_000",
        " 12 " or "1e3" from a string, which no gateway means as an amount."""
        if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
            raise ValueError(f'must be a JSON number or a decimal string such as "0.0123", got {value[:40]!r}')
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    @field_validator("reported_cost")
    @classmethod
    def _exact_cost(cls, value: Decimal | None) -> Decimal | None:
        if value is not None:
            cost_problem(value)
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

    def __init__(
        self, problems: Sequence[EventProblem], *, events: int | None = None, total: int | None = None
    ) -> None:
        self.problems = list(problems)
        """The problems found, the first MAX_PROBLEMS of them at most."""
        self.total = total if total is not None else len(self.problems)
        """How many problems there are in all."""
        self.events = events if events is not None else len({problem.index for problem in self.problems})
        """How many events the refused request held (all of them are refused)."""
        first = self.problems[0]
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        super().__init__(f"event {first.index}: {first.field}: {first.message}{more}")


class TooManyEvents(Exception):
    """The body holds more events than a request may; counted before any is validated."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} events per request; the body holds more")


MAX_PROBLEMS = 100
"""Problems listed when a request is refused; the rest are counted. A body of 10,000 empty objects has 30,000
problems, and listing them all would cost more than the body (and the client more to read it)."""
MAX_EVENTS = 10_000  # events per request, unless the caller says otherwise


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


class Measure(NamedTuple):
    """A count an event states that the rollups add up, each into a column of its own name: the one list from
    which the stored columns (`ledger.storage.tables`), the rollups' sums (`ledger.sink.rollup`), the events
    and totals the API answers with (`ledger.queries.usage`) and the reconciler's logged measures
    (`ledger.queries.logged_days`) are derived."""

    name: str
    """Its field of EventIn and EventRow, and its column in usage_events, usage_hourly and usage_daily."""
    limit: int
    """The most one event may state: TOKENS_MAX (a bigint column) or INTEGER_MAX (an integer column)."""
    optional: bool = False
    """None when the event does not say (its column is nullable; the rollups also count the events that say)."""
    description: str = ""
    """What it counts, where its name does not say it all (for the API's documentation)."""


MEASURES: tuple[Measure, ...] = (
    Measure("input_tokens", TOKENS_MAX),
    Measure("output_tokens", TOKENS_MAX),
    Measure("cache_read_input_tokens", TOKENS_MAX),
    Measure("cache_creation_input_tokens", TOKENS_MAX),
    Measure("cache_creation_1h_input_tokens", TOKENS_MAX, description="The part of the cache writes kept for an hour."),
    Measure("reasoning_tokens", TOKENS_MAX),
    Measure("web_search_requests", INTEGER_MAX),
    Measure("system_prompt_tokens", TOKENS_MAX, optional=True),
)
MEASURE_NAMES: tuple[str, ...] = tuple(measure.name for measure in MEASURES)
assert set(MEASURE_NAMES) <= set(COLUMNS), "every measure is a field of EventRow"
# fail_fast: a body of a million empty objects stops at the first problem instead of building millions of
# errors (the exact path then names them, a bounded number).
_EVENT_LIST = TypeAdapter(Annotated[list[EventIn], Field(fail_fast=True)])
# Fields that may hold a JSON number with a fraction, which must reach Decimal with every digit: a body
# that names one is decoded by the exact path (pydantic's JSON parser reads fractions as floats). So does one
# with an escaped NUL or surrogate (`\u0000`, `\ud800`), which the exact path finds and names.
_EXACT_PATH_MARKS = (b'"reported_cost"', b'"usage"', b"\\u0000", b"\\ud", b"\\uD")
# A key followed by white space before its colon: the fast path's count of keys would miss it.
_SPACED_COLONS = (b'" :', b'"\t:', b'"\n:', b'"\r:')
_JSON_TYPES = ("application/json", "application/x-ndjson", "application/ndjson", "application/jsonlines")


def is_ndjson(content_type: str) -> bool:
    return "ndjson" in content_type or "jsonlines" in content_type


def is_json_media_type(content_type: str) -> bool:
    """Whether a Content-Type names JSON or NDJSON (parameters such as charset aside)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in _JSON_TYPES or media == "application/x-jsonlines" or media.endswith("+json")


def decode_events(
    body: bytes,
    content_type: str,
    *,
    tenant_id: int,
    now: datetime,
    max_future: timedelta = MAX_FUTURE,
    max_events: int = MAX_EVENTS,
) -> list[EventRow]:
    """A request body (one JSON object, an array, or NDJSON) validated into rows; raise EventValidationError
    naming the problems (the first MAX_PROBLEMS), or TooManyEvents past `max_events` before validating any.
    Bodies of plain events are parsed and validated in one pass by pydantic-core; anything else, and any body
    with a problem, goes the exact path (`parse_body`, `validate_events`)."""
    if _values_at_most(body) <= FAST_VALUES_PER_EVENT * max_events and not any(m in body for m in _EXACT_PATH_MARKS):
        if is_ndjson(content_type):
            array = b"[" + b",".join(line for line in body.splitlines() if line.strip()) + b"]"
        else:
            array = body if body.lstrip()[:1] == b"[" else b"[" + body + b"]"
        try:
            events = _EVENT_LIST.validate_json(array)
        except ValidationError:
            pass
        else:
            if len(events) > max_events:
                raise TooManyEvents(max_events)
            if _keys_counted(events) == body.count(b'":') and not any(mark in body for mark in _SPACED_COLONS):
                return _rows(events, events, tenant_id=tenant_id, now=now, max_future=max_future)
            # else a key is repeated (pydantic kept its last value) or hard to count: the exact path says which
    items = parse_body(body, content_type, max_items=max_events)
    return validate_events(items, tenant_id=tenant_id, now=now, max_future=max_future)


FAST_VALUES_PER_EVENT = 64
"""The one-pass path parses the whole body into a tree before validating it, some 100 bytes a value: it takes
bodies of up to this many JSON values per allowed event (a plain event has about 25), so that a body of a
million tiny items (`[{},{},…]`) goes the exact path, which stops reading at the allowed number of events."""


def _values_at_most(body: bytes) -> int:
    """An upper bound of the number of JSON values in `body` (or its NDJSON lines): every value but the first
    follows a `,`, `:`, `[` or a line break (counted in C, a few milliseconds for 10 MB)."""
    return body.count(b",") + body.count(b":") + body.count(b"[") + body.count(b"\n") + 1


def _keys_counted(events: Sequence[EventIn]) -> int:
    """How many keys the events' JSON held, if no key was repeated: each key is a `"` followed by `:` in the
    body, and elsewhere `":` occurs only as an escaped quote inside a string. A repeated key makes the body's
    count larger than this one (pydantic keeps only its last value)."""
    return sum(len(event.model_fields_set) + (len(event.tags) if event.tags else 0) for event in events)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a repeated one would be read as its last value, silently."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} is given more than once in one object")
            seen.add(key)
    return result


_DECODER = json.JSONDecoder(parse_float=Decimal, object_pairs_hook=_unique_keys)
_SCAN_VALUE: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The decoder's scanner (json's C one): the value that starts at a position, and where it ends."""
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def parse_body(body: bytes, content_type: str, *, max_items: int = MAX_EVENTS) -> list[Any]:
    """Decode a request body: one JSON object, a JSON array of objects, or NDJSON. Numbers with a fraction
    are read as Decimal so money keeps every digit; a key repeated in an object is refused. Items are counted
    as they are read: TooManyEvents past `max_items`, before the rest is parsed."""
    if is_ndjson(content_type):
        items: list[Any] = []
        for number, line in _lines(body):
            if len(items) == max_items:
                raise TooManyEvents(max_items)
            try:
                items.append(_DECODER.decode(line.decode("utf-8")))
            except (ValueError, RecursionError) as error:
                raise EventValidationError(
                    [EventProblem(len(items), "body", f"line {number}: invalid JSON: {_json_error(error)}")]
                ) from error
        return items
    try:
        text = body.decode("utf-8")
        start = _WHITESPACE.match(text).end()  # type: ignore[union-attr]
        if text[start : start + 1] == "[":
            return _array_items(text, start + 1, max_items)
        return [_DECODER.decode(text)]
    except (ValueError, RecursionError) as error:
        raise EventValidationError([EventProblem(0, "body", f"invalid JSON: {_json_error(error)}")]) from error


def _lines(body: bytes) -> Iterable[tuple[int, bytes]]:
    """The non-blank lines of `body` with their 1-based numbers, one at a time (a body may hold millions)."""
    start = number = 0
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        number += 1
        line = body[start:end]
        if line.strip():
            yield number, line
        start = end + 1


def _array_items(text: str, position: int, max_items: int) -> list[Any]:
    """The items of the JSON array whose `[` ends just before `position`, read one at a time so that an array
    of more than `max_items` is refused after reading that many."""
    items: list[Any] = []
    position = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
    if text[position : position + 1] == "]":
        return _only_whitespace_after(text, position + 1, items)
    while True:
        if len(items) == max_items:
            raise TooManyEvents(max_items)
        try:
            item, position = _SCAN_VALUE(text, position)
        except StopIteration as stop:
            raise json.JSONDecodeError("Expecting value", text, stop.value) from None
        items.append(item)
        position = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
        separator = text[position : position + 1]
        if separator == "]":
            return _only_whitespace_after(text, position + 1, items)
        if separator != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
        position = _WHITESPACE.match(text, position + 1).end()  # type: ignore[union-attr]


def _only_whitespace_after(text: str, position: int, items: list[Any]) -> list[Any]:
    end = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return items


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
    """Validate every item; raise EventValidationError listing the problems (the first MAX_PROBLEMS) of every
    event and counting them all."""
    try:
        events = _EVENT_LIST.validate_python(items)
    except ValidationError:
        events = None  # at least one item is malformed: validate one by one to name every problem
    return _rows(items, events, tenant_id=tenant_id, now=now, max_future=max_future, check_text=_unstorable(items))


def _unstorable(items: Sequence[Any]) -> bool:
    """Whether some string or key holds a character PostgreSQL's text and jsonb cannot store: a NUL (JSON's
    \\u0000) or a lone surrogate (\\ud800, which has no UTF-8 form). One encoding of the batch, in C;
    `unstorable_path` then names the place."""
    text = json.dumps(items, default=str, ensure_ascii=False)
    if "\\u0000" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_NUL_MESSAGE = "must not contain a NUL character (\\u0000): PostgreSQL cannot store it"
_SURROGATE_MESSAGE = (
    "must not contain a lone surrogate (such as \\ud800): it is not a character; PostgreSQL cannot store it"
)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return _NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_MESSAGE
    return None


def unstorable_path(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first string or key in `value` that PostgreSQL cannot store (a NUL, a lone surrogate),
    and why, if any."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else (path or "event", problem)
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = json.dumps(str(key))[1:-1]  # a NUL or a surrogate in a key shows as \\u0000, \\ud800
            inner = f"{path}.{name}" if path else name
            if (problem := _text_problem(str(key))) is not None:
                return inner, problem
            if (found := unstorable_path(item, inner)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            if (found := unstorable_path(item, f"{path}[{position}]")) is not None:
                return found
    return None


def nul_path(value: Any, path: str) -> str | None:
    """The path of the first string or key in `value` that PostgreSQL cannot store, if any."""
    found = unstorable_path(value, path)
    return None if found is None else found[0]


class _Problems:
    """The problems of a request: the first MAX_PROBLEMS kept, all counted."""

    def __init__(self) -> None:
        self.kept: list[EventProblem] = []
        self.total = 0

    def add(self, problems: Iterable[EventProblem]) -> None:
        for problem in problems:
            self.total += 1
            if len(self.kept) < MAX_PROBLEMS:
                self.kept.append(problem)


def _rows(
    items: Sequence[Any],
    events: Sequence[EventIn] | None,
    *,
    tenant_id: int,
    now: datetime,
    max_future: timedelta,
    check_text: bool = False,
) -> list[EventRow]:
    problems = _Problems()
    rows: list[EventRow] = []
    for index, item in enumerate(items):
        found = unstorable_path(item, "") if check_text else None
        unstorable = found is not None
        if found is not None:
            problems.add([EventProblem(index, *found)])
        if events is not None:
            event = events[index]
        else:
            try:
                event = EventIn.model_validate(item)
            except ValidationError as error:
                # pydantic's words for the text found above would only repeat it (and garble its name)
                problems.add(p for p in _problems_from(error, index) if not (unstorable and p.field == "*"))
                continue
        if event.usage is not None and _too_deep(event.usage):
            problems.add([EventProblem(index, "usage", f"nests more than {MAX_USAGE_DEPTH} levels deep")])
            continue
        try:
            rows.append(_to_row(event, tenant_id=tenant_id, received_at=now, max_future=max_future))
        except EventValidationError as error:
            problems.add(EventProblem(index, p.field, p.message) for p in error.problems)
    if problems.total:
        raise EventValidationError(problems.kept, events=len(items), total=problems.total)
    return rows


def _problems_from(error: ValidationError, index: int) -> Iterable[EventProblem]:
    for detail in error.errors(include_url=False):
        if detail["type"] == "string_unicode":
            yield EventProblem(index, "*", detail["msg"])  # text without UTF-8 form: `unstorable_path` names it
            continue
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
    event_id = event.event_id or (event.provider_request_id and stable_event_id(event.provider_request_id))
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
        reasoning, cache_1h = event.reasoning_tokens, event.cache_creation_1h_input_tokens
        web_search = event.web_search_requests
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
        if "cache_creation_1h_input_tokens" in given:
            cache_1h = event.cache_creation_1h_input_tokens
        else:
            cache_1h = min(normalized.cache_creation_1h_input_tokens, cache_creation)
        web_search = pick("web_search_requests", normalized.web_search_requests)
        reported_cost = event.reported_cost if event.reported_cost is not None else normalized.reported_cost
        service_tier = event.service_tier or normalized.service_tier
        if max(input_tokens, output_tokens, cache_read, cache_creation, reasoning) > TOKENS_MAX:
            raise _problem("usage", f"holds a token count above {TOKENS_MAX:,}, more than any request uses")
        if web_search > INTEGER_MAX:
            raise _problem("usage", f"holds a web search count above {INTEGER_MAX}, more than can be stored")
    if reported_cost is not None and event.reported_cost is None:
        # A provider's own cost in its usage object (OpenRouter's has some 20 digits) is stored to the column's
        # places, as PostgreSQL would round it; the raw object keeps every digit.
        reported_cost = stored_cost(reported_cost)
        try:
            cost_problem(reported_cost)
        except ValueError as error:
            raise _problem("usage", str(error)) from error
    if cache_read + cache_creation > input_tokens:
        raise _problem(
            "cache_read_input_tokens",
            f"cache_read_input_tokens + cache_creation_input_tokens ({cache_read + cache_creation}) "
            f"exceed input_tokens ({input_tokens})",
        )
    if cache_1h > cache_creation:
        raise _problem(
            "cache_creation_1h_input_tokens",
            f"cache_creation_1h_input_tokens ({cache_1h}) exceed cache_creation_input_tokens ({cache_creation}), "
            "of which they are the part written for an hour",
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
