"""Independently built months: a tenant's Anthropic traffic as usage events, and the Anthropic Admin API's usage
report (tokens per workspace × key × model × day) and cost report (cents per workspace × model × token type ×
day) that bill it, in their documented shapes (see importers/anthropic.py for the reference pages), with the
noise of real months and one planted discrepancy of a chosen size.

Noise: retried events (the same event id sent again with a later `occurred_at`), events seconds before
midnight that the provider bills on the next day, events never logged, events arriving after the statements
were imported, a statement first imported with one day wrong and then re-imported corrected, and a negotiated
price the tenant set and the provider bills as agreed.

Models are those the bundled catalog prices (`MODELS`, switchable); prices are read from the catalog, so the
statements bill list prices (and the negotiated one) exactly, but for the cost report's rounding."""

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
from ledger.pricing import PriceCatalog, load_bundled_prices

PERIOD = Period.month("2026-10")
DAYS: list[date] = list(PERIOD.days())
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5")
"""Models the bundled catalog prices; the month uses them in this order."""
NEGOTIATED_INPUT = Decimal("2.70")
"""USD per 1M input tokens the tenant negotiated for `MODELS[1]` (list price 3)."""
MILLION = Decimal(1_000_000)
TOKEN_TYPES = {  # cost report token_type → catalog token type, category
    "uncached_input_tokens": ("input", "uncached_input"),
    "cache_read_input_tokens": ("cached_input", "cached_input"),
    "output_tokens": ("output", "output"),
}


@dataclass(frozen=True)
class KeyScope:
    workspace: str
    key: str
    model: str
    requests_per_day: int


SCOPES = (
    KeyScope("wrk_apps", "key_apps_web", MODELS[0], 22),
    KeyScope("wrk_apps", "key_apps_jobs", MODELS[0], 14),
    KeyScope("wrk_research", "key_research", MODELS[1], 18),
    KeyScope("wrk_batch", "key_batch", MODELS[0], 60),
)
PADDED, MISCHARGED, DOUBLE_COUNTED, DRIFTED = SCOPES
CHARGED = PADDED
OVERBILLED = MISCHARGED
UNBILLED = MISCHARGED
UNBILLED_FROM = date(2026, 10, 12)
LEAKED = KeyScope("wrk_apps", "key_apps_leaked", MODELS[0], 0)
"""A key nobody logs: its usage is billed from LEAKED_FROM, `unlogged_usage` requests a day."""
LEAKED_FROM = date(2026, 10, 20)
FAILURE_RATE = 0.01
DRIFT_FROM = date(2026, 10, 16)


@dataclass(frozen=True)
class Plant:
    """One discrepancy and its size: `padding` (tokens per request on PADDED), `system_prompt` (scale of the
    system prompts of DOUBLE_COUNTED, billed twice), `price_drift` (factor on DRIFTED's output price from
    DRIFT_FROM), `cache_mischarge` (share of MISCHARGED's cache reads billed as uncached input),
    `charged_errors` (the share of CHARGED's requests that fail, 529 overloaded, and whose prompt tokens are
    billed as input), `quantity_mismatch` (share of OVERBILLED's output billed on top), `unlogged_usage`
    (requests a day on the LEAKED key from LEAKED_FROM, never logged), `unbilled_usage` (days of UNBILLED's
    usage, from UNBILLED_FROM, that the statements leave out)."""

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


@dataclass
class Month:
    events: list[Event]
    truth: dict[str, Decimal] = field(default_factory=dict)
    """The planted discrepancy's money (`impact_usd`) and, for padding, tokens per request."""
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
def prices(model: str, *, negotiated: bool = True) -> dict[str, Decimal]:
    """USD per token of each catalog token type for the month (list prices; the negotiated input price)."""
    catalog = PriceCatalog(load_bundled_prices())
    at = PERIOD.start + timedelta(days=1)
    out = {}
    for token_type in ("input", "cached_input", "output"):
        row = catalog.unit_price("anthropic", model, token_type, at=at)
        assert row is not None, (model, token_type)
        out[token_type] = row.price_per_token()
    if negotiated and model == MODELS[1]:
        out["input"] = NEGOTIATED_INPUT / MILLION
    return out


def generate(plant: Plant | None = None, *, noise: Noise = Noise(), seed: int = 18, copies: int = 1) -> Month:
    """A month of events and its statements. `copies` sends every request that many times (distinct ids, the
    same tokens and moments): the same month at k times the traffic."""
    rng = random.Random(seed)
    requests: list[tuple[KeyScope, date, int]] = [
        (scope, day, n)
        for scope in SCOPES
        for day in DAYS
        for n in range(round(scope.requests_per_day * rng.uniform(0.85, 1.15)))
    ]

    by_scope: dict[KeyScope, list[int]] = defaultdict(list)
    for index, (scope, _, _) in enumerate(requests):
        by_scope[scope].append(index)

    def share(rate: float) -> frozenset[int]:  # that share of each key's requests, exactly, drawn at random
        return frozenset(
            index for indexes in by_scope.values() for index in rng.sample(indexes, round(rate * len(indexes)))
        )

    midnight, unlogged, late, retried = map(
        share, (noise.before_midnight, noise.never_logged, noise.late, noise.retried)
    )
    events: list[Event] = []
    for index, (scope, day, n) in enumerate(requests):
        flags = (index in midnight, index in unlogged, index in late, index in retried)
        events.extend(_event(scope, day, n, rng, flags, plant, copies))
    if plant is not None and plant.kind == "unlogged_usage":
        for day in (d for d in DAYS if d >= LEAKED_FROM):
            for n in range(round(plant.size)):
                events.extend(_event(LEAKED, day, n, rng, (False, True, False, False), plant, copies))
    month = Month(events)
    month.documents = statements(month, plant)
    month.first_import = statements(month, plant, wrong_day=DAYS[9])
    month.truth = truth(month, plant)
    return month


def _event(
    scope: KeyScope,
    day: date,
    n: int,
    rng: random.Random,
    flags: tuple[bool, bool, bool, bool],
    plant: Plant | None,
    copies: int,
) -> list[Event]:
    before_midnight, never_logged, late, retried = flags
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(60, 86_340))
    billed_day = day
    if before_midnight and day != DAYS[-1]:
        moment = moment.replace(hour=23, minute=59, second=rng.randrange(45, 60))
        billed_day = day + timedelta(days=1)  # the provider's clock: already the next day
    input_tokens = max(100, round(rng.gauss(1_500, 400)))
    prompt_scale = plant.size if plant is not None and plant.kind == "system_prompt" and scope == DOUBLE_COUNTED else 1
    system_prompt = round(rng.randint(200, 900) * prompt_scale) if rng.random() < 0.7 else None
    if system_prompt is not None:
        input_tokens += system_prompt
    body: dict[str, Any] = {
        "occurred_at": moment.isoformat(),
        "provider": "anthropic",
        "account": scope.workspace,
        "api_key_id": scope.key,
        "request_model": scope.model,
        "input_tokens": input_tokens,
        "cache_read_input_tokens": round(input_tokens * rng.uniform(0.2, 0.6)),
        "output_tokens": max(1, round(rng.gauss(350, 120))),
        "finish_reason": "end_turn",
        "status_code": 200,
        "max_tokens": 4_096,
    }
    if system_prompt is not None:
        body["system_prompt_tokens"] = system_prompt
    charged = plant is not None and plant.kind == "charged_errors" and scope == CHARGED
    if rng.random() < (plant.size if plant is not None and charged else FAILURE_RATE):
        # Overloaded: the application logs the prompt tokens it counted, nothing else; nothing should be billed.
        body.update(status_code=529, error_type="server_error", output_tokens=0, cache_read_input_tokens=0)
        body.update(finish_reason=None, input_tokens=input_tokens - (system_prompt or 0))
        body.pop("system_prompt_tokens", None)
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
    """What the provider bills per key and day, the planted discrepancy applied."""
    billed: dict[tuple[KeyScope, date], _Billed] = defaultdict(_Billed)
    for event in month.events:
        body = event.body
        if plant is None or plant.kind != "unbilled_usage":
            pass
        elif event.scope == UNBILLED and 0 <= (event.billed_day - UNBILLED_FROM).days < plant.size:
            continue
        row = billed[(event.scope, event.billed_day)]
        if not event.ok:
            if plant is not None and plant.kind == "charged_errors" and event.scope == CHARGED:
                row.uncached += body["input_tokens"]  # a failure billed
            continue
        row.uncached += body["input_tokens"] - body["cache_read_input_tokens"]
        row.cached += body["cache_read_input_tokens"]
        row.output += body["output_tokens"]
        row.requests += 1
        row.system_prompt += body.get("system_prompt_tokens") or 0
    for (scope, _), row in billed.items():
        if plant is None:
            continue
        if plant.kind == "padding" and scope == PADDED:
            row.uncached += round(plant.size) * row.requests
        elif plant.kind == "system_prompt" and scope == DOUBLE_COUNTED:
            row.uncached += row.system_prompt
        elif plant.kind == "cache_mischarge" and scope == MISCHARGED:
            moved = round(row.cached * plant.size)
            row.cached -= moved
            row.uncached += moved
        elif plant.kind == "quantity_mismatch" and scope == OVERBILLED:
            row.output += round(row.output * plant.size)
    return billed


def statements(month: Month, plant: Plant | None, *, wrong_day: date | None = None) -> list[RawDocument]:
    """The usage report and the cost report pages for the month (the cost report's amounts in cents, as decimal
    strings, rounded to a ten-thousandth of a cent)."""
    billed = billed_usage(month, plant)
    usage_buckets, cost_buckets = [], []
    for day in DAYS:
        usage_rows, costs = [], defaultdict(Decimal)
        for scope in (*SCOPES, LEAKED):
            row = billed.get((scope, day))
            if row is None:
                continue
            output = row.output * 2 if day == wrong_day else row.output
            usage_rows.append(
                {
                    "uncached_input_tokens": row.uncached,
                    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                    "cache_read_input_tokens": row.cached,
                    "output_tokens": output,
                    "server_tool_use": {"web_search_requests": 0},
                    "api_key_id": scope.key,
                    "workspace_id": scope.workspace,
                    "model": scope.model,
                    "service_tier": "standard",
                    "context_window": "0-200k",
                }
            )
            unit = prices(scope.model)
            drift = (
                Decimal(str(plant.size))
                if plant is not None and plant.kind == "price_drift" and scope == DRIFTED and day >= DRIFT_FROM
                else Decimal(1)
            )
            for token_type, quantity in (
                ("uncached_input_tokens", row.uncached),
                ("cache_read_input_tokens", row.cached),
                ("output_tokens", output),
            ):
                catalog_type = TOKEN_TYPES[token_type][0]
                price = unit[catalog_type] * (drift if catalog_type == "output" else 1)
                costs[(scope.workspace, scope.model, token_type)] += quantity * price
        window = {
            "starting_at": f"{day.isoformat()}T00:00:00Z",
            "ending_at": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
        }
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


def _document(name: str, body: Any) -> RawDocument:
    return RawDocument(name=name, content=json.dumps(body).encode(), media_type="application/json", source="anthropic")


def truth(month: Month, plant: Plant | None) -> dict[str, Decimal]:
    """The planted discrepancy's money, from what was billed and the prices in effect."""
    if plant is None:
        return {}
    honest = billed_usage(month, None)
    planted = billed_usage(month, plant)
    if plant.kind == "padding":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == PADDED)
        return {"impact_usd": extra * prices(PADDED.model)["input"], "tokens_per_request": Decimal(plant.size)}
    if plant.kind == "system_prompt":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == DOUBLE_COUNTED)
        return {"impact_usd": extra * prices(DOUBLE_COUNTED.model)["input"]}
    if plant.kind in ("quantity_mismatch", "unlogged_usage", "unbilled_usage"):
        scope = {"quantity_mismatch": OVERBILLED, "unlogged_usage": LEAKED, "unbilled_usage": UNBILLED}[plant.kind]
        unit = prices(scope.model)
        money = Decimal(0)
        for key in honest.keys() | planted.keys():
            if key[0] != scope:
                continue
            before, after = honest.get(key, _Billed()), planted.get(key, _Billed())
            if plant.kind == "unlogged_usage":
                before = _Billed()  # nothing logged: all of it billed beyond the log
            money += (after.uncached - before.uncached) * unit["input"]
            money += (after.cached - before.cached) * unit["cached_input"]
            money += (after.output - before.output) * unit["output"]
        return {"impact_usd": money}
    if plant.kind == "charged_errors":
        extra = sum(planted[k].uncached - honest[k].uncached for k in honest if k[0] == CHARGED)
        return {"impact_usd": extra * prices(CHARGED.model)["input"]}
    if plant.kind == "cache_mischarge":
        unit = prices(MISCHARGED.model)
        moved = sum(honest[k].cached - planted[k].cached for k in honest if k[0] == MISCHARGED)
        return {"impact_usd": moved * (unit["input"] - unit["cached_input"])}
    if plant.kind == "price_drift":
        output = sum(row.output for (scope, day), row in honest.items() if scope == DRIFTED and day >= DRIFT_FROM)
        return {"impact_usd": output * prices(DRIFTED.model)["output"] * (Decimal(str(plant.size)) - 1)}
    raise ValueError(plant.kind)


def renamed(month: Month, rng: random.Random) -> Month:
    """The same month with every workspace and key renamed and the events and statement rows shuffled."""
    names = {s.workspace: f"ws_{i}_{rng.randrange(10**6)}" for i, s in enumerate((*SCOPES, LEAKED))}
    names |= {s.key: f"k_{i}_{rng.randrange(10**6)}" for i, s in enumerate((*SCOPES, LEAKED))}
    events = [
        replace(e, body={**e.body, "account": names[e.body["account"]], "api_key_id": names[e.body["api_key_id"]]})
        for e in month.events
    ]
    rng.shuffle(events)

    def rename(document: RawDocument) -> RawDocument:
        body = json.loads(document.content)
        for bucket in body["data"]:
            for row in bucket["results"]:
                for field_name in ("workspace_id", "api_key_id"):
                    if field_name in row:
                        row[field_name] = names[row[field_name]]
            rng.shuffle(bucket["results"])
        return replace(document, content=json.dumps(body).encode())

    return Month(
        events,
        truth=month.truth,
        documents=[rename(d) for d in month.documents],
        first_import=[rename(d) for d in month.first_import],
    )
