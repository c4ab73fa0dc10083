"""A month of the models most teams use — gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.1-mini, o4-mini, deepseek-chat,
deepseek-reasoner, qwen-plus, mistral-large-latest beside Claude Sonnet and Haiku 4.5 — logged through the
ingest API and billed, at list prices, in one FOCUS 1.x cost export (the shape the `focus` importer reads),
except for three planted discrepancies: gpt-4o cache reads billed as uncached input on one day, deepseek-chat
usage billed on a day nothing was logged, o4-mini input billed above its list price."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

MODELS = [
    ("openai", "proj_main", "gpt-4o"),
    ("openai", "proj_main", "gpt-4o-mini"),
    ("openai", "proj_main", "gpt-4.1"),
    ("openai", "proj_main", "gpt-4.1-mini"),
    ("openai", "proj_main", "o4-mini"),
    ("deepseek", "ds_main", "deepseek-chat"),
    ("deepseek", "ds_main", "deepseek-reasoner"),
    ("qwen", "ws_main", "qwen-plus"),
    ("mistral", "ms_main", "mistral-large-latest"),
    ("anthropic", "wrk_main", "claude-sonnet-4-5"),
    ("anthropic", "wrk_main", "claude-haiku-4-5"),
]
FIRST_DAY = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 10
REQUESTS_PER_DAY = 40
INPUT, CACHED, OUTPUT = 90_000, 60_000, 5_000  # per request (below every long-context band); input includes cached
MISCHARGED = ("gpt-4o", 3)  # that day's cache reads billed as uncached input
UNLOGGED = ("deepseek-chat", 12)  # billed on a day nothing was logged
OVERPRICED = ("o4-mini", Decimal("1.25"))  # billed input price per 1M tokens (list: 1.10)

FOCUS_HEADER = (
    "BilledCost,BillingCurrency,ChargeCategory,ChargeDescription,ChargePeriodStart,ChargePeriodEnd,"
    "ConsumedQuantity,ConsumedUnit,ProviderName,ServiceCategory,ServiceName,SkuMeter,SubAccountId"
)
PROVIDER_NAMES = {"openai": "OpenAI", "deepseek": "DeepSeek", "qwen": "Qwen", "mistral": "Mistral",
                  "anthropic": "Anthropic"}  # fmt: skip


def request_time(day: int, request: int) -> datetime:
    return FIRST_DAY + timedelta(days=day, minutes=17 + 35 * request)


def events() -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{model}-{day}-{request}",
            "occurred_at": request_time(day, request).isoformat(),
            "provider": provider,
            "account": account,
            "request_model": model,
            "input_tokens": INPUT,
            "cache_read_input_tokens": CACHED if provider != "mistral" else 0,
            "output_tokens": OUTPUT,
            "finish_reason": "stop",
        }
        for provider, account, model in MODELS
        for day in range(DAYS)
        for request in range(REQUESTS_PER_DAY)
    ]


def write_statement(path: Path, list_price: Callable[[str, str, str, datetime], Decimal]) -> Path:
    """The month's FOCUS export; `list_price(provider, model, token_type, at)` is the list price per 1M tokens."""
    rows = []
    for provider, account, model in MODELS:
        cached_per_request = CACHED if provider != "mistral" else 0
        days = list(range(DAYS)) + ([UNLOGGED[1]] if model == UNLOGGED[0] else [])
        for day in days:
            start = FIRST_DAY + timedelta(days=day)
            per_request = {"input": INPUT - cached_per_request, "cached_input": cached_per_request, "output": OUTPUT}
            if (model, day) == MISCHARGED:
                per_request["input"] += per_request.pop("cached_input")
            for token_type, tokens in per_request.items():
                if not tokens:
                    continue
                quantity = REQUESTS_PER_DAY * tokens
                # Each request at the price in effect at its time (DeepSeek's peak hours cost more).
                amount = sum(
                    (
                        tokens
                        * (
                            OVERPRICED[1]
                            if (model, token_type) == (OVERPRICED[0], "input")
                            else list_price(provider, model, token_type, request_time(day, request))
                        )
                        / 1_000_000
                        for request in range(REQUESTS_PER_DAY)
                    ),
                    Decimal(0),
                ).quantize(Decimal("0.000001"))
                description = f"{model} {token_type.replace('_', ' ')} tokens"
                rows.append(
                    f"{amount},USD,Usage,{description},{start:%Y-%m-%dT%H:%M:%SZ},"
                    f"{start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ},{quantity},Tokens,{PROVIDER_NAMES[provider]},"
                    f"AI and Machine Learning,{PROVIDER_NAMES[provider]} API,{model},{account}"
                )
    path.write_text("\n".join([FOCUS_HEADER, *rows]) + "\n", encoding="utf-8")
    return path
