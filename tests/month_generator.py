"""Independently built months: a tenant's traffic to one provider as usage events, and the statements that bill
it in the provider's documented shapes, with the noise of real months and one planted discrepancy of a chosen
size. Two shapes (`ANTHROPIC`, `OPENAI`) share everything but names and statements:
- Anthropic's Admin API usage report (tokens per workspace × key × model × day) and cost report (cents per
  workspace × model × token type × day), see importers/anthropic.py for the reference pages;
- OpenAI's Admin API completions usage pages (tokens and requests per project × key × model × day) and costs
  pages (USD per project × line item × day, the line item naming a dated snapshot and a direction), see
  importers/openai.py; the statements spell models as dated snapshots, the log as the alias requested.

Noise: retried events (the same event id sent again with a later `occurred_at`), events seconds before
midnight that the provider bills on the next day, events never logged, events arriving after the statements
were imported, a statement first imported with one day wrong and then re-imported corrected, and a negotiated
price the tenant set and the provider bills as agreed.

Models are those the catalog prices out of the box; prices are read from the catalog, so the statements bill
list prices (and the negotiated one) exactly, but for the cost report's rounding. A month can also carry a
model no catalog knows (`unknown_model`), billed at a price of its own."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from importers.base import RawDocument
from ledger.periods import Period
from ledger.pricing.catalog import shared_catalog

PERIOD = Period.month("2026-10")
DAYS: list[date] = list(PERIOD.days())
MILLION = Decimal(1_000_000)
TOKEN_TYPES = {  # cost report token_type → catalog token type, category
    "uncached_input_tokens": ("input", "uncached_input"),
    "cache_read_input_tokens": ("cached_input", "cached_input"),
    "output_tokens": ("output", "output"),
}


@dataclass(frozen=True, order=True)
class KeyScope:
    workspace: str
    """The account: an Anthropic workspace, an OpenAI project."""
    key: str
    model: str
    requests_per_day: int


@dataclass(frozen=True)
class Shape:
    """One provider's month: its models (the second one with a negotiated input price), its keys in their roles
    (`scopes` in the order padded, mischarged, double counted, drifted), how its answers finish and its failures
    look, and how its statements spell models."""

    provider: str
    models: tuple[str, str]
    scopes: tuple[KeyScope, KeyScope, KeyScope, KeyScope]
    leaked: KeyScope
    """A key nobody logs: its usage is billed from LEAKED_FROM, `unlogged_usage` requests a day."""
    negotiated_input: Decimal
    """USD per 1M input tokens the tenant negotiated for `models[1]`."""
    finished: str
    """The finish reason of a complete answer."""
    cut: str
    """The finish reason of an answer stopped at its length limit."""
    failure: tuple[int, str]
    """Status and error type of a failed request: nothing should be billed for it."""
    statement_names: dict[str, str] = field(default_factory=dict, hash=False)
    """Model as logged → as the statements spell it (a dated snapshot)."""

    @property
    def padded(self) -> KeyScope:
        return self.scopes[0]

    charged = padded

    @property
    def mischarged(self) -> KeyScope:
        return self.scopes[1]

    overbilled = unbilled = relabeled = mischarged

    @property
    def double_counted(self) -> KeyScope:
        return self.scopes[2]

    substituted = spiking = double_counted

    @property
    def drifted(self) -> KeyScope:
        return self.scopes[3]

    truncated = streaming = drifted

    def statement_name(self, model: str) -> str:
        return self.statement_names.get(model, model)


ANTHROPIC = Shape(
    provider="anthropic",
    models=("claude-haiku-4-5", "claude-sonnet-4-5"),
    scopes=(
        KeyScope("wrk_apps", "key_apps_web", "claude-haiku-4-5", 22),
        KeyScope("wrk_apps", "key_apps_jobs", "claude-haiku-4-5", 14),
        KeyScope("wrk_research", "key_research", "claude-sonnet-4-5", 18),
        KeyScope("wrk_batch", "key_batch", "claude-haiku-4-5", 60),
    ),
    leaked=KeyScope("wrk_apps", "key_apps_leaked", "claude-haiku-4-5", 0),
    negotiated_input=Decimal("2.70"),  # list price 3
    finished="end_turn",
    cut="max_tokens",
    failure=(529, "server_error"),  # overloaded
)
OPENAI = Shape(
    provider="openai",
    models=("gpt-4o-mini", "gpt-4.1"),
    scopes=(
        KeyScope("proj_apps", "key_apps_web", "gpt-4o-mini", 22),
        KeyScope("proj_apps", "key_apps_jobs", "gpt-4o-mini", 14),
        KeyScope("proj_research", "key_research", "gpt-4.1", 18),
        KeyScope("proj_batch", "key_batch", "o4-mini", 60),
    ),
    leaked=KeyScope("proj_apps", "key_apps_leaked", "gpt-4o-mini", 0),
    negotiated_input=Decimal("1.80"),  # list price 2
    finished="stop",
    cut="length",
    failure=(500, "server_error"),
    statement_names={
        "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
        "gpt-4.1": "gpt-4.1-2025-04-14",
        "o4-mini": "o4-mini-2025-04-16",
    },
)
MODELS = ANTHROPIC.models
"""Models the catalog prices; the Anthropic month uses them in this order."""
NEGOTIATED_INPUT = ANTHROPIC.negotiated_input
SCOPES = ANTHROPIC.scopes
PADDED, MISCHARGED, DOUBLE_COUNTED, DRIFTED = SCOPES
CHARGED = PADDED
OVERBILLED = MISCHARGED
UNBILLED = MISCHARGED
UNBILLED_FROM = date(2026, 10, 12)
LEAKED = ANTHROPIC.leaked
LEAKED_FROM = date(2026, 10, 20)
FAILURE_RATE = 0.01
DRIFT_FROM = date(2026, 10, 16)
RELABELED_FROM = date(2026, 10, 9)
SPIKE_DAY = date(2026, 10, 22)
SPIKE_PROMPT_TOKENS = 40_000
TRUNCATION_CAP = 1_024
MAX_TOKENS = 4_096
UNKNOWN = KeyScope("proj_labs", "key_labs", "orion-lab-7", 12)
"""A scope using a model no catalog knows (`unknown_model=True`), billed at UNKNOWN_PRICES."""
UNKNOWN_PRICES = {"input": Decimal("0.9") / MILLION, "cached_input": Decimal("0.3") / MILLION,
                  "output": Decimal("3.6") / MILLION}  # fmt: skip


@dataclass(frozen=True)
class Plant:
    """One discrepancy and its size, on the key of the month's shape in that role:
    - billing kinds: `padding` (tokens per request on `padded`), `system_prompt` (scale of the system prompts
      of `double_counted`, billed twice), `price_drift` (factor on `drifted`'s output price from DRIFT_FROM),
      `cache_mischarge` (share of `mischarged`'s cache reads billed as uncached input), `charged_errors` (the
      share of `charged`'s requests that fail and whose prompt tokens, and requests where the statement counts
      them, are billed), `quantity_mismatch` (share of `overbilled`'s output billed on top), `unlogged_usage`
      (requests a day on the `leaked` key from LEAKED_FROM, never logged), `unbilled_usage` (days of
      `unbilled`'s usage, from UNBILLED_FROM, that the statements leave out), `billed_as_another` (days of
      `relabeled`'s usage, from RELABELED_FROM, billed under `models[1]` at its prices);
    - the others: `served_by_another` (share of `substituted`'s requests answered by `models[0]`, and billed as
      such), `spend_spike` (extra requests of SPIKE_PROMPT_TOKENS-token prompts on `spiking` on SPIKE_DAY,
      billed as logged), `silent_truncation` (share of `truncated`'s requests stopped at TRUNCATION_CAP tokens,
      below the max_tokens they asked for), `missing_finish_reason` (share of `streaming`'s streamed answers
      that end without a finish reason)."""

    kind: str
    size: float


@dataclass(frozen=True)
class Noise:
    retried: float = 0.01
    before_midnight: float = 0.005
    never_logged: float = 0.002
    late: float = 0.03


@dataclass
class Event:
    body: dict[str, Any]
    billed_day: date
    scope: KeyScope
    logged: bool = True
    late: bool = False
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return bool(self.body["status_code"] < 300)

    @property
    def served(self) -> KeyScope:
        """The scope of the model that answered (and is billed)."""
        return replace(self.scope, model=self.body.get("response_model") or self.scope.model)


@dataclass
class Month:
    events: list[Event]
    shape: Shape = ANTHROPIC
    truth: dict[str, Decimal] = field(default_factory=dict)
    """The planted discrepancy's money (`impact_usd`), for padding tokens per request, for the rate kinds the
    share of the scope's logged answers (`rate`)."""
    documents: list[RawDocument] = field(default_factory=list)
    first_import: list[RawDocument] = field(default_factory=list)
    """The statement as first imported: one day's output wrong, corrected by `documents`."""

    def failed(self, scope: KeyScope) -> int:
        """Failed requests of a key that were logged."""
        return sum(1 for e in self.events if e.scope == scope and e.logged and not e.ok)

    def failed_prompt_tokens(self, scope: KeyScope) -> int:
        return sum(e.body["input_tokens"] for e in self.events if e.scope == scope and e.logged and not e.ok)

    def sent(self, *, late: bool) -> list[dict[str, Any]]:
        """The bodies the application sends before (or, `late`, after) the statements are imported; retries go
        with them, after their first attempt."""
        out = [e.body for e in self.events if e.logged and e.late == late]
        out += [
            {**e.body, "occurred_at": e.retry_at.isoformat()}
            for e in self.events
            if e.logged and e.late == late and e.retry_at is not None
        ]
        return out


@cache
def prices(shape: Shape, model: str, *, negotiated: bool = True) -> dict[str, Decimal]:
    """USD per token of each catalog token type for the month (list prices; the negotiated input price)."""
    if model == UNKNOWN.model:
        return UNKNOWN_PRICES
    catalog = shared_catalog()
    at = PERIOD.start + timedelta(days=1)
    out = {}
    for token_type in ("input", "cached_input", "output"):
        row = catalog.unit_price(shape.provider, model, token_type, at=at)
        assert row is not None, (model, token_type)
        out[token_type] = row.price_per_token()
    if negotiated and model == shape.models[1]:
        out["input"] = shape.negotiated_input / MILLION
    return out


def generate(
    plant: Plant | None = None,
    *,
    shape: Shape = ANTHROPIC,
    noise: Noise = Noise(),
    seed: int = 18,
    copies: int = 1,
    unknown_model: bool = False,
) -> Month:
    """A month of events and its statements. `copies` sends every request that many times (distinct ids, the
    same tokens and moments): the same month at k times the traffic."""
    rng = random.Random(seed)
    scopes = (*shape.scopes, UNKNOWN) if unknown_model else shape.scopes
    requests: list[tuple[KeyScope, date, int]] = [
        (scope, day, n)
        for scope in scopes
        for day in DAYS
        for n in range(round(scope.requests_per_day * rng.uniform(0.85, 1.15)))
    ]

    by_scope: dict[KeyScope, list[int]] = defaultdict(list)
    for index, (scope, _, _) in enumerate(requests):
        by_scope[scope].append(index)

    def share(rate: float, only: KeyScope | None = None) -> frozenset[int]:
        # that share of each key's (or of one key's) requests, exactly, drawn at random
        return frozenset(
            index
            for scope, indexes in by_scope.items()
            if only in (None, scope)
            for index in rng.sample(indexes, round(rate * len(indexes)))
        )

    midnight, unlogged, late, retried = map(
        share, (noise.before_midnight, noise.never_logged, noise.late, noise.retried)
    )
    roles = {"served_by_another": shape.substituted, "silent_truncation": shape.truncated}
    planted = share(plant.size, roles[plant.kind]) if plant is not None and plant.kind in roles else frozenset[int]()
    events: list[Event] = []
    for index, (scope, day, n) in enumerate(requests):
        flags = (index in midnight, index in unlogged, index in late, index in retried)
        events.extend(_event(shape, scope, day, n, rng, flags, plant, copies, planted=index in planted))
    if plant is not None and plant.kind == "missing_finish_reason":
        streamed = [e for e in events if e.scope == shape.streaming and e.ok and e.body["stream"]]
        for event in rng.sample(streamed, round(plant.size * len(streamed))):
            event.body["finish_reason"] = None  # the stream was cut before its last chunk
    if plant is not None and plant.kind == "unlogged_usage":
        for day in (d for d in DAYS if d >= LEAKED_FROM):
            for n in range(round(plant.size)):
                events.extend(_event(shape, shape.leaked, day, n, rng, (False, True, False, False), plant, copies))
    if plant is not None and plant.kind == "spend_spike":
        for n in range(round(plant.size)):  # a runaway job: large prompts, sent in a loop for one day
            flags = (False, False, False, False)
            events.extend(_event(shape, shape.spiking, SPIKE_DAY, 10_000 + n, rng, flags, plant, copies))
    month = Month(events, shape)
    month.documents = statements(month, plant)
    month.first_import = statements(month, plant, wrong_day=DAYS[9])
    month.truth = truth(month, plant)
    return month


def _event(
    shape: Shape,
    scope: KeyScope,
    day: date,
    n: int,
    rng: random.Random,
    flags: tuple[bool, bool, bool, bool],
    plant: Plant | None,
    copies: int,
    *,
    planted: bool = False,
) -> list[Event]:
    before_midnight, never_logged, late, retried = flags
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(60, 86_340))
    billed_day = day
    if before_midnight and day != DAYS[-1]:
        moment = moment.replace(hour=23, minute=59, second=rng.randrange(45, 60))
        billed_day = day + timedelta(days=1)  # the provider's clock: already the next day
    kind = plant.kind if plant is not None else None
    input_tokens = max(100, round(rng.gauss(1_500, 400)))
    if kind == "spend_spike" and n >= 10_000:
        input_tokens = SPIKE_PROMPT_TOKENS
    prompt_scale = plant.size if plant is not None and kind == "system_prompt" and scope == shape.double_counted else 1
    system_prompt = round(rng.randint(200, 900) * prompt_scale) if rng.random() < 0.7 else None
    if system_prompt is not None:
        input_tokens += system_prompt
    body: dict[str, Any] = {
        "occurred_at": moment.isoformat(),
        "provider": shape.provider,
        "account": scope.workspace,
        "api_key_id": scope.key,
        "request_model": scope.model,
        "input_tokens": input_tokens,
        "cache_read_input_tokens": round(input_tokens * rng.uniform(0.2, 0.6)),
        "output_tokens": max(1, round(rng.gauss(350, 120))),
        "finish_reason": shape.finished,
        "status_code": 200,
        "max_tokens": MAX_TOKENS,
        "stream": n % 2 == 0,  # half the traffic streams
    }
    if system_prompt is not None:
        body["system_prompt_tokens"] = system_prompt
    charged = plant is not None and kind == "charged_errors" and scope == shape.charged
    if rng.random() < (plant.size if plant is not None and charged else FAILURE_RATE):
        # The application logs the prompt tokens it counted, nothing else; nothing should be billed.
        status, error_type = shape.failure
        body.update(status_code=status, error_type=error_type, output_tokens=0, cache_read_input_tokens=0)
        body.update(finish_reason=None, input_tokens=input_tokens - (system_prompt or 0))
        body.pop("system_prompt_tokens", None)
    elif planted and kind == "served_by_another":
        body["response_model"] = shape.models[0]
    elif planted and kind == "silent_truncation":
        body.update(finish_reason=shape.cut, output_tokens=TRUNCATION_CAP - rng.randrange(0, 4))
    retry = moment + timedelta(seconds=rng.randrange(3, 40)) if retried else None
    return [
        Event(
            {**body, "event_id": f"{scope.key}-{day.isoformat()}-{n}-{copy}"},
            billed_day,
            scope,
            logged=not never_logged,
            late=late,
            retry_at=retry,
        )
        for copy in range(copies)
    ]


@dataclass
class _Billed:
    uncached: int = 0
    cached: int = 0
    output: int = 0
    requests: int = 0
    system_prompt: int = 0


def billed_usage(month: Month, plant: Plant | None) -> dict[tuple[KeyScope, date], _Billed]:
    """What the provider bills per key × model and day, the planted discrepancy applied."""
    shape = month.shape
    kind = plant.kind if plant is not None else None
    billed: dict[tuple[KeyScope, date], _Billed] = defaultdict(_Billed)

    def in_days(event: Event, first: date) -> bool:  # billed on one of the plant's `size` days from `first`
        return plant is not None and 0 <= (event.billed_day - first).days < plant.size

    for event in month.events:
        body = event.body
        if kind == "unbilled_usage" and event.scope == shape.unbilled and in_days(event, UNBILLED_FROM):
            continue
        scope = event.served
        if kind == "billed_as_another" and event.scope == shape.relabeled and in_days(event, RELABELED_FROM):
            scope = replace(scope, model=shape.models[1])
        row = billed[(scope, event.billed_day)]
        if not event.ok:
            if kind == "charged_errors" and event.scope == shape.charged:
                row.uncached += body["input_tokens"]  # a failure billed
                row.requests += 1
            continue
        row.uncached += body["input_tokens"] - body["cache_read_input_tokens"]
        row.cached += body["cache_read_input_tokens"]
        row.output += body["output_tokens"]
        row.requests += 1
        row.system_prompt += body.get("system_prompt_tokens") or 0
    for (scope, _), row in billed.items():
        if plant is None:
            continue
        if kind == "padding" and scope == shape.padded:
            row.uncached += round(plant.size) * row.requests
        elif kind == "system_prompt" and scope == shape.double_counted:
            row.uncached += row.system_prompt
        elif kind == "cache_mischarge" and scope == shape.mischarged:
            moved = round(row.cached * plant.size)
            row.cached -= moved
            row.uncached += moved
        elif kind == "quantity_mismatch" and scope == shape.overbilled:
            row.output += round(row.output * plant.size)
    return billed


def _billed_days(
    month: Month, plant: Plant | None, wrong_day: date | None
) -> dict[date, list[tuple[KeyScope, _Billed, Decimal]]]:
    """Per day, each key × model billed, with its output corrected or not, and the factor on its output price."""
    out: dict[date, list[tuple[KeyScope, _Billed, Decimal]]] = defaultdict(list)
    for (scope, day), row in sorted(billed_usage(month, plant).items()):
        if day == wrong_day:
            row = replace(row, output=row.output * 2)
        drifted = plant is not None and plant.kind == "price_drift" and scope == month.shape.drifted
        drift = Decimal(str(plant.size)) if plant is not None and drifted and day >= DRIFT_FROM else Decimal(1)
        out[day].append((scope, row, drift))
    return out


def _charges(month: Month, scope: KeyScope, row: _Billed, drift: Decimal) -> list[tuple[str, int, Decimal]]:
    """(catalog token type, tokens, USD) of one billed row."""
    unit = prices(month.shape, scope.model)
    return [
        (token_type, quantity, quantity * unit[token_type] * (drift if token_type == "output" else 1))
        for token_type, quantity in (("input", row.uncached), ("cached_input", row.cached), ("output", row.output))
    ]


def statements(month: Month, plant: Plant | None, *, wrong_day: date | None = None) -> list[RawDocument]:
    """The month's statements in the shape's documents (`wrong_day`: that day's output billed twice)."""
    billed = _billed_days(month, plant, wrong_day)
    if month.shape.provider == "openai":
        return openai_statements(month, billed)
    return anthropic_statements(month, billed)


def _window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def anthropic_statements(
    month: Month, billed: dict[date, list[tuple[KeyScope, _Billed, Decimal]]]
) -> list[RawDocument]:
    """The usage report and the cost report pages for the month (the cost report's amounts in cents, as decimal
    strings, rounded to a ten-thousandth of a cent)."""
    catalog_types = {catalog: name for name, (catalog, _) in TOKEN_TYPES.items()}
    usage_buckets, cost_buckets = [], []
    for day in DAYS:
        usage_rows, costs = [], defaultdict(Decimal)
        for scope, row, drift in billed.get(day, []):
            usage_rows.append(
                {
                    "uncached_input_tokens": row.uncached,
                    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                    "cache_read_input_tokens": row.cached,
                    "output_tokens": row.output,
                    "server_tool_use": {"web_search_requests": 0},
                    "api_key_id": scope.key,
                    "workspace_id": scope.workspace,
                    "model": scope.model,
                    "service_tier": "standard",
                    "context_window": "0-200k",
                }
            )
            for token_type, _, dollars in _charges(month, scope, row, drift):
                costs[(scope.workspace, scope.model, catalog_types[token_type])] += dollars
        start, end = _window(day)
        window = {"starting_at": f"{start:%Y-%m-%dT%H:%M:%SZ}", "ending_at": f"{end:%Y-%m-%dT%H:%M:%SZ}"}
        usage_buckets.append({**window, "results": usage_rows})
        cost_buckets.append(
            {
                **window,
                "results": [
                    {
                        "currency": "USD",
                        "amount": f"{dollars * 100:.4f}",
                        "workspace_id": workspace,
                        "description": f"{model} Usage - {token_type}",
                        "cost_type": "tokens",
                        "context_window": "0-200k",
                        "model": model,
                        "service_tier": "standard",
                        "token_type": token_type,
                        "inference_geo": None,
                    }
                    for (workspace, model, token_type), dollars in sorted(costs.items())
                ],
            }
        )
    return [
        _document("anthropic_usage_report.json", {"data": usage_buckets, "has_more": False, "next_page": None}),
        _document("anthropic_cost_report.json", {"data": cost_buckets, "has_more": False, "next_page": None}),
    ]


OPENAI_DIRECTIONS = {"input": "input", "cached_input": "cached input", "output": "output"}
"""Catalog token type → the direction a costs line item names ("gpt-4.1-2025-04-14, cached input")."""


def openai_statements(month: Month, billed: dict[date, list[tuple[KeyScope, _Billed, Decimal]]]) -> list[RawDocument]:
    """A completions usage page grouped by project, key, model, batch and tier, and a costs page grouped by
    project and line item, one bucket a day (amounts in USD as JSON numbers, as the API sends them)."""
    shape = month.shape
    usage_buckets, cost_buckets = [], []
    for day in DAYS:
        start, end = _window(day)
        window = {"object": "bucket", "start_time": int(start.timestamp()), "end_time": int(end.timestamp())}
        usage_rows = []
        costs: dict[tuple[str, str], tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
        for scope, row, drift in billed.get(day, []):
            label = shape.statement_name(scope.model)
            usage_rows.append(
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": row.uncached + row.cached,
                    "output_tokens": row.output,
                    "num_model_requests": row.requests,
                    "project_id": scope.workspace,
                    "user_id": None,
                    "api_key_id": scope.key,
                    "model": label,
                    "batch": False,
                    "service_tier": "default",
                    "input_cached_tokens": row.cached,
                    "input_cache_write_tokens": 0,
                    "input_uncached_tokens": row.uncached,
                }
            )
            for token_type, quantity, dollars in _charges(month, scope, row, drift):
                line_item = f"{label}, {OPENAI_DIRECTIONS[token_type]}"
                tokens, money = costs[(scope.workspace, line_item)]
                costs[(scope.workspace, line_item)] = (tokens + quantity, money + dollars)
        usage_buckets.append({**window, "results": usage_rows})
        cost_buckets.append(
            {
                **window,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": float(money), "currency": "usd"},
                        "line_item": line_item,
                        "project_id": project,
                        "api_key_id": None,
                        "quantity": tokens,
                        "quantity_unit": "tokens",
                    }
                    for (project, line_item), (tokens, money) in sorted(costs.items())
                ],
            }
        )
    page = {"object": "page", "has_more": False, "next_page": None}
    return [
        _document("openai_usage_completions.json", {**page, "data": usage_buckets}, "openai"),
        _document("openai_costs.json", {**page, "data": cost_buckets}, "openai"),
    ]


def _document(name: str, body: Any, source: str = "anthropic") -> RawDocument:
    return RawDocument(name=name, content=json.dumps(body).encode(), media_type="application/json", source=source)


def _cost(month: Month, scope: KeyScope, row: _Billed) -> Decimal:
    return sum((dollars for _, _, dollars in _charges(month, scope, row, Decimal(1))), Decimal(0))


def truth(month: Month, plant: Plant | None) -> dict[str, Decimal]:
    """The planted discrepancy's money, from what was billed and the prices in effect; for the rate kinds, the
    share of the scope's logged answers."""
    if plant is None:
        return {}
    shape = month.shape
    honest = billed_usage(month, None)
    planted = billed_usage(month, plant)
    kind = plant.kind
    if kind == "padding":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == shape.padded)
        return {
            "impact_usd": extra * prices(shape, shape.padded.model)["input"],
            "tokens_per_request": Decimal(plant.size),
        }
    if kind == "system_prompt":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == shape.double_counted)
        return {"impact_usd": extra * prices(shape, shape.double_counted.model)["input"]}
    if kind in ("quantity_mismatch", "unlogged_usage", "unbilled_usage"):
        scope = {
            "quantity_mismatch": shape.overbilled,
            "unlogged_usage": shape.leaked,
            "unbilled_usage": shape.unbilled,
        }[kind]
        unit = prices(shape, scope.model)
        money = Decimal(0)
        for key in honest.keys() | planted.keys():
            if key[0] != scope:
                continue
            before, after = honest.get(key, _Billed()), planted.get(key, _Billed())
            if kind == "unlogged_usage":
                before = _Billed()  # nothing logged: all of it billed beyond the log
            money += (after.uncached - before.uncached) * unit["input"]
            money += (after.cached - before.cached) * unit["cached_input"]
            money += (after.output - before.output) * unit["output"]
        return {"impact_usd": money}
    if kind == "charged_errors":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == shape.charged)
        return {"impact_usd": extra * prices(shape, shape.charged.model)["input"]}
    if kind == "cache_mischarge":
        unit = prices(shape, shape.mischarged.model)
        moved = sum(honest[k].cached - planted[k].cached for k in honest if k[0] == shape.mischarged)
        return {"impact_usd": moved * (unit["input"] - unit["cached_input"])}
    if kind == "price_drift":
        output = sum(row.output for (scope, day), row in honest.items() if scope == shape.drifted and day >= DRIFT_FROM)
        return {"impact_usd": output * prices(shape, shape.drifted.model)["output"] * (Decimal(str(plant.size)) - 1)}
    if kind == "billed_as_another":
        relabeled = shape.relabeled
        billed_as = replace(relabeled, model=shape.models[1])
        delta = sum(
            (
                _cost(month, billed_as, row) - _cost(month, relabeled, row)
                for (s, _), row in planted.items()
                if s == billed_as
            ),
            Decimal(0),
        )
        return {"impact_usd": delta}
    if kind == "served_by_another":
        served = [e for e in month.events if e.logged and e.ok and e.served != e.scope]
        delta = Decimal(0)
        for event in served:
            row = _Billed(
                uncached=event.body["input_tokens"] - event.body["cache_read_input_tokens"],
                cached=event.body["cache_read_input_tokens"],
                output=event.body["output_tokens"],
            )
            delta += _cost(month, event.served, row) - _cost(month, event.scope, row)
        return {"impact_usd": delta}
    if kind == "spend_spike":
        return {"impact_usd": _spike_excess(month)}
    if kind in ("silent_truncation", "missing_finish_reason"):
        scope = shape.truncated if kind == "silent_truncation" else shape.streaming
        answered = [e for e in month.events if e.scope == scope and e.logged and e.ok]
        if kind == "silent_truncation":
            hit = sum(1 for e in answered if e.body["finish_reason"] == shape.cut)
            return {"rate": Decimal(hit) / len(answered)}
        streamed = [e for e in answered if e.body["stream"]]
        hit = sum(1 for e in streamed if e.body["finish_reason"] is None)
        return {"rate": Decimal(hit) / len(streamed)}
    raise ValueError(kind)


def _spike_excess(month: Month) -> Decimal:
    """The spike day's spend on the spiking scope at the prices in effect, above the median of the days before
    it (at most 14): the spend spike as the user's own books would show it."""
    scope = month.shape.spiking
    spend: dict[date, Decimal] = defaultdict(Decimal)
    for event in month.events:
        if event.scope == scope and event.logged and event.ok:
            body = event.body
            row = _Billed(
                uncached=body["input_tokens"] - body["cache_read_input_tokens"],
                cached=body["cache_read_input_tokens"],
                output=body["output_tokens"],
            )
            spend[datetime.fromisoformat(body["occurred_at"]).date()] += _cost(month, scope, row)
    before = sorted(
        spend[SPIKE_DAY - timedelta(days=n)] for n in range(1, 15) if SPIKE_DAY - timedelta(days=n) in spend
    )
    middle = len(before) // 2
    median = before[middle] if len(before) % 2 else (before[middle - 1] + before[middle]) / 2
    return spend[SPIKE_DAY] - median


def renamed(month: Month, rng: random.Random) -> Month:
    """The same month with every workspace and key renamed and the events and statement rows shuffled."""
    scopes = (*month.shape.scopes, month.shape.leaked)
    names = {s.workspace: f"ws_{i}_{rng.randrange(10**6)}" for i, s in enumerate(scopes)}
    names |= {s.key: f"k_{i}_{rng.randrange(10**6)}" for i, s in enumerate(scopes)}
    events = [
        replace(e, body={**e.body, "account": names[e.body["account"]], "api_key_id": names[e.body["api_key_id"]]})
        for e in month.events
    ]
    rng.shuffle(events)

    def rename(document: RawDocument) -> RawDocument:
        body = json.loads(document.content)
        for bucket in body["data"]:
            for row in bucket["results"]:
                for field_name in ("workspace_id", "api_key_id", "project_id"):
                    if row.get(field_name) is not None:
                        row[field_name] = names[row[field_name]]
            rng.shuffle(bucket["results"])
        return replace(document, content=json.dumps(body).encode())

    return Month(
        events,
        month.shape,
        truth=month.truth,
        documents=[rename(d) for d in month.documents],
        first_import=[rename(d) for d in month.first_import],
    )
