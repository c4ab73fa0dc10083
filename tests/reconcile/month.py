"""A realistic month of logged usage and the statements that bill it exactly, for planting anomalies.

Prices are list prices in USD per 1M tokens, as published:
- gpt-5.4: https://developers.openai.com/api/docs/models/gpt-5.4 ($2.50 input, $0.25 cached, $15 output);
- gpt-5.4-mini: OpenAI pricing page as quoted by https://benchlm.ai/blog/posts/openai-api-pricing
  ($0.75 / $0.075 / $4.50);
- claude-sonnet-4-6: https://platform.claude.com/docs/zh-CN/about-claude/pricing ($3 input, $3.75 5m
  write, $6 1h write, $0.30 cache hit, $15 output); claude-opus-4-6 on the same page ($5 / $6.25 / $10 /
  $0.50 / $25).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from msgspec.structs import replace

from ledger.periods import Period
from ledger.reconcile import (
    CATEGORIES,
    BilledDay,
    FinishCounts,
    LoggedDay,
    ReconcileResult,
    ReconcileSettings,
    TokenCounts,
    TruncationStats,
    reconcile,
)

PERIOD = Period.of_month(2026, 10)
DAYS: list[date] = list(PERIOD.days())
MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")


def _prices(**per_million: str) -> dict[str, Decimal]:
    return {category: Decimal(value) / MILLION for category, value in per_million.items()}


PRICES: dict[str, dict[str, Decimal]] = {
    "gpt-5.4": _prices(uncached_input="2.50", cached_input="0.25", output="15.00"),
    "gpt-5.4-mini": _prices(uncached_input="0.75", cached_input="0.075", output="4.50"),
    "claude-sonnet-4-6": _prices(
        uncached_input="3", cached_input="0.30", cache_write_5m="3.75", cache_write_1h="6", output="15"
    ),
    "claude-opus-4-6": _prices(
        uncached_input="5", cached_input="0.50", cache_write_5m="6.25", cache_write_1h="10", output="25"
    ),
}


@dataclass(frozen=True)
class Profile:
    """How one tenant scope uses a model: daily request range and mean tokens per request."""

    provider: str
    account: str
    api_key_id: str
    model: str
    requests: tuple[int, int] = (1500, 2500)
    uncached: int = 900
    cached: int = 2000
    write_5m: int = 0
    write_1h: int = 0
    output: int = 350
    system_prompt: tuple[int, int] = (300, 1200)
    """Range of the day's mean system-prompt size; about 60% of requests carry one."""


OPENAI = Profile(provider="openai", account="proj_main", api_key_id="key_a", model="gpt-5.4")
OPENAI_MINI = Profile(
    provider="openai", account="proj_main", api_key_id="key_b", model="gpt-5.4-mini", requests=(4000, 6000)
)
ANTHROPIC = Profile(
    provider="anthropic",
    account="wrk_prod",
    api_key_id="key_c",
    model="claude-sonnet-4-6",
    uncached=600,
    cached=5000,
    write_5m=300,
    write_1h=50,
    output=420,
)
PROFILES = (OPENAI, OPENAI_MINI, ANTHROPIC)


def tokens_of(profile: Profile, requests: int, rng: random.Random) -> TokenCounts:
    def around(mean: int) -> int:
        return round(mean * requests * rng.uniform(0.9, 1.1))

    return TokenCounts(
        uncached_input=around(profile.uncached),
        cached_input=around(profile.cached),
        cache_write_5m=around(profile.write_5m),
        cache_write_1h=around(profile.write_1h),
        output=around(profile.output),
    )


def priced(
    row: LoggedDay, *, prices: dict[str, Decimal] | None = None, requested: dict[str, Decimal] | None = None
) -> LoggedDay:
    """The row with its expected costs from the list prices of its served (and requested) model."""
    prices = prices if prices is not None else PRICES[row.model]
    by_category = {c: row.tokens.get(c) * prices[c] for c in CATEGORIES if c in prices}
    at_requested = PRICES.get(row.request_model, prices) if requested is None else requested
    return replace(
        row,
        expected_cost=sum(by_category.values(), Decimal(0)),
        expected_cost_by_category=by_category,
        expected_unit_price=dict(prices),
        expected_cost_at_requested_model=sum(
            (row.tokens.get(c) * at_requested[c] for c in CATEGORIES if c in at_requested), Decimal(0)
        ),
    )


def logged_day(profile: Profile, day: date, rng: random.Random, *, scale: float = 1.0) -> LoggedDay:
    successful = round(rng.randint(*profile.requests) * scale)
    errors_429 = rng.randint(0, successful // 80)
    errors_5xx = rng.randint(0, successful // 300)
    with_prompt = round(successful * rng.uniform(0.5, 0.7))
    streamed = round(successful * 0.7)
    spread_low = rng.randint(100, 400)
    return priced(
        LoggedDay(
            provider=profile.provider,
            account=profile.account,
            api_key_id=profile.api_key_id,
            model=profile.model,
            request_model=profile.model,
            service_tier="standard",
            day=day,
            requests=successful + errors_429 + errors_5xx,
            successful_requests=successful,
            errors_429=errors_429,
            errors_5xx=errors_5xx,
            tokens=tokens_of(profile, successful, rng),
            reasoning_tokens=0,
            system_prompt_tokens=with_prompt * rng.randint(*profile.system_prompt),
            requests_with_system_prompt=with_prompt,
            streamed_requests=streamed,
            streamed_missing_finish=streamed // 2000,
            finish=FinishCounts(stop=successful - 3, length=3),
            # A few length stops at scattered output sizes: ordinary, not a cap.
            truncation=TruncationStats(count=3, min_output=spread_low, max_output=spread_low + 2500),
        )
    )


def month(profiles: Iterable[Profile] = PROFILES, *, seed: int = 7, days: Sequence[date] = DAYS) -> list[LoggedDay]:
    rng = random.Random(seed)
    return [logged_day(profile, day, rng) for day in days for profile in profiles]


GRAIN = ("account", "api_key_id", "model")


def statement(
    logged: Iterable[LoggedDay],
    *,
    grain: tuple[str, ...] = GRAIN,
    amounts: bool = True,
    requests: bool = True,
    source: str = "usage",
    final: bool = True,
) -> list[BilledDay]:
    """What a provider statement at `grain` shows when it bills the log exactly (amounts in cents)."""
    groups: dict[tuple[object, ...], list[LoggedDay]] = defaultdict(list)
    for row in logged:
        groups[(row.provider, row.day, *(getattr(row, name) for name in grain))].append(row)
    out = []
    for (provider, day, *values), rows in groups.items():
        tokens = {c: sum(r.tokens.get(c) for r in rows) for c in CATEGORIES}
        stated = {c: n for c, n in tokens.items() if c in PRICES[rows[0].model]}
        out.append(
            BilledDay(
                provider=str(provider),
                day=day,  # type: ignore[arg-type]
                **dict(zip(grain, values, strict=True)),
                quantities=stated,
                requests=sum(r.successful_requests for r in rows) if requests else None,
                amounts=_amounts(rows) if amounts else {},
                final=final,
                source=source,
            )
        )
    return out


def _amounts(rows: list[LoggedDay]) -> dict[str, Decimal]:
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        for category, cost in row.expected_cost_by_category.items():
            if cost is not None:
                amounts[category] += cost
    return {c: v.quantize(CENT) for c, v in amounts.items()}


def bill_quantity(row: BilledDay, category: str, quantity: int, *, unit_price: Decimal | None = None) -> BilledDay:
    """The billed row with a new quantity for one category, charged at `unit_price` (default: list price)."""
    price = unit_price if unit_price is not None else PRICES[row.model or ""][category]
    return replace(
        row,
        quantities={**row.quantities, category: quantity},
        amounts={**row.amounts, category: (quantity * price).quantize(CENT)} if row.amounts else {},
    )


def where(
    billed: Iterable[BilledDay], test: Callable[[BilledDay], bool], change: Callable[[BilledDay], BilledDay]
) -> list[BilledDay]:
    return [change(row) if test(row) else row for row in billed]


def run(
    logged: Sequence[LoggedDay],
    billed: Sequence[BilledDay],
    *,
    settings: ReconcileSettings | None = None,
    history: Sequence[LoggedDay] = (),
    period: Period = PERIOD,
) -> ReconcileResult:
    return reconcile(logged, billed, period=period, settings=settings or ReconcileSettings(), history=history)


def kinds(result: ReconcileResult) -> list[tuple[str, str | None]]:
    return [(f.kind, f.api_key_id) for f in result.findings]


def day_after(day: date) -> date:
    return day + timedelta(days=1)


def shift_usage(billed: Sequence[BilledDay], key: str, day: date, share: float) -> list[BilledDay]:
    """The statement with `share` of one key's usage on `day` billed on the next day instead (events near
    midnight bucketed differently by the provider)."""
    source = next(r for r in billed if r.api_key_id == key and r.day == day)
    target = next(r for r in billed if r.api_key_id == key and r.day == day_after(day))
    new_source, new_target = source, target
    for category, quantity in source.quantities.items():
        moved = round(quantity * share)
        new_source = bill_quantity(new_source, category, quantity - moved)
        new_target = bill_quantity(new_target, category, target.quantities[category] + moved)
    if source.requests is not None and target.requests is not None:
        moved_requests = round(source.requests * share)
        new_source = replace(new_source, requests=source.requests - moved_requests)
        new_target = replace(new_target, requests=target.requests + moved_requests)
    return [new_source if r is source else new_target if r is target else r for r in billed]
