"""A populated demo: a realistic month of usage for several providers sent through the real ingest API,
billing statements written in each provider's documented shape and read by the real importers, with
discrepancies of several kinds planted beside clean control groups, then reconciled.

Deterministic: the same month and seed give the same events (their ids make a re-run a no-op) and the
same statements (a re-import replaces the previous one)."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from importers.base import RawDocument
from ledger.periods import Period, day_start
from ledger.pricing.prices import PriceCatalog, TokenUsage, pricing_provider_of

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class DemoScope:
    """One stream of traffic: who calls which model how much, and what its bill gets wrong (if anything)."""

    name: str
    provider: str
    account: str
    api_key_id: str
    model: str
    app: str
    requests_per_day: int
    input_tokens: int
    output_tokens: int
    cache_read_share: float = 0.0
    system_prompt_tokens: int | None = None
    error_rate: float = 0.0
    stream_share: float = 0.0
    missing_finish_share: float = 0.0
    truncation_share: float = 0.0
    substitute_model: str | None = None
    substitution_share: float = 0.0
    spike_day: int | None = None
    plant: str = "clean"  # what the statement does differently; "clean" = a control group


SCOPES: tuple[DemoScope, ...] = (
    DemoScope(
        "openai-web", "openai", "proj_web", "key_web", "gpt-5.4", "web-search", 220, 2_400, 420, cache_read_share=0.3
    ),
    DemoScope(
        "openai-support",
        "openai",
        "proj_support",
        "key_support",
        "gpt-5.4",
        "support-bot",
        600,
        1_300,
        260,
        plant="padding",
    ),
    DemoScope(
        "openai-rag",
        "openai",
        "proj_rag",
        "key_rag",
        "gpt-5.4",
        "rag",
        160,
        9_000,
        350,
        cache_read_share=0.7,
        plant="cache_mischarge",
    ),
    DemoScope(
        "openai-chat",
        "openai",
        "proj_chat",
        "key_chat",
        "gpt-5.4-mini",
        "chat",
        300,
        900,
        300,
        error_rate=0.06,
        plant="charged_errors",
    ),
    DemoScope(
        "anthropic-research",
        "anthropic",
        "wrk_research",
        "key_research",
        "claude-sonnet-4-6",
        "research",
        140,
        5_200,
        800,
        system_prompt_tokens=1_850,
        plant="system_prompt_double_count",
    ),
    DemoScope(
        "anthropic-apps",
        "anthropic",
        "wrk_apps",
        "key_apps",
        "claude-haiku-4-5",
        "summarizer",
        400,
        2_000,
        600,
        cache_read_share=0.4,
        plant="price_drift",
    ),
    DemoScope(
        "openrouter-agents",
        "openrouter",
        "or_main",
        "or_key_agents",
        "anthropic/claude-sonnet-4.6",
        "agents",
        120,
        3_000,
        500,
        substitute_model="openai/gpt-5.4",
        substitution_share=0.08,
    ),
    DemoScope(
        "deepseek-batch",
        "deepseek",
        "ds_main",
        "ds_key",
        "deepseek-v4-flash",
        "extraction",
        200,
        1_600,
        900,
        truncation_share=0.07,
    ),
    DemoScope(
        "qwen-chat",
        "qwen",
        "qw_main",
        "qw_key",
        "qwen3.8-flash",
        "assistant",
        180,
        1_100,
        320,
        stream_share=1.0,
        missing_finish_share=0.09,
    ),
    DemoScope("google-docs", "google", "gcp-prod", "", "gemini-2.5-pro", "doc-ai", 300, 6_000, 700, spike_day=23),
)
LEAKED_KEY = DemoScope(
    # A project of its own, which nothing logs under: the control project's bill is its own usage alone.
    "openai-leaked",
    "openai",
    "proj_legacy",
    "key_leaked",
    "gpt-5.4",
    "-",
    90,
    6_000,
    900,
    plant="unlogged_usage",
)
PADDING_TOKENS = 80
PRICE_DRIFT_FROM_DAY = 15
PRICE_DRIFT_FACTOR = Decimal("1.2")
CACHE_BILLED_SHARE = 0.6
TRUNCATION_CAP = 4_096


@dataclass
class DayTotals:
    """What one scope used on one day, summed from its events (and what the bill is built from)."""

    requests: int = 0
    successful: int = 0
    uncached_input: int = 0
    cached_input: int = 0
    output: int = 0
    system_prompt_tokens: int = 0
    served: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    hourly: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))

    def rates(self, scope: DemoScope, day: date, catalog: PriceCatalog) -> dict[str, Decimal]:
        """USD per token of each category, weighted by when the tokens were used (prices may vary by hour)."""
        rates = {}
        for position, token_type in enumerate(("input", "cached_input", "output")):
            spent, used = Decimal(0), 0
            for hour, tokens in self.hourly.items():
                if not tokens[position]:
                    continue
                at = day_start(day) + timedelta(hours=hour, minutes=30)
                provider = pricing_provider_of(scope.provider, scope.model)
                price = catalog.unit_price(provider, scope.model, token_type, at=at)
                if price is None:
                    raise ValueError(f"the demo needs a price for {scope.model} {token_type} at {at}")
                spent += tokens[position] * price.price_per_token()
                used += tokens[position]
            rates[token_type] = spent / used if used else Decimal(0)
        return rates

    def add(self, event: dict[str, Any]) -> None:
        self.requests += 1
        if event["status_code"] < 300:
            self.successful += 1
        cached = event.get("cache_read_input_tokens", 0)
        self.uncached_input += event["input_tokens"] - cached
        self.cached_input += cached
        self.output += event["output_tokens"]
        self.system_prompt_tokens += event.get("system_prompt_tokens") or 0
        hourly = self.hourly[datetime.fromisoformat(event["occurred_at"]).hour]
        hourly[0] += event["input_tokens"] - cached
        hourly[1] += cached
        hourly[2] += event["output_tokens"]
        served = self.served[event.get("response_model", event["request_model"])]
        served[0] += 1
        served[1] += event["input_tokens"] - cached
        served[2] += cached
        served[3] += event["output_tokens"]


def demo_period(now: datetime) -> Period:
    """The last complete month."""
    return Period.containing(now).previous()


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """How fast a model answers: the median time to its first token, the median rate at which it writes output
    tokens, and how often a request lands in the long tail (queued, retried upstream, a slow replica), where it
    takes several times as long. Real latencies look like this: lognormal around a model-dependent centre, plus
    a heavy tail that sets p99 well apart from p95."""

    ttft_ms: float
    output_tokens_per_s: float
    tail_share: float


LATENCY_PROFILES: dict[tuple[str, str], LatencyProfile] = {
    ("openai", "gpt-5.4"): LatencyProfile(700, 75, 0.02),
    ("openai", "gpt-5.4-mini"): LatencyProfile(350, 140, 0.01),
    ("anthropic", "claude-sonnet-4-6"): LatencyProfile(1_100, 60, 0.03),
    ("anthropic", "claude-haiku-4-5"): LatencyProfile(450, 150, 0.015),
    ("openrouter", "anthropic/claude-sonnet-4.6"): LatencyProfile(1_500, 55, 0.05),
    ("deepseek", "deepseek-v4-flash"): LatencyProfile(900, 40, 0.06),
}
DEFAULT_LATENCY = LatencyProfile(800, 70, 0.03)


def generate_events(scope: DemoScope, period: Period, seed: int = 7, scale: float = 1.0) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:{scope.name}:{period.label}")
    # The long tail draws from a stream of its own, so the usage figures stay those of the same seed.
    tail = random.Random(f"{seed}:{scope.name}:{period.label}:latency-tail")
    for day in period.days():
        weekday_factor = 0.65 if day.weekday() >= 5 else 1.0
        count = int(scope.requests_per_day * scale * weekday_factor * rng.uniform(0.85, 1.15))
        if scope.spike_day is not None and day.day == scope.spike_day:
            count *= 6
        for n in range(count):
            yield _event(scope, day, n, rng, tail)


def _event(scope: DemoScope, day: date, n: int, rng: random.Random, tail: random.Random) -> dict[str, Any]:
    moment = day_start(day) + timedelta(seconds=rng.randrange(86_400))
    failed = rng.random() < scope.error_rate
    input_tokens = max(50, int(rng.gauss(scope.input_tokens, scope.input_tokens * 0.3)))
    max_tokens = 8_192
    output_tokens = max(1, int(rng.gauss(scope.output_tokens, scope.output_tokens * 0.4)))
    finish: str | None = "stop"
    if scope.truncation_share and rng.random() < scope.truncation_share:
        output_tokens, finish = TRUNCATION_CAP, "length"
    stream = rng.random() < scope.stream_share
    if stream and rng.random() < scope.missing_finish_share:
        finish = None
    spread = rng.lognormvariate(0, 0.35)  # drawn where the usage figures' stream has always drawn it
    event: dict[str, Any] = {
        "event_id": f"demo-{scope.name}-{day.isoformat()}-{n}",
        "occurred_at": moment.isoformat(),
        "provider": scope.provider,
        "account": scope.account,
        "request_model": scope.model,
        "app": scope.app,
        "stream": stream,
        "max_tokens": max_tokens,
        "latency_ms": 0,
        "status_code": 200,
        "finish_reason": finish,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": int(input_tokens * scope.cache_read_share * rng.uniform(0.8, 1.0)),
    }
    if scope.api_key_id:
        event["api_key_id"] = scope.api_key_id
    ttft_spread = rng.uniform(0.75, 1.3) if stream else 1.0
    ttft_ms, latency_ms = _latency(scope, output_tokens, spread, ttft_spread, tail)
    event["latency_ms"] = latency_ms
    if stream:
        event["ttft_ms"] = ttft_ms
    if scope.system_prompt_tokens:
        event["system_prompt_tokens"] = int(scope.system_prompt_tokens * rng.uniform(0.7, 1.3))
    if scope.substitute_model and rng.random() < scope.substitution_share:
        event["response_model"] = scope.substitute_model
    if failed:
        status = rng.choice((429, 429, 429, 500, 503))
        event.update(
            status_code=status,
            error_type="rate_limit" if status == 429 else "server_error",
            input_tokens=0,
            output_tokens=0,
            cache_read_input_tokens=0,
            finish_reason=None,
            latency_ms=max(20, ttft_ms // 4),  # refused before any token is written
        )
        event.pop("system_prompt_tokens", None)
        event.pop("ttft_ms", None)
    return event


def _latency(
    scope: DemoScope, output_tokens: int, spread: float, ttft_spread: float, tail: random.Random
) -> tuple[int, int]:
    """(time to first token, whole latency) in ms of one request of `output_tokens`: the model's time to first
    token and writing rate, both varied by lognormal `spread` (and the first token by `ttft_spread`); a
    `tail_share` of requests take 2 to 8 times as long (a Pareto draw)."""
    profile = LATENCY_PROFILES.get((scope.provider, scope.model), DEFAULT_LATENCY)
    slowdown = min(8.0, 1 + tail.paretovariate(2.0)) if tail.random() < profile.tail_share else 1.0
    ttft = profile.ttft_ms * spread * ttft_spread * slowdown
    writing = output_tokens / profile.output_tokens_per_s * 1000 * spread * slowdown
    return int(ttft), int(ttft + writing)


def day_totals(events: Iterator[dict[str, Any]]) -> dict[date, DayTotals]:
    totals: dict[date, DayTotals] = defaultdict(DayTotals)
    for event in events:
        totals[datetime.fromisoformat(event["occurred_at"]).date()].add(event)
    return totals


# ------------------------------------------------------------------ statements in the providers' shapes


@dataclass(frozen=True)
class BilledUsage:
    """One scope-day as the provider bills it, with the list price per token of each category."""

    requests: int
    uncached_input: int
    cached_input: int
    output: int
    rates: dict[str, Decimal]

    def amount(self, token_type: str, quantity: int) -> Decimal:
        return quantity * self.rates[token_type]


def billed_usage(scope: DemoScope, day: date, totals: DayTotals, catalog: PriceCatalog) -> BilledUsage:
    """Apply the scope's planted discrepancy to what it really used."""
    uncached, cached = totals.uncached_input, totals.cached_input
    requests = totals.successful
    if scope.plant == "padding":
        uncached += PADDING_TOKENS * totals.successful
    elif scope.plant == "system_prompt_double_count":
        uncached += totals.system_prompt_tokens
    elif scope.plant == "cache_mischarge":
        moved = cached - int(cached * CACHE_BILLED_SHARE)
        cached, uncached = cached - moved, uncached + moved
    elif scope.plant == "charged_errors":
        requests = totals.requests
    return BilledUsage(requests, uncached, cached, totals.output, totals.rates(scope, day, catalog))


def _unix(day: date) -> int:
    return int(day_start(day).timestamp())


def openai_documents(
    days: dict[str, dict[date, BilledUsage]], scopes: dict[str, DemoScope], catalog: PriceCatalog
) -> list[RawDocument]:
    """`GET /v1/organization/usage/completions` pages (one a week) and one `GET /v1/organization/costs` page."""
    all_days = sorted({day for per_day in days.values() for day in per_day})
    usage_pages = []
    for week in range(0, len(all_days), 7):
        buckets = []
        for day in all_days[week : week + 7]:
            results = []
            for name, per_day in days.items():
                usage = per_day.get(day)
                if usage is None:
                    continue
                scope = scopes[name]
                results.append(
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": usage.uncached_input + usage.cached_input,
                        "output_tokens": usage.output,
                        "num_model_requests": usage.requests,
                        "project_id": scope.account,
                        "user_id": None,
                        "api_key_id": scope.api_key_id,
                        "model": scope.model,
                        "batch": False,
                        "service_tier": "default",
                        "input_cached_tokens": usage.cached_input,
                        "input_cache_write_tokens": 0,
                        "input_uncached_tokens": usage.uncached_input,
                    }
                )
            buckets.append(
                {
                    "object": "bucket",
                    "start_time": _unix(day),
                    "end_time": _unix(day + timedelta(days=1)),
                    "results": results,
                }
            )
        has_more = week + 7 < len(all_days)
        usage_pages.append(
            {
                "object": "page",
                "data": buckets,
                "has_more": has_more,
                "next_page": f"page_{week + 7}" if has_more else None,
            }
        )
    cost_buckets = []
    for day in all_days:
        costs: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for name, per_day in days.items():
            usage = per_day.get(day)
            if usage is None:
                continue
            scope = scopes[name]
            for label, token_type, quantity in (
                ("input", "input", usage.uncached_input),
                ("cached input", "cached_input", usage.cached_input),
                ("output", "output", usage.output),
            ):
                entry = costs[(scope.account, f"{scope.model}, {label}")]
                entry["amount"] += usage.amount(token_type, quantity)
                entry["quantity"] += quantity
        cost_buckets.append(
            {
                "object": "bucket",
                "start_time": _unix(day),
                "end_time": _unix(day + timedelta(days=1)),
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": float(round(entry["amount"], 6)), "currency": "usd"},
                        "line_item": line_item,
                        "project_id": project,
                        "api_key_id": None,
                        "quantity": int(entry["quantity"]),
                        "quantity_unit": "tokens",
                    }
                    for (project, line_item), entry in sorted(costs.items())
                ],
            }
        )
    documents = [
        _json_document("openai", f"openai_usage_completions_p{n + 1}.json", page) for n, page in enumerate(usage_pages)
    ]
    documents.append(
        _json_document(
            "openai",
            "openai_costs.json",
            {"object": "page", "data": cost_buckets, "has_more": False, "next_page": None},
        )
    )
    return documents


ANTHROPIC_DESCRIPTIONS = {"claude-sonnet-4-6": "Claude Sonnet 4.6", "claude-haiku-4-5": "Claude Haiku 4.5"}


def anthropic_documents(
    days: dict[str, dict[date, BilledUsage]], scopes: dict[str, DemoScope], catalog: PriceCatalog
) -> list[RawDocument]:
    """`GET /v1/organizations/usage_report/messages` and `GET /v1/organizations/cost_report` (amounts in cents)."""
    all_days = sorted({day for per_day in days.values() for day in per_day})
    usage_buckets, cost_buckets = [], []
    for day in all_days:
        usage_results, cost_results = [], []
        for name, per_day in days.items():
            usage = per_day.get(day)
            if usage is None:
                continue
            scope = scopes[name]
            usage_results.append(
                {
                    "uncached_input_tokens": usage.uncached_input,
                    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                    "cache_read_input_tokens": usage.cached_input,
                    "output_tokens": usage.output,
                    "server_tool_use": {"web_search_requests": 0},
                    "api_key_id": scope.api_key_id,
                    "workspace_id": scope.account,
                    "model": scope.model,
                    "service_tier": "standard",
                    "context_window": "0-200k",
                }
            )
            for token_type, catalog_type, quantity, label in (
                ("uncached_input_tokens", "input", usage.uncached_input, "Input Tokens"),
                ("cache_read_input_tokens", "cached_input", usage.cached_input, "Cache Read Input Tokens"),
                ("output_tokens", "output", usage.output, "Output Tokens"),
            ):
                dollars = usage.amount(catalog_type, quantity)
                if scope.plant == "price_drift" and catalog_type == "output" and day.day >= PRICE_DRIFT_FROM_DAY:
                    dollars *= PRICE_DRIFT_FACTOR
                cost_results.append(
                    {
                        "currency": "USD",
                        "amount": f"{dollars * 100:.4f}",
                        "workspace_id": scope.account,
                        "description": f"{ANTHROPIC_DESCRIPTIONS[scope.model]} Usage - {label}",
                        "cost_type": "tokens",
                        "context_window": "0-200k",
                        "model": scope.model,
                        "service_tier": "standard",
                        "token_type": token_type,
                        "inference_geo": None,
                    }
                )
        window = {
            "starting_at": f"{day.isoformat()}T00:00:00Z",
            "ending_at": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
        }
        usage_buckets.append({**window, "results": usage_results})
        cost_buckets.append({**window, "results": cost_results})
    return [
        _json_document(
            "anthropic", "anthropic_usage_report.json", {"data": usage_buckets, "has_more": False, "next_page": None}
        ),
        _json_document(
            "anthropic", "anthropic_cost_report.json", {"data": cost_buckets, "has_more": False, "next_page": None}
        ),
    ]


def openrouter_documents(scope: DemoScope, totals: dict[date, DayTotals], catalog: PriceCatalog) -> list[RawDocument]:
    """One `GET /api/v1/activity?date=` answer per day: per served model, requests, tokens and USD."""
    documents = []
    for day, day_total in sorted(totals.items()):
        rows = []
        for model, (requests, uncached, cached, output) in sorted(day_total.served.items()):
            vendor = pricing_provider_of(scope.provider, model)
            usage = TokenUsage(uncached_input=uncached, cached_input=cached, output=output)
            cost = catalog.cost(vendor, model, usage, at=day_start(day) + timedelta(hours=12))  # flat-priced models
            rows.append(
                {
                    "date": day.isoformat(),
                    "model": model,
                    "model_permaslug": model,
                    "endpoint_id": f"demo-{vendor}",
                    "provider_name": vendor.title(),
                    "usage": float(round(cost.total, 6)),
                    "byok_usage_inference": 0,
                    "requests": requests,
                    "prompt_tokens": uncached + cached,
                    "completion_tokens": output,
                    "reasoning_tokens": 0,
                }
            )
        documents.append(_json_document("openrouter", f"openrouter_activity_{day.isoformat()}.json", {"data": rows}))
    return documents


FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "EffectiveCost",
    "HostProviderName",
    "PricingQuantity",
    "PricingUnit",
    "ResourceId",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "SkuId",
    "SkuMeter",
    "SubAccountId",
    "SubAccountName",
)


def focus_document(scope: DemoScope, days: dict[date, BilledUsage], catalog: PriceCatalog) -> RawDocument:
    """A FOCUS 1.3 export of Vertex AI (Gemini) charges, one row per day and SKU."""
    out = io.StringIO()
    writer = csv.DictWriter(out, FOCUS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for day, usage in sorted(days.items()):
        for meter, catalog_type, quantity in (
            ("Gemini 2.5 Pro Text Input", "input", usage.uncached_input),
            ("Gemini 2.5 Pro Cached Text Input", "cached_input", usage.cached_input),
            ("Gemini 2.5 Pro Text Output", "output", usage.output),
        ):
            cost = usage.amount(catalog_type, quantity)
            writer.writerow(
                {
                    "BilledCost": f"{cost:.6f}",
                    "BillingAccountId": "01A2B3-C4D5E6-F7A8B9",
                    "BillingCurrency": "USD",
                    "ChargeCategory": "Usage",
                    "ChargeClass": "",
                    "ChargeDescription": f"{meter} - Predictions",
                    "ChargePeriodEnd": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
                    "ChargePeriodStart": f"{day.isoformat()}T00:00:00Z",
                    "ConsumedQuantity": quantity,
                    "ConsumedUnit": "Tokens",
                    "EffectiveCost": f"{cost:.6f}",
                    "HostProviderName": "Google Cloud",
                    "PricingQuantity": f"{Decimal(quantity) / MILLION:f}",
                    "PricingUnit": "1M Tokens",
                    "ResourceId": "",
                    "ServiceCategory": "AI and Machine Learning",
                    "ServiceName": "Vertex AI",
                    "ServiceProviderName": "Google Cloud",
                    "SkuId": f"DEMO-{catalog_type.upper()}",
                    "SkuMeter": meter,
                    "SubAccountId": scope.account,
                    "SubAccountName": "Production",
                }
            )
    return RawDocument(
        name="vertex_focus_export.csv", content=out.getvalue().encode(), media_type="text/csv", source="focus"
    )


DEMO_CSV_MAPPING = """# Demo export layout (the demo's own console-style CSV; not a provider's documented format).
provider = "{provider}"
description = "TokenLedger demo export for {provider}"
date_format = "%Y-%m-%d"
timezone = "UTC"
period = "day"
quantity_scale = 1

[columns]
date = "Date"
account = "Project"
api_key_id = "API key"
model = "Model"
usage_type = "Usage type"
quantity = "Quantity"
amount = "Cost"
currency = "Currency"

[usage_types]
"Input" = "uncached_input"
"Cached input" = "cached_input"
"Output" = "output"
"Requests" = "requests"
"""


def csv_document(scope: DemoScope, days: dict[date, BilledUsage], catalog: PriceCatalog) -> RawDocument:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Date", "Project", "API key", "Model", "Usage type", "Quantity", "Cost", "Currency"])
    for day, usage in sorted(days.items()):
        writer.writerow(
            [day.isoformat(), scope.account, scope.api_key_id, scope.model, "Requests", usage.requests, "", "USD"]
        )
        for label, catalog_type, quantity in (
            ("Input", "input", usage.uncached_input),
            ("Cached input", "cached_input", usage.cached_input),
            ("Output", "output", usage.output),
        ):
            cost = f"{usage.amount(catalog_type, quantity):.6f}"
            writer.writerow(
                [day.isoformat(), scope.account, scope.api_key_id, scope.model, label, quantity, cost, "USD"]
            )
    return RawDocument(
        name=f"{scope.provider}_console_export.csv",
        content=out.getvalue().encode(),
        media_type="text/csv",
        source="csv",
    )


def _json_document(source: str, name: str, body: Any) -> RawDocument:
    return RawDocument(
        name=name, content=json.dumps(body, indent=1).encode(), media_type="application/json", source=source
    )


@dataclass(frozen=True)
class DemoStatements:
    """Statement documents by source (csv ones with the mapping text they are read with)."""

    by_source: dict[str, list[RawDocument]]
    csv_mappings: dict[str, str]


def build_statements(period: Period, catalog: PriceCatalog, seed: int = 7, scale: float = 1.0) -> DemoStatements:
    scopes = {scope.name: scope for scope in (*SCOPES, LEAKED_KEY)}
    totals = {scope.name: day_totals(generate_events(scope, period, seed, scale)) for scope in scopes.values()}
    billed = {
        name: {day: billed_usage(scopes[name], day, t, catalog) for day, t in per_day.items()}
        for name, per_day in totals.items()
    }
    leaked = billed.pop(LEAKED_KEY.name)
    billed[LEAKED_KEY.name] = {day: usage for day, usage in leaked.items() if day.day >= 20}

    def of(provider: str) -> dict[str, dict[date, BilledUsage]]:
        return {name: per_day for name, per_day in billed.items() if scopes[name].provider == provider}

    by_source: dict[str, list[RawDocument]] = {
        "openai": openai_documents(of("openai"), scopes, catalog),
        "anthropic": anthropic_documents(of("anthropic"), scopes, catalog),
        "openrouter": openrouter_documents(scopes["openrouter-agents"], totals["openrouter-agents"], catalog),
        "focus": [focus_document(scopes["google-docs"], billed["google-docs"], catalog)],
    }
    mappings = {}
    for name in ("deepseek-batch", "qwen-chat"):
        scope = scopes[name]
        document = csv_document(scope, billed[name], catalog)
        by_source.setdefault("csv", []).append(document)
        mappings[document.name] = DEMO_CSV_MAPPING.format(provider=scope.provider)
    return DemoStatements(by_source, mappings)


def all_events(period: Period, seed: int = 7, scale: float = 1.0) -> Iterator[dict[str, Any]]:
    """Every demo event of the month (the leaked key's usage is, by design, never logged)."""
    for scope in SCOPES:
        yield from generate_events(scope, period, seed, scale)


def batched(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


PLANTED: dict[str, str] = {
    "openai-support": f"padding: +{PADDING_TOKENS} input tokens billed per request",
    "openai-rag": f"cache mischarge: only {CACHE_BILLED_SHARE:.0%} of cache reads billed at the cached rate",
    "openai-chat": "charged errors: 429/5xx failures billed as requests",
    "openai-leaked": "unlogged usage: key_leaked billed from day 20, never logged",
    "anthropic-research": "system prompt double count: each request's system prompt billed twice",
    "anthropic-apps": f"price drift: output billed {PRICE_DRIFT_FACTOR}x list price from day {PRICE_DRIFT_FROM_DAY}",
    "openrouter-agents": "model substitution: 8% of claude-sonnet-4.6 requests served by gpt-5.4",
    "deepseek-batch": f"silent truncation: 7% of responses cut at {TRUNCATION_CAP} tokens below max_tokens 8192",
    "qwen-chat": "missing finish_reason: 9% of streams end without one",
    "google-docs": "spend spike: six times the usual traffic on day 23",
    "openai-web": "control group: statement matches the log",
}


def describe_plants(write: Callable[[str], None]) -> None:
    for name, text in PLANTED.items():
        write(f"  {name:<20} {text}")
