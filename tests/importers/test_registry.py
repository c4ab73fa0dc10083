"""Finding the importer for a source name or for a document."""

from __future__ import annotations

import pytest

from importers.base import FetchContext
from importers.csv_export import CsvImporter, CsvMapping
from importers.fetching import FetchClient
from importers.registry import IMPORTERS, AmbiguousDocument, UnidentifiedDocument, identify, importer_for
from ledger.periods import Period
from tests.importers.golden import ROOT, csv_document, json_document


def test_importers_are_found_by_source_name() -> None:
    assert [importer_for(importer.source) for importer in IMPORTERS] == list(IMPORTERS)


def test_an_unknown_source_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown statement source 'azure'; expected one of openai, anthropic"):
        importer_for("azure")


def test_naming_a_mapping_gives_a_csv_importer_that_reads_with_it() -> None:
    importer = importer_for("csv", mapping="generic_wide_example")

    assert isinstance(importer, CsvImporter)
    assert importer.mapping is not None
    assert importer.mapping.name == "generic_wide_example"
    with pytest.raises(ValueError, match="only for the csv source"):
        importer_for("focus", mapping="generic_wide_example")


def test_a_document_nobody_reads_is_an_error_naming_the_file() -> None:
    with pytest.raises(UnidentifiedDocument, match=r"^invoice\.pdf\.json: no importer recognises this document"):
        identify(json_document("invoice.pdf.json", {"total": 12}))


def test_a_document_two_importers_claim_is_an_error_naming_both() -> None:
    focus_text = (ROOT / "focus" / "azure_openai_focus_1_0.csv").read_text()
    columns = {"date": "ChargePeriodStart", "usage_type": "ChargeCategory", "amount": "BilledCost"}
    greedy = CsvImporter(CsvMapping(name="greedy", provider="x", columns=columns, currency="USD"))

    with pytest.raises(AmbiguousDocument, match=r"^azure\.csv: claimed by more than one importer: focus, csv$"):
        identify(csv_document("azure.csv", focus_text), [*IMPORTERS, greedy])


def test_file_sources_cannot_be_fetched() -> None:
    with (
        FetchClient("http://127.0.0.1:9") as client,
        pytest.raises(NotImplementedError, match="focus statements are files to import"),
    ):
        next(importer_for("focus").fetch(Period.month("2026-10"), credential="", client=client, context=FetchContext()))
