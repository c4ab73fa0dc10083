"""Reading CSV exports row by row with their line numbers: errors name the file, line and column."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from importers.base import RawDocument, StatementError, implausible


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row; `text()` gives a stripped cell or None when the cell is empty."""

    document: str
    line: int  # line of the file where the row starts (the header is line 1)
    cells: Mapping[str, str]

    @property
    def location(self) -> str:
        return f"line {self.line}"

    def error(self, column: str, problem: str) -> StatementError:
        return StatementError(self.document, self.location, column, problem)

    def raw(self) -> dict[str, str]:
        """The non-empty cells, as exported."""
        return {column: value for column, value in self.cells.items() if value.strip()}

    def text(self, column: str | None) -> str | None:
        if column is None:
            return None
        value = self.cells.get(column, "").strip()
        return value or None

    def need_text(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise self.error(column, "is empty")
        return value

    def decimal(self, column: str | None) -> Decimal | None:
        value = self.text(column)
        if value is None or column is None:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise self.error(column, f"expected a decimal number, got {value!r}") from None
        if not number.is_finite():
            raise self.error(column, f"expected a decimal number, got {value!r}")
        return number

    def need_decimal(self, column: str) -> Decimal:
        value = self.decimal(column)
        if value is None:
            raise self.error(column, "is empty")
        return value

    def timestamp(self, column: str, *, date_format: str | None = None, zone: tzinfo = UTC) -> datetime:
        """An aware UTC datetime; ISO 8601 unless `date_format` is given; naive values are in `zone`."""
        value = self.need_text(column)
        try:
            # strptime gives a naive datetime unless the format has %z; the zone is attached below
            parse = datetime.fromisoformat if date_format is None else _strptime(date_format)
            moment = parse(value)
        except ValueError:
            expected = f"a date in the format {date_format!r}" if date_format else "an ISO 8601 timestamp"
            raise self.error(column, f"expected {expected}, got {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # 0001-01-01 or 9999-12-31 shifted past what a datetime holds
            raise self.error(column, f"{value!r} is outside the dates a statement covers") from None
        if problem := implausible(moment):
            raise self.error(column, problem)
        return moment


def _strptime(date_format: str) -> Callable[[str], datetime]:
    return lambda value: datetime.strptime(value, date_format)  # noqa: DTZ007


def header(document: RawDocument) -> list[str] | None:
    """The column names on the first line, or None when the document is not CSV text; never raises."""
    try:
        with document.open() as stream:
            first_line = stream.readline(HEADER_LIMIT).rstrip(b"\r\n")
        text = first_line.decode("utf-8-sig")
        return next(csv.reader([text]), None)
    except (UnicodeDecodeError, csv.Error, OSError):
        return None


HEADER_LIMIT = 16 * 1024 * 1024
"""The longest header line read to identify a document."""


def read_rows(document: RawDocument) -> Iterator[CsvRow]:
    """The data rows of a CSV document with a header line, read as they are needed (a file of any size takes
    bounded memory); blank lines are skipped."""
    with document.open() as stream:
        reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        try:
            yield from _rows(document, reader)
        except UnicodeDecodeError as exc:
            problem = f"not UTF-8 text ({exc.reason})"
            raise StatementError(document.name, f"line {reader.line_num + 1}", None, problem) from None


def _rows(document: RawDocument, reader: Any) -> Iterator[CsvRow]:
    try:
        columns = next(reader, None)
        if not columns:
            raise StatementError(document.name, "line 1", None, "the header line is missing")
        duplicates = sorted(column for column, count in Counter(columns).items() if count > 1)
        if duplicates:
            raise StatementError(document.name, "line 1", None, f"repeated columns: {', '.join(duplicates)}")
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                raise StatementError(
                    document.name, f"line {line}", None, f"has {len(cells)} cells, the header has {len(columns)}"
                )
            yield CsvRow(document.name, line, dict(zip(columns, cells, strict=True)))
    except csv.Error as exc:
        raise StatementError(document.name, f"line {reader.line_num}", None, str(exc)) from None
