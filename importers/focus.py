"""FinOps FOCUS 1.x cost-and-usage CSV exports (AWS Data Exports for Bedrock, Google Cloud, Azure).

Columns from the FOCUS specification (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec,
specification/datasets/cost_and_usage/columns/): ChargePeriodStart/End are UTC, start inclusive and
end exclusive; BilledCost is in BillingCurrency; ChargeCategory is Usage|Purchase|Tax|Credit|Adjustment.
FOCUS 1.3 replaced ProviderName with ServiceProviderName (serviceprovidername.md) and added
HostProviderName; both generations are read.

Only rows whose ServiceCategory is "AI and Machine Learning" are statement lines: a FOCUS file
covers a whole cloud bill, and compute or storage rows are not LLM usage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from importers.base import Importer, LineTemplate, RawDocument, StatementLine
from importers.csv_rows import CsvRow, header, read_rows
from importers.units import parse_unit, whole
from ledger.pricing.model_names import billing_label_models, first_known

_REQUIRED: Final = frozenset(
    {"BilledCost", "BillingCurrency", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd"}
)
_PROVIDER_COLUMNS: Final = ("ServiceProviderName", "ProviderName")  # 1.3+, then 1.0-1.2
AI_SERVICE_CATEGORY: Final = "AI and Machine Learning"

# AWS usage-type patterns for Bedrock tokens, from "Understanding your Amazon Bedrock Cost and Usage
# Report data" (https://docs.aws.amazon.com/bedrock/latest/userguide/cost-mgmt-understanding-cur-data.html).
# The cache-write pattern does not tell the 5-minute and 1-hour TTLs apart; it is read as 5 minutes.
_AWS_USAGE_TYPES: Final = (
    (re.compile(r"-cache-read-input-token-count$"), "cached_input"),
    (re.compile(r"-cache-write-input-token-count$"), "cache_write_5m"),
    (re.compile(r"-mantle-input-tokens(?:-.*)?$"), "uncached_input"),
    (re.compile(r"-mantle-output-tokens(?:-.*)?$"), "output"),
    (re.compile(r"-input-tokens$"), "uncached_input"),
    (re.compile(r"-output-tokens$"), "output"),
)
# For exports without AWS usage types: SKU meters / descriptions of token SKUs, read word by word.
_METER_WORDS: Final = (
    (re.compile(r"\bcache[ -]?(?:read|hit)s?\b|\bcached\b", re.IGNORECASE), "cached_input"),
    (re.compile(r"\bcache[ -]?(?:write|creation)s?\b", re.IGNORECASE), "cache_write_5m"),
    (re.compile(r"\binput\b", re.IGNORECASE), "uncached_input"),
    (re.compile(r"\boutput\b", re.IGNORECASE), "output"),
)


@dataclass(frozen=True, slots=True)
class FocusImporter(Importer):
    """FOCUS 1.0-1.3 CSV files; rows outside `service_categories` are not statement lines."""

    source = "focus"
    service_categories: tuple[str, ...] = (AI_SERVICE_CATEGORY,)

    def identify(self, document: RawDocument) -> bool:
        columns = header(document)
        if columns is None or not set(columns) >= _REQUIRED:
            return False
        return any(column in columns for column in _PROVIDER_COLUMNS)

    def parse(self, document: RawDocument) -> list[StatementLine]:
        return list(self.iter_lines(document))

    def iter_lines(self, document: RawDocument) -> Iterator[StatementLine]:
        """Two reads of the export, so that a file of any size takes bounded memory: the first finds whether
        any row names a sub-account, the second makes the lines."""
        # Where some rows name a sub-account, one without is usage outside any (""), not a coarser figure.
        by_sub_account = any(row.text("SubAccountId") for row in self._ai_rows(document))
        return (_line(row, by_sub_account=by_sub_account) for row in self._ai_rows(document))

    def _ai_rows(self, document: RawDocument) -> Iterator[CsvRow]:
        return (row for row in read_rows(document) if row.text("ServiceCategory") in self.service_categories)


def _line(row: CsvRow, *, by_sub_account: bool) -> StatementLine:
    category = row.need_text("ChargeCategory")
    quantity, unit = _quantity(row)
    usage_type = _usage_type(row, category, unit)
    provider = _provider(row)
    template = LineTemplate(
        source="focus",
        provider=provider,
        account=row.text("SubAccountId") or ("" if by_sub_account else None),
        api_key_id=None,
        model=_model(row, provider) if category == "Usage" else None,
        service_tier=None,
        period_start=row.timestamp("ChargePeriodStart"),  # FOCUS date-times are UTC
        period_end=row.timestamp("ChargePeriodEnd"),
        document=row.document,
        location=row.location,
        raw=row.raw(),
    )
    return template.line(
        usage_type,
        quantity=quantity,
        unit=unit,
        amount=row.need_decimal("BilledCost"),
        currency=row.need_text("BillingCurrency").upper(),
    )


def _quantity(row: CsvRow) -> tuple[Decimal | None, str | None]:
    """ConsumedQuantity in ConsumedUnit, else PricingQuantity in PricingUnit; token blocks become tokens."""
    for quantity_column, unit_column in (("ConsumedQuantity", "ConsumedUnit"), ("PricingQuantity", "PricingUnit")):
        quantity = row.decimal(quantity_column)
        if quantity is None:
            continue
        unit_text = row.text(unit_column)
        unit = parse_unit(unit_text) if unit_text else None
        if unit is None:
            return quantity, unit_text
        return whole(quantity * unit.scale), unit.name
    return None, None


def _usage_type(row: CsvRow, category: str, unit: str | None) -> str:
    if category == "Credit":
        return "credit"
    if category != "Usage":
        return "other"
    aws_usage_type = row.text("x_UsageType")
    if aws_usage_type:
        return next((kind for pattern, kind in _AWS_USAGE_TYPES if pattern.search(aws_usage_type)), "other")
    if unit == "tokens":
        meter = " ".join(filter(None, (row.text("SkuMeter"), row.text("ChargeDescription"))))
        return next((kind for pattern, kind in _METER_WORDS if pattern.search(meter)), "other")
    return "other"


def _model(row: CsvRow, provider: str) -> str | None:
    """The model the line is for: of the names its columns give (Bedrock ARN, AWS usage type, ServiceName,
    SkuMeter, ChargeDescription: `ledger.pricing.model_names.billing_label_models`), the first one the price catalog
    knows, else the first given. So a Bedrock line whose usage type says `Claude4.5Sonnet` and whose ARN names
    `us.anthropic.claude-sonnet-4-5-20250929-v1:0` is for claude-sonnet-4-5 either way."""
    from ledger.pricing.catalog import shared_catalog

    names = billing_label_models(
        usage_type=row.text("x_UsageType"),
        resource_id=row.text("ResourceId"),
        product=row.text("ServiceName"),
        texts=(row.text("SkuMeter"), row.text("ChargeDescription")),
    )
    return first_known(provider, names, shared_catalog().resolve)


def _provider(row: CsvRow) -> str:
    """bedrock, google or azure from the service and provider names; else the provider name, lower-cased."""
    service = (row.text("ServiceName") or "").lower()
    provider = next((name for column in _PROVIDER_COLUMNS if (name := row.text(column))), "")
    if "bedrock" in service:
        return "bedrock"
    if "google" in provider.lower():
        return "google"
    if "microsoft" in provider.lower() or "azure" in provider.lower():
        return "azure"
    if not provider:
        raise row.error("ProviderName", "is empty (and so is ServiceProviderName)")
    return provider.lower()
