"""Every golden document is claimed by exactly its importer and parses to exactly its expected lines."""

from __future__ import annotations

import difflib
import os

import pytest

from importers.registry import IMPORTERS, UnidentifiedDocument, identify
from tests.importers.golden import Case, dumps, golden_cases, serialise, unclaimed_cases

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", golden_cases(), ids=lambda case: case.id)
def test_golden_document_is_claimed_by_its_importer_and_parses_to_the_expected_lines(case: Case) -> None:
    document = case.document()
    expected = case.expected()

    importer = identify(document, case.importers())
    actual = {
        "importer": importer.source,
        "mapping": expected.get("mapping"),
        "lines": [serialise(line) for line in importer.parse(document)],
    }

    if UPDATE:
        case.expected_path.write_text(dumps(actual), encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            dumps(expected).splitlines(), dumps(actual).splitlines(), "expected", "actual", lineterm=""
        )
        pytest.fail(f"{case.id} does not parse as expected:\n" + "\n".join(diff), pytrace=False)


@pytest.mark.parametrize("case", unclaimed_cases(), ids=lambda case: case.id)
def test_a_document_without_expected_lines_is_claimed_by_no_importer(case: Case) -> None:
    with pytest.raises(UnidentifiedDocument, match=case.path.name):
        identify(case.document(), IMPORTERS)


def test_there_are_golden_documents_for_every_importer() -> None:
    covered = {case.expected()["importer"] for case in golden_cases()}

    assert covered == {importer.source for importer in IMPORTERS}
