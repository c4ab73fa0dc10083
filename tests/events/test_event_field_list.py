"""One event field list (`ledger.events.schema`): the stored columns, the rollups' sums, the events and totals the
API answers with, and the reconciler's logged measures are all made from it, so a measure added there reaches
each of them."""

from __future__ import annotations

from ledger.api.responses import EventOut
from ledger.events.schema import COLUMNS, MEASURES, EventIn
from ledger.queries.logged_days import COUNTS
from ledger.queries.usage import EVENT_FIELDS, TOTALS
from ledger.sink import rollup
from ledger.storage.tables import UsageDaily, UsageEvent, UsageHourly


def test_every_measure_is_an_event_field_and_a_stored_column() -> None:
    for measure in MEASURES:
        assert measure.name in EventIn.model_fields
        assert measure.name in COLUMNS
        column = UsageEvent.__table__.c[measure.name]
        assert column.nullable == measure.optional
        for table in (UsageHourly, UsageDaily):
            assert not table.__table__.c[measure.name].nullable


def test_the_stored_row_is_the_field_list() -> None:
    assert set(COLUMNS) == {column.name for column in UsageEvent.__table__.c}


def test_the_rollups_sum_every_measure_of_the_events() -> None:
    for measure in MEASURES:
        assert measure.name in rollup.SUM_COLUMNS
        assert f"coalesce(sum({measure.name}), 0) AS {measure.name}" in rollup.select_rollup("events")


def test_the_api_lists_every_stored_field_of_an_event() -> None:
    assert set(EVENT_FIELDS.values()) == set(COLUMNS) - {"tenant_id"}
    assert set(EventOut.model_fields) == set(EVENT_FIELDS)
    for name in ("cache_creation_1h_input_tokens", "web_search_requests"):
        assert name in EVENT_FIELDS
        assert name in TOTALS


def test_the_reconciler_reads_the_measures_it_takes_by_name() -> None:
    assert COUNTS["reasoning_tokens"] == "reasoning_tokens"
    assert COUNTS["system_prompt_tokens"] == "system_prompt_tokens"
