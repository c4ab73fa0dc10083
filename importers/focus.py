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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from importers.base import Importer, LineTemplate, RawDocument, StatementLine
from importers.csv_rows import CsvRow, header, read_rows
from importers.units import parse_unit, whole

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
    labels = _model_labels(row) if category == "Usage" else ()
    template = LineTemplate(
        source="focus",
        provider=provider,
        account=row.text("SubAccountId") or ("" if by_sub_account else None),
        api_key_id=None,
        model=labels[0] if labels else None,
        model_labels=labels,
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


def _model_labels(row: CsvRow) -> tuple[str, ...]:
    """The names the line's columns give its model, most trusted first (`billing_label_models`). Which of them
    has a known price is the statements store's to find (`StatementLine.model_labels`): so a Bedrock line whose
    usage type says `Claude4.5Sonnet` and whose ARN names `us.anthropic.claude-sonnet-4-5-20250929-v1:0` is for
    claude-sonnet-4-5 either way, and a label nobody can price never hides the column that names the model."""
    return tuple(
        billing_label_models(
            usage_type=row.text("x_UsageType"),
            resource_id=row.text("ResourceId"),
            product=row.text("ServiceName"),
            texts=(row.text("SkuMeter"), row.text("ChargeDescription")),
        )
    )


# AWS usage types: `<REGION>-<model label>-<token type>`; the token-type suffixes from "Understanding your Amazon
# Bedrock Cost and Usage Report data" (https://docs.aws.amazon.com/bedrock/latest/userguide/cost-mgmt-understanding-cur-data.html).
AWS_TOKEN_SUFFIX = re.compile(
    r"-(?:cache-read-input-token-count|cache-write-input-token-count|mantle-input-tokens(?:-.*)?"
    r"|mantle-output-tokens(?:-.*)?|input-tokens|output-tokens)$",
    re.IGNORECASE,
)
AWS_REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d{0,2}-")
_LABEL_WORD = re.compile(r"\d+(?:\.\d+)*(?:[bBkKmM](?![a-z]))?|[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_CLAUDE_FAMILIES = frozenset({"sonnet", "haiku", "opus"})
_BEDROCK_ARN = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)/(?P<model>.+)$")
_EDITION = re.compile(r"\s*\((?:amazon bedrock|bedrock|vertex ai|azure)[^)]*\)\s*$", re.IGNORECASE)


def model_of_aws_usage_type(usage_type: str) -> str | None:
    """The model an AWS usage type names, spelled as the vendor's API does: `USE1-Claude4.5Sonnet-input-tokens`
    → `claude-sonnet-4-5`, `USW2-Claude3.5Haiku-output-tokens` → `claude-3-5-haiku`, `USE1-NovaPro-input-tokens`
    → `nova-pro`, `EUC1-Llama3.3-70B-Instruct-output-tokens` → `llama-3.3-70b-instruct`. None when the usage
    type is not a token usage type."""
    if not AWS_TOKEN_SUFFIX.search(usage_type):
        return None
    label = AWS_REGION_PREFIX.sub("", AWS_TOKEN_SUFFIX.sub("", usage_type.strip()))
    words = [word.lower() for word in _LABEL_WORD.findall(label)]
    if not words:
        return None
    if words[0] == "claude":
        family = next((word for word in words if word in _CLAUDE_FAMILIES), None)
        version = next((word for word in words if word[0].isdigit()), None)
        if family and version:
            dashed = version.replace(".", "-")
            # Claude 4 and later put the family first (claude-sonnet-4-5); Claude 3.x after (claude-3-5-haiku).
            return f"claude-{family}-{dashed}" if int(version.split(".")[0]) >= 4 else f"claude-{dashed}-{family}"
    if words[0] == "llama" and len(words) > 1 and words[1][0].isdigit():
        # Bedrock spells Meta's models `llama3-3-70b-instruct` (meta.llama3-3-70b-instruct-v1:0).
        words = [f"llama{words[1].replace('.', '-')}", *words[2:]]
    return "-".join(words)


def billing_label_models(
    *,
    usage_type: str | None = None,
    resource_id: str | None = None,
    product: str | None = None,
    texts: Iterable[str | None] = (),
) -> list[str]:
    """The model names one statement line's columns give, in the order they are trusted: the AWS usage type's
    label, the Bedrock ARN of the resource, a product named after a model (`ServiceName` "Claude Sonnet 4.5
    (Amazon Bedrock Edition)", without the suffix; a plain "Amazon Bedrock" names no model), then meter texts
    (`SkuMeter`, `ChargeDescription`, …)."""
    names: list[str] = []
    if usage_type and (label := model_of_aws_usage_type(usage_type)):
        names.append(label)  # first: every token line of one model carries it, the ARN only some
    arn = _BEDROCK_ARN.match(resource_id or "")
    if arn:
        names.append(arn["model"])
    if product and _EDITION.search(product):
        names.append(_EDITION.sub("", product).strip())
    names.extend(text.strip() for text in texts if text and text.strip())
    return [name for name in dict.fromkeys(names) if name]


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
