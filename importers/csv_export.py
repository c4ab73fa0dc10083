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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

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
_PERIODS: Final = ("day", "month")


_PROVIDER_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""

    def __init__(self, mapping: str, key: str, problem: str) -> None:
        super().__init__(f"{mapping}: {key}: {problem}")


def _invalid(problem: str) -> PydanticCustomError:
    """A value a mapping key cannot have."""
    return PydanticCustomError("mapping_value", "{problem}", {"problem": problem})


def _rule(key: str, problem: str) -> PydanticCustomError:
    """Keys that do not go together, reported at `key` (relative to the table the rule is about)."""
    return PydanticCustomError("mapping_rule", "{problem}", {"problem": problem, "key": key})


def _text(value: object) -> object:
    if not isinstance(value, str) or not value:
        raise _invalid(f"expected a non-empty string, got {value!r}")
    return value


def _one_of(allowed: Sequence[str], problem: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in allowed:
            raise _invalid(problem.format(value=value, allowed=", ".join(allowed)))
        return value

    return check


def _provider_slug(value: str) -> str:
    if not _PROVIDER_SLUG.fullmatch(value):
        # Logged usage names providers so (`ledger.events.schema`): a statement under another spelling matches nothing.
        raise _invalid(f"expected a lower-case slug such as openai or deepseek, got {value!r}")
    return value


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(f"unknown time zone {value!r}") from None
    return value


def _scale(value: object) -> Decimal:
    """A positive scale factor written as an integer or a decimal string (never a float)."""
    try:
        number = Decimal(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise _invalid(f"expected a positive integer or decimal string, got {value!r}")
    return number


Text = Annotated[str, BeforeValidator(_text)]
ColumnRole = Annotated[str, BeforeValidator(_one_of(COLUMN_ROLES, "unknown role; expected one of {allowed}"))]
UsageTypeName = Annotated[str, BeforeValidator(_one_of(USAGE_TYPES, "{value!r} is not one of {allowed}"))]
Scale = Annotated[Decimal, PlainValidator(_scale)]


class UsageTypeColumns(BaseModel):
    """The columns of one usage type in a wide export."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Text | None = None
    amount: Text | None = None
    unit: Text | None = None
    scale: Scale = Decimal(1)

    @model_validator(mode="after")
    def _names_a_column(self) -> Self:
        if self.quantity is None and self.amount is None:
            raise _rule("", "name a `quantity` or an `amount` column")
        return self


class CsvMapping(BaseModel):
    """One CSV export format, validated from its TOML table; see the module docstring and `importers/mappings/`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(exclude=True)] = ""  # the file's stem, never a key of the file
    provider: Annotated[Text, AfterValidator(_provider_slug)]
    columns: dict[ColumnRole, Text] = {}  # role (COLUMN_ROLES) → column name
    date_format: Text | None = None  # strptime format; None reads ISO 8601
    timezone: Annotated[Text, AfterValidator(_known_zone)] = "UTC"  # the zone of dates written without an offset
    # what one `date` cell covers: a "day" or a "month"
    period: Annotated[Text, AfterValidator(_one_of(_PERIODS, "expected one of {allowed}, got {value!r}"))] = "day"
    currency: Annotated[Text, AfterValidator(str.upper)] | None = None  # when the export has no currency column
    quantity_scale: Scale = Decimal(1)  # e.g. 1000 when quantities are in thousands of tokens
    usage_types: dict[str, UsageTypeName] = {}  # long export: cell value → usage type
    usage_type_columns: dict[UsageTypeName, UsageTypeColumns] = {}  # wide export: usage type → its columns
    description: Text = ""
    source_url: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, data: Any, info: ValidationInfo) -> Any:
        """A key given None is a key left out (TOML has no null). Read from a file (`mapping_from_toml`), the
        mapping is named by the file, never by a key of it."""
        if not isinstance(data, Mapping):
            return data
        present = {key: value for key, value in data.items() if value is not None}
        if isinstance(info.context, dict) and "name" in info.context:
            if "name" in present:
                raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted", {"key": "name"})
            present["name"] = info.context["name"]
        return present

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        columns, wide = self.columns, self.usage_type_columns
        if ("date" in columns) == ("period_start" in columns or "period_end" in columns):
            raise _rule("columns", "name either `date` or both `period_start` and `period_end`")
        if "date" not in columns and not ("period_start" in columns and "period_end" in columns):
            raise _rule("columns", "`period_start` and `period_end` go together")
        if bool(wide) == ("usage_type" in columns):
            raise _rule("columns.usage_type", "name a usage type column or [usage_type_columns], not both")
        if not wide and "quantity" not in columns and "amount" not in columns:
            raise _rule("columns", "name a `quantity` or an `amount` column")
        has_amount = "amount" in columns or any(spec.amount for spec in wide.values())
        if has_amount and self.currency is None and "currency" not in columns:
            raise _rule("currency", "amounts need a `currency` or a `columns.currency`")
        return self

    def referenced_columns(self) -> frozenset[str]:
        wide = {c for spec in self.usage_type_columns.values() for c in (spec.quantity, spec.amount) if c}
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
    """Validate a parsed mapping file; a problem names the file and the key."""
    try:
        return CsvMapping.model_validate(data, context={"name": name})
    except ValidationError as invalid:
        problem = invalid.errors()[0]
        raise MappingError(label, _key(problem), _problem(problem)) from None


def _key(problem: ErrorDetails) -> str:
    """Where a problem is, as the file writes it: `columns.region`, `usage_types.'Cached input'`."""
    parts = [str(part) for part in problem["loc"] if part != "[key]"]
    if len(parts) > 1 and parts[0] == "usage_types":
        parts[1] = repr(parts[1])  # a cell value of the export, not a name of ours
    if relative := problem.get("ctx", {}).get("key"):
        parts.append(relative)
    return ".".join(parts) or "(file)"


def _problem(problem: ErrorDetails) -> str:
    kind = problem["type"]
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        table = UsageTypeColumns if len(problem["loc"]) > 1 else CsvMapping
        return f"unknown key; expected one of {', '.join(sorted(set(table.model_fields) - {'name'}))}"
    if kind in ("dict_type", "model_type"):
        return "expected a table"
    return problem["msg"]


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
    for usage_type, spec in mapping.usage_type_columns.items():
        quantity, amount = row.decimal(spec.quantity), row.decimal(spec.amount)
        if quantity is None and amount is None:
            continue
        lines.append(
            template.line(
                usage_type,
                quantity=whole(quantity * spec.scale * mapping.quantity_scale) if quantity is not None else None,
                unit=(spec.unit or _default_unit(usage_type)) if quantity is not None else None,
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
