"""OpenAI Admin API statements: completions usage and costs pages.

Shapes from the SDK types `openai/openai-python` src/openai/types/admin/organization/
`usage_completions_response.py`, `usage_costs_response.py`, `usage_costs_params.py` (openai 3.57):
a page is `{object: "page", data: [bucket], has_more, next_page}`, a bucket
`{object: "bucket", start_time, end_time, results: [result]}` with Unix-second bounds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, Final

from importers.base import (
    TOKEN_USAGE_TYPES,
    FetchContext,
    Importer,
    LineTemplate,
    RawDocument,
    StatementLine,
)
from importers.fetching import FetchClient, paginate_grouped
from importers.json_fields import Grouping, JsonObject, load_json, peek_json
from importers.units import whole
from ledger.periods import Period
from ledger.vocabulary import ServiceTier, UsageType

USAGE_PATH: Final = "/organization/usage/completions"
COSTS_PATH: Final = "/organization/costs"
USAGE_GROUP_BY: Final = ("project_id", "api_key_id", "model", "batch", "service_tier")
COSTS_GROUP_BY: Final = ("project_id", "line_item")

_COMPLETIONS: Final = "organization.usage.completions.result"
_COSTS: Final = "organization.costs.result"

# Cost line items are free text. Seen in the wild (third-party code reading the live API, 2026):
# "gpt-5.4-2026-03-05, input", "…, cached input", "…, output", "…, cache writes",
# "priority | gpt-5.6-sol, output, long context", "gpt-audio-mini-2025-12-15 audio, input",
# "web search tool calls", "Vector storage". The SDK's `line_items` filter documents the example
# "gpt-6-astra, input_tokens" (usage_costs_params.py). How batch lines are named is not documented,
# so a prefix is read as a tier only when it is a known OpenAI service tier; anything else is `other`.
_LINE_ITEM: Final = re.compile(
    r"^(?:(?P<tier>[a-z]+) \| )?(?P<model>[^\s,|]+)(?: (?P<modality>[a-z]+))?, "
    r"(?P<direction>[a-z_ ]+?)(?:, long context)?$"
)
_DIRECTIONS: Final = {
    "input": UsageType.UNCACHED_INPUT,
    "input_tokens": UsageType.UNCACHED_INPUT,
    "cached input": UsageType.CACHED_INPUT,
    "output": UsageType.OUTPUT,
    "output_tokens": UsageType.OUTPUT,
    "cache writes": UsageType.CACHE_WRITE_5M,
}
_TIERS: Final = frozenset({"default", "flex", "scale", "priority", "batch"})
"""OpenAI's names of its service tiers, kept on the line as spelt (`TIER_OF_STATEMENT_SPELLING` maps them to ours)."""
# `quantity_unit` values (cost_quantity_unit.py) that count tokens, and the factor to tokens.
_TOKEN_UNITS: Final = {"tokens": Decimal(1), "1000_tokens": Decimal(1000)}


class OpenAIImporter(Importer):
    """Pages of `GET /v1/organization/usage/completions` and `GET /v1/organization/costs`."""

    source = "openai"
    credential_env = "OPENAI_ADMIN_KEY"
    default_base_url = "https://api.openai.com/v1"

    def identify(self, document: RawDocument) -> bool:
        body = peek_json(document)
        return isinstance(body, dict) and body.get("object") == "page" and isinstance(body.get("data"), list)

    def parse(self, document: RawDocument) -> list[StatementLine]:
        return parse_page(document.name, load_json(document))

    def fetch(
        self, period: Period, *, credential: str, client: FetchClient, context: FetchContext
    ) -> Iterator[RawDocument]:
        headers = {"Authorization": f"Bearer {credential}"}
        window = [
            ("start_time", str(int(period.start.timestamp()))),
            ("end_time", str(int(period.end.timestamp()))),
            ("bucket_width", "1d"),
            ("limit", "31"),
        ]
        yield from paginate_grouped(
            client,
            ((USAGE_PATH, USAGE_GROUP_BY), (COSTS_PATH, COSTS_GROUP_BY)),
            window,
            headers=headers,
            source=self.source,
            credential_env=self.credential_env,
        )


_BLANKS: Final = {"project_id": "", "api_key_id": "", "service_tier": "default"}
"""What a null dimension of a grouped page is: "" for no project or key (as events without an account or key
id carry), the default tier."""


def parse_page(document: str, body: Any) -> list[StatementLine]:
    """The lines of one usage or costs page (both can be mixed: each result names its `object`)."""
    page = JsonObject.root(document, body)
    results = []
    for bucket in page.need_objects("data"):
        start, end = bucket.need_unix_time("start_time"), bucket.need_unix_time("end_time")
        # Some reference renders name the list `result`; the SDK and real responses use `results`.
        key = "result" if "results" not in bucket.data and "result" in bucket.data else "results"
        results += [
            (start, end, result.get_str("object") or _guess_kind(result), result) for result in bucket.need_objects(key)
        ]
    # Grouped by project, key or tier, a null one is a bucket of its own, not usage summed over every project.
    groupings = {
        kind: Grouping((result for _, _, other, result in results if other == kind), _BLANKS)
        for kind in {kind for _, _, kind, _ in results}
    }
    lines: list[StatementLine] = []
    for start, end, kind, result in results:
        template = LineTemplate(
            source="openai",
            provider="openai",
            account=groupings[kind].value(result, "project_id"),
            api_key_id=groupings[kind].value(result, "api_key_id"),
            model=result.get_str("model"),
            service_tier=groupings[kind].value(result, "service_tier"),
            period_start=start,
            period_end=end,
            document=document,
            location=result.path,
            raw=result.raw(),
        )
        if kind == _COMPLETIONS:
            lines.extend(_usage_lines(result, template))
        elif kind == _COSTS:
            lines.append(_cost_line(result, template))
        else:  # another usage endpoint (embeddings, images, …): kept, not interpreted
            lines.append(template.line("other"))
    return _costs_by_tier(lines)


def _costs_by_tier(lines: list[StatementLine]) -> list[StatementLine]:
    """Where some cost line item of a page names its tier ("gpt-5.4, output, priority"), the page breaks its
    costs down by tier, and a model's line item naming none is the default tier's, not all tiers' together."""

    def is_cost(line: StatementLine) -> bool:
        return line.amount is not None and line.model is not None

    if not any(line.service_tier for line in lines if is_cost(line)):
        return lines
    return [
        replace(line, service_tier="default") if is_cost(line) and line.service_tier is None else line for line in lines
    ]


def _guess_kind(result: JsonObject) -> str | None:
    if "amount" in result.data:
        return _COSTS
    if "input_tokens" in result.data and "output_tokens" in result.data:
        return _COMPLETIONS
    return None


def _usage_lines(result: JsonObject, template: LineTemplate) -> list[StatementLine]:
    input_tokens = result.need_count("input_tokens")
    cached = result.get_count("input_cached_tokens")
    cache_write = result.get_count("input_cache_write_tokens")  # 30-minute and 12-hour writes together
    uncached = result.get_count("input_uncached_tokens")
    if uncached is None:  # older responses: input_tokens includes cached and cache-write tokens
        uncached = input_tokens - (cached or 0) - (cache_write or 0)
        if uncached < 0:
            raise result.error(
                "input_tokens",
                f"{input_tokens} is less than input_cached_tokens + input_cache_write_tokens "
                f"({(cached or 0) + (cache_write or 0)})",
            )
    if result.get_bool("batch"):
        template = replace(template, service_tier=ServiceTier.BATCH)
    counts = (
        (UsageType.UNCACHED_INPUT, uncached),
        (UsageType.CACHED_INPUT, cached),
        (UsageType.CACHE_WRITE_5M, cache_write),
        (UsageType.OUTPUT, result.need_count("output_tokens")),
    )
    lines = [
        template.line(usage_type, quantity=Decimal(count), unit="tokens")
        for usage_type, count in counts
        if count is not None
    ]
    requests = result.need_count("num_model_requests")
    lines.append(template.line(UsageType.REQUESTS, quantity=Decimal(requests), unit="requests"))
    return lines


def _cost_line(result: JsonObject, template: LineTemplate) -> StatementLine:
    amount = currency = None
    money = result.get_object("amount")
    if money is not None:
        amount = money.get_decimal("value")
        currency_code = money.get_str("currency")
        currency = currency_code.upper() if currency_code else None
        if amount is not None and currency is None:
            raise money.error("currency", "is missing for an amount")
    usage_type: str = UsageType.OTHER
    line_item = result.get_str("line_item")
    match = _LINE_ITEM.match(line_item) if line_item else None
    if match:
        template = replace(template, model=match["model"])
        tier, modality = match["tier"], match["modality"]
        if (tier is None or tier in _TIERS) and modality in (None, "text"):
            usage_type = _DIRECTIONS.get(match["direction"], UsageType.OTHER)
        if tier in _TIERS:
            template = replace(template, service_tier=tier)
    quantity, unit = _cost_quantity(result, usage_type)
    return template.line(usage_type, quantity=quantity, unit=unit, amount=amount, currency=currency)


def _cost_quantity(result: JsonObject, usage_type: str) -> tuple[Decimal | None, str | None]:
    quantity = result.get_decimal("quantity")
    if quantity is None:
        return None, None
    unit = result.get_str("quantity_unit")
    if unit in _TOKEN_UNITS:
        return whole(quantity * _TOKEN_UNITS[unit]), "tokens"
    if unit is None and usage_type in TOKEN_USAGE_TYPES:
        return whole(quantity), "tokens"  # before `quantity_unit` existed, token line items counted tokens
    return quantity, unit
