"""Any provider's CSV billing export, read through a TOML mapping that names its columns.

A mapping (`importers/mappings/<name>.toml`) describes one export format: the provider, how dates are
written and in which zone, and which columns hold the model, account, usage type, quantity, amount
and currency. Usage types come either from one column whose values are mapped (`[usage_types]`, a
"long" export with one row per usage type) or from one set of columns per usage type
(`[usage_type_columns.<usage type>]`, a "wide" export). The importer claims a file only when the caller
names a mapping, so it never takes a FOCUS file or another importer's document by accident.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importers.base import TOKEN_USAGE_TYPES, USAGE_TYPES, Importer, LineTemplate, RawDocument, StatementLine
from importers.csv_rows import CsvRow, header, read_rows
from importers.units import whole
from ledger.periods import next_month_start
from ledger.vocabulary import ServiceTier, UsageType

COLUMN_ROLES: Final = (
    "date",
    "period_start",
    "period_end",
    "model",
    "account",
    "api_key_id",
    "service_tier",
    "usage_type",
    "quantity",
    "amount",
    "currency",
)
_TOP_KEYS: Final = frozenset(
    {
        "provider",
        "description",
        "source_url",
        "date_format",
        "timezone",
        "period",
        "currency",
        "quantity_scale",
        "columns",
        "usage_types",
        "usage_type_columns",
    }
)
_PERIODS: Final = ("day", "month")


_PROVIDER_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""

    def __init__(self, mapping: str, key: str, problem: str) -> None:
        super().__init__(f"{mapping}: {key}: {problem}")


@dataclass(frozen=True, slots=True)
class UsageTypeColumns:
    """The columns of one usage type in a wide export."""

    usage_type: str
    quantity: str | None
    amount: str | None
    unit: str | None
    scale: Decimal


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """One CSV export format; see the module docstring and `importers/mappings/`."""

    name: str
    provider: str
    columns: Mapping[str, str]  # role (COLUMN_ROLES) → column name
    date_format: str | None = None  # strptime format; None reads ISO 8601
    timezone: str = "UTC"  # the zone of dates written without an offset
    period: str = "day"  # what one `date` cell covers: a "day" or a "month"
    currency: str | None = None  # when the export has no currency column
    quantity_scale: Decimal = Decimal(1)  # e.g. 1000 when quantities are in thousands of tokens
    usage_types: Mapping[str, str] = field(default_factory=dict)  # long export: cell value → usage type
    usage_type_columns: tuple[UsageTypeColumns, ...] = ()  # wide export
    description: str = ""
    source_url: str | None = None

    def referenced_columns(self) -> frozenset[str]:
        wide = {c for spec in self.usage_type_columns for c in (spec.quantity, spec.amount) if c}
        return frozenset(self.columns.values()) | wide


class CsvImporter(Importer):
    """CSV exports read through a named mapping; without one it identifies nothing."""

    source = "csv"

    def __init__(self, mapping: CsvMapping | None = None) -> None:
        self.mapping = mapping

    def identify(self, document: RawDocument) -> bool:
        if self.mapping is None:
            return False
        columns = header(document)
        return columns is not None and set(columns) >= self.mapping.referenced_columns()

    def parse(self, document: RawDocument) -> list[StatementLine]:
        return list(self.iter_lines(document))

    def iter_lines(self, document: RawDocument) -> Iterator[StatementLine]:
        if self.mapping is None:
            raise ValueError(f"{document.name}: name a CSV mapping to read it (see importers/mappings/)")
        mapping = self.mapping
        zone = ZoneInfo(mapping.timezone)
        for row in read_rows(document):
            template = _template(mapping, row, zone)
            if mapping.usage_type_columns:
                yield from _wide_lines(mapping, row, template)
            else:
                yield _long_line(mapping, row, template)


def load_mapping(name_or_path: str | Path) -> CsvMapping:
    """A shipped mapping by name (`generic_long_example`), or a mapping file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        text, label = path.read_text(encoding="utf-8"), str(path)
    else:
        shipped = resources.files("importers").joinpath("mappings", f"{name_or_path}.toml")
        if not shipped.is_file():
            shipped_names = ", ".join(shipped_mappings())
            raise MappingError(str(name_or_path), "name", f"no such mapping; shipped mappings: {shipped_names}")
        text, label = shipped.read_text(encoding="utf-8"), f"mappings/{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(label, "toml", str(exc)) from None
    return mapping_from_toml(path.stem, label, data)


def shipped_mappings() -> list[str]:
    """Names of the mappings shipped in `importers/mappings/`."""
    folder = resources.files("importers").joinpath("mappings")
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def mapping_from_toml(name: str, label: str, data: Mapping[str, Any]) -> CsvMapping:
    """Validate a parsed mapping file; every problem names the key."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise MappingError(label, unknown[0], f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}")
    provider = _need_text(label, data, "provider")
    if not _PROVIDER_SLUG.fullmatch(provider):
        # Logged usage names providers so (`ledger.sink.events`): a statement under another spelling matches nothing.
        raise MappingError(
            label, "provider", f"expected a lower-case slug such as openai or deepseek, got {provider!r}"
        )
    columns = _table(label, data, "columns")
    for role, column in columns.items():
        if role not in COLUMN_ROLES:
            raise MappingError(label, f"columns.{role}", f"unknown role; expected one of {', '.join(COLUMN_ROLES)}")
        if not isinstance(column, str) or not column:
            raise MappingError(label, f"columns.{role}", "expected a column name")
    if ("date" in columns) == ("period_start" in columns or "period_end" in columns):
        raise MappingError(label, "columns", "name either `date` or both `period_start` and `period_end`")
    if "date" not in columns and not ("period_start" in columns and "period_end" in columns):
        raise MappingError(label, "columns", "`period_start` and `period_end` go together")
    usage_types = _table(label, data, "usage_types")
    for value, usage_type in usage_types.items():
        _check_usage_type(label, f"usage_types.{value!r}", usage_type)
    wide = tuple(
        _usage_type_columns(label, usage_type, spec)
        for usage_type, spec in _table(label, data, "usage_type_columns").items()
    )
    if bool(wide) == ("usage_type" in columns):
        raise MappingError(label, "columns.usage_type", "name a usage type column or [usage_type_columns], not both")
    if not wide and "quantity" not in columns and "amount" not in columns:
        raise MappingError(label, "columns", "name a `quantity` or an `amount` column")
    has_amount = "amount" in columns or any(spec.amount for spec in wide)
    currency = _text(label, data, "currency")
    if has_amount and currency is None and "currency" not in columns:
        raise MappingError(label, "currency", "amounts need a `currency` or a `columns.currency`")
    timezone = _text(label, data, "timezone") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(label, "timezone", f"unknown time zone {timezone!r}") from None
    period = _text(label, data, "period") or "day"
    if period not in _PERIODS:
        raise MappingError(label, "period", f"expected one of {', '.join(_PERIODS)}, got {period!r}")
    return CsvMapping(
        name=name,
        provider=provider,
        columns=dict(columns),
        date_format=_text(label, data, "date_format"),
        timezone=timezone,
        period=period,
        currency=currency.upper() if currency else None,
        quantity_scale=_decimal(label, data, "quantity_scale"),
        usage_types=dict(usage_types),
        usage_type_columns=wide,
        description=_text(label, data, "description") or "",
        source_url=_text(label, data, "source_url"),
    )


def _dimension(row: CsvRow, column: str | None, blank: str) -> str | None:
    """A dimension's value; None when the mapping has no column for it (the export does not break down by
    it). A blank cell of a mapped column is a bucket of its own: no account or key ("", as events without one
    carry), the standard tier. Read as None, it would be taken for a coarser figure and not compared."""
    if column is None:
        return None
    return row.text(column) or blank


def _template(mapping: CsvMapping, row: CsvRow, zone: ZoneInfo) -> LineTemplate:
    columns = mapping.columns
    if "date" in columns:
        start = row.timestamp(columns["date"], date_format=mapping.date_format, zone=zone)
        end = _period_end(mapping, row, start.astimezone(zone))
    else:
        start = row.timestamp(columns["period_start"], date_format=mapping.date_format, zone=zone)
        end = row.timestamp(columns["period_end"], date_format=mapping.date_format, zone=zone)
        if end < start:
            raise row.error(columns["period_end"], "is before the period start")
    return LineTemplate(
        source="csv",
        provider=mapping.provider,
        account=_dimension(row, columns.get("account"), ""),
        api_key_id=_dimension(row, columns.get("api_key_id"), ""),
        model=row.text(columns.get("model")),
        service_tier=_dimension(row, columns.get("service_tier"), ServiceTier.STANDARD),
        period_start=start,
        period_end=end,
        document=row.document,
        location=row.location,
        raw=row.raw(),
    )


def _period_end(mapping: CsvMapping, row: CsvRow, local_start: datetime) -> datetime:
    """The end of the local day or month that starts at `local_start`, in UTC."""
    column = mapping.columns["date"]
    if local_start.time() != time(0):
        raise row.error(column, f"a {mapping.period} must start at midnight, got {local_start.isoformat()}")
    if mapping.period == "month":
        if local_start.day != 1:
            raise row.error(column, f"a month must start on its first day, got {local_start.date().isoformat()}")
        local_end = next_month_start(local_start).replace(tzinfo=local_start.tzinfo)
    else:
        local_end = local_start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    return local_end.astimezone(UTC)


def _long_line(mapping: CsvMapping, row: CsvRow, template: LineTemplate) -> StatementLine:
    label = row.text(mapping.columns["usage_type"])
    usage_type = mapping.usage_types.get(label or "", UsageType.OTHER)
    quantity = row.decimal(mapping.columns.get("quantity"))
    amount = row.decimal(mapping.columns.get("amount"))
    return template.line(
        usage_type,
        quantity=whole(quantity * mapping.quantity_scale) if quantity is not None else None,
        unit=_default_unit(usage_type) if quantity is not None else None,
        amount=amount,
        currency=_currency(mapping, row) if amount is not None else None,
    )


def _wide_lines(mapping: CsvMapping, row: CsvRow, template: LineTemplate) -> list[StatementLine]:
    lines = []
    for spec in mapping.usage_type_columns:
        quantity, amount = row.decimal(spec.quantity), row.decimal(spec.amount)
        if quantity is None and amount is None:
            continue
        lines.append(
            template.line(
                spec.usage_type,
                quantity=whole(quantity * spec.scale * mapping.quantity_scale) if quantity is not None else None,
                unit=(spec.unit or _default_unit(spec.usage_type)) if quantity is not None else None,
                amount=amount,
                currency=_currency(mapping, row) if amount is not None else None,
            )
        )
    return lines


def _currency(mapping: CsvMapping, row: CsvRow) -> str:
    column = mapping.columns.get("currency")
    if column is not None:
        return row.need_text(column).upper()
    assert mapping.currency is not None  # guaranteed by mapping_from_toml
    return mapping.currency


def _default_unit(usage_type: str) -> str | None:
    if usage_type in TOKEN_USAGE_TYPES:
        return "tokens"
    if usage_type in (UsageType.REQUESTS, UsageType.WEB_SEARCH):
        return "requests"
    return None


def _usage_type_columns(label: str, usage_type: str, spec: Any) -> UsageTypeColumns:
    key = f"usage_type_columns.{usage_type}"
    _check_usage_type(label, key, usage_type)
    if not isinstance(spec, Mapping):
        raise MappingError(label, key, "expected a table with `quantity` and/or `amount`")
    unknown = sorted(set(spec) - {"quantity", "amount", "unit", "scale"})
    if unknown:
        raise MappingError(label, f"{key}.{unknown[0]}", "unknown key; expected quantity, amount, unit or scale")
    quantity, amount = _text(label, spec, "quantity", key), _text(label, spec, "amount", key)
    if quantity is None and amount is None:
        raise MappingError(label, key, "name a `quantity` or an `amount` column")
    unit, scale = _text(label, spec, "unit", key), _decimal(label, spec, "scale", key)
    return UsageTypeColumns(usage_type, quantity, amount, unit, scale)


def _check_usage_type(label: str, key: str, usage_type: Any) -> None:
    if usage_type not in USAGE_TYPES:
        raise MappingError(label, key, f"{usage_type!r} is not one of {', '.join(USAGE_TYPES)}")


def _table(label: str, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise MappingError(label, key, "expected a table")
    return value


def _need_text(label: str, data: Mapping[str, Any], key: str) -> str:
    value = _text(label, data, key)
    if value is None:
        raise MappingError(label, key, "is missing")
    return value


def _text(label: str, data: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = data.get(key)
    name = f"{prefix}.{key}" if prefix else key
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MappingError(label, name, f"expected a non-empty string, got {value!r}")
    return value


def _decimal(label: str, data: Mapping[str, Any], key: str, prefix: str = "") -> Decimal:
    """A positive scale factor written as an integer or a decimal string (never a float)."""
    value = data.get(key, 1)
    name = f"{prefix}.{key}" if prefix else key
    try:
        number = Decimal(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise MappingError(label, name, f"expected a positive integer or decimal string, got {value!r}")
    return number
