"""CSV exports read through TOML mappings: the mapping is the only knowledge of the format."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.base import StatementError
from importers.csv_export import (
    CsvImporter,
    CsvMapping,
    MappingError,
    load_mapping,
    mapping_from_toml,
    shipped_mappings,
)
from tests.importers.golden import ROOT, csv_document

LONG = "Date,Project,API key,Model,Usage type,Quantity,Cost,Currency\n"


def mapping(**changes: Any) -> CsvMapping:
    base: dict[str, Any] = {
        "provider": "example",
        "date_format": "%Y-%m-%d",
        "columns": {"date": "Date", "model": "Model", "usage_type": "Type", "quantity": "Tokens", "amount": "Cost"},
        "currency": "usd",
        "usage_types": {"in": "uncached_input", "out": "output"},
    }
    return mapping_from_toml("test", "test.toml", base | changes)


def test_every_shipped_mapping_loads() -> None:
    names = shipped_mappings()

    assert names == ["generic_long_example", "generic_wide_example"]
    assert [load_mapping(name).name for name in names] == names


def test_without_a_mapping_the_csv_importer_claims_nothing() -> None:
    document = csv_document("export.csv", LONG + "2026-10-01,p,k,m,Input,1,1,USD\n")

    assert not CsvImporter().identify(document)
    assert CsvImporter(load_mapping("generic_long_example")).identify(document)


def test_a_mapping_does_not_claim_a_file_that_lacks_its_columns() -> None:
    focus_file = csv_document("focus.csv", (ROOT / "focus" / "bedrock_aws_focus_1_2.csv").read_text())

    assert not CsvImporter(load_mapping("generic_long_example")).identify(focus_file)


def test_dates_in_a_local_zone_cover_that_zone_s_day() -> None:
    importer = CsvImporter(mapping(timezone="Asia/Shanghai"))

    [line] = importer.parse(csv_document("x.csv", "Date,Model,Type,Tokens,Cost\n2026-10-01,m,in,10,0.5\n"))

    assert (line.period_start, line.period_end) == (
        datetime(2026, 9, 30, 16, tzinfo=UTC),
        datetime(2026, 10, 1, 16, tzinfo=UTC),
    )


def test_a_monthly_export_covers_the_whole_month() -> None:
    importer = CsvImporter(mapping(date_format="%Y-%m", period="month"))

    [line] = importer.parse(csv_document("x.csv", "Date,Model,Type,Tokens,Cost\n2026-12,m,out,10,0.5\n"))

    assert (line.period_start, line.period_end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_unmapped_usage_type_values_are_kept_as_other_lines() -> None:
    importer = CsvImporter(mapping())

    [line] = importer.parse(csv_document("x.csv", "Date,Model,Type,Tokens,Cost\n2026-10-01,m,storage,3,0.1\n"))

    assert (line.usage_type, line.quantity, line.unit, line.amount, line.currency) == (
        "other",
        Decimal(3),
        None,
        Decimal("0.1"),
        "USD",
    )
    assert line.raw["Type"] == "storage"


@given(
    st.lists(
        st.tuples(st.decimals(0, 10**6, places=4), st.decimals(0, 10**6, places=4)),
        min_size=1,
        max_size=20,
    )
)
def test_a_wide_export_keeps_every_amount(rows: list[tuple[Decimal, Decimal]]) -> None:
    header = "Month,Workspace,Model,Input tokens (K),Input cost,Cached input tokens (K),Cached input cost,"
    header += "Output tokens (K),Output cost\n"
    body = "".join(f"2026-10,w,m,1,{inp},,,1,{out}\n" for inp, out in rows)

    lines = CsvImporter(load_mapping("generic_wide_example")).parse(csv_document("wide.csv", header + body))

    assert sum(line.amount or 0 for line in lines) == sum(inp + out for inp, out in rows)
    assert {line.quantity for line in lines} == {Decimal(1000)}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("01.10.2026,m,in,1,1", "x.csv: line 2: Date: expected a date in the format '%Y-%m-%d', got '01.10.2026'"),
        ("2026-10-01,m,in,1.2.3,1", "x.csv: line 2: Tokens: expected a decimal number, got '1.2.3'"),
        ("\n2026-10-01,m,in,1,x", "x.csv: line 3: Cost: expected a decimal number, got 'x'"),
        ("2026-10-01,m,in,1", "x.csv: line 2: has 4 cells, the header has 5"),
    ],
)
def test_a_bad_cell_is_reported_with_its_file_line_and_column(rows: str, message: str) -> None:
    with pytest.raises(StatementError) as raised:
        CsvImporter(mapping()).parse(csv_document("x.csv", f"Date,Model,Type,Tokens,Cost\n{rows}\n"))

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"provider": None}, "test.toml: provider: is missing"),
        ({"colour": "blue"}, "test.toml: colour: unknown key"),
        ({"usage_types": {"in": "input"}}, "test.toml: usage_types.'in': 'input' is not one of"),
        (
            {"columns": {"date": "D", "usage_type": "T", "amount": "A", "region": "R"}},
            "test.toml: columns.region: unknown",
        ),
        ({"columns": {"usage_type": "Type", "quantity": "Tokens"}}, "test.toml: columns: name either `date`"),
        ({"usage_type_columns": {"output": {"quantity": "Out"}}}, "test.toml: columns.usage_type: name a usage type"),
        ({"currency": None}, "test.toml: currency: amounts need a `currency`"),
        ({"timezone": "Mars/Olympus"}, "test.toml: timezone: unknown time zone 'Mars/Olympus'"),
        ({"quantity_scale": 0.001}, "test.toml: quantity_scale: expected a positive integer or decimal string"),
        ({"period": "week"}, "test.toml: period: expected one of day, month, got 'week'"),
        ({"provider": "Deep Seek"}, "test.toml: provider: expected a lower-case slug such as openai or deepseek"),
    ],
)
def test_a_bad_mapping_is_reported_with_its_file_and_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError) as raised:
        mapping(**changes)

    assert str(raised.value).startswith(message)


def test_an_unknown_mapping_name_lists_the_shipped_ones() -> None:
    with pytest.raises(MappingError, match="shipped mappings: generic_long_example, generic_wide_example"):
        load_mapping("deepseek")


def test_the_header_of_a_csv_file_must_not_repeat_a_column() -> None:
    with pytest.raises(StatementError, match=r"^x\.csv: line 1: repeated columns: Date$"):
        CsvImporter(mapping()).parse(csv_document("x.csv", "Date,Date,Type\n"))


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("9999-12-31", "x.csv: line 2: Date: 9999-12-31T00:00:00+00:00 is outside the dates a statement covers"),
        ("0001-01-01", "x.csv: line 2: Date: 0001-01-01T00:00:00+00:00 is outside the dates a statement covers"),
        ("1999-12-31", "x.csv: line 2: Date: 1999-12-31T00:00:00+00:00 is outside the dates a statement covers"),
    ],
)
def test_a_date_no_statement_covers_is_reported_with_its_file_line_and_column(date: str, message: str) -> None:
    with pytest.raises(StatementError) as raised:
        CsvImporter(mapping()).parse(csv_document("x.csv", f"Date,Model,Type,Tokens,Cost\n{date},m,in,1,1\n"))

    assert str(raised.value).startswith(message)


def test_a_far_date_in_a_local_zone_is_reported_not_an_overflow() -> None:
    importer = CsvImporter(mapping(timezone="America/New_York"))
    with pytest.raises(StatementError, match=r"^x\.csv: line 2: Date: .*outside the dates a statement covers"):
        importer.parse(csv_document("x.csv", "Date,Model,Type,Tokens,Cost\n9999-12-31,m,in,1,1\n"))


def test_a_header_of_a_hundred_thousand_columns_is_read_and_its_repeated_column_named() -> None:
    columns = [f"c{number}" for number in range(100_000)] + ["Date", "Model", "Type", "Tokens", "Cost", "c99999"]
    document = csv_document("wide.csv", ",".join(columns) + "\n")

    with pytest.raises(StatementError, match=r"^wide\.csv: line 1: repeated columns: c99999$"):
        CsvImporter(mapping()).parse(document)
