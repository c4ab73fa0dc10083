"""The contract every importer keeps, checked over every golden document."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from importers.base import TOKEN_USAGE_TYPES, USAGE_TYPES, StatementLine
from importers.registry import IMPORTERS, identify
from ledger.settings import Settings
from tests.importers.golden import Case, golden_cases

CASES = golden_cases()
CURRENCY = re.compile(r"^[A-Z]{3}$")


def parsed(case: Case) -> tuple[str, list[StatementLine]]:
    document = case.document()
    importer = identify(document, case.importers())
    return importer.source, importer.parse(document)


def test_each_importer_has_its_own_source_name() -> None:
    sources = [importer.source for importer in IMPORTERS]

    assert len(sources) == len(set(sources))
    assert set(sources) >= {"openai", "anthropic", "openrouter", "focus", "csv"}


def test_api_importers_declare_their_credential_variable_default_base_url_and_base_url_setting() -> None:
    """What the pull service reads (`ledger.statements.pull`); the shipped variables are an interface."""
    fetchers = {importer.source: importer for importer in IMPORTERS if importer.credential_env}

    assert {source: importer.credential_env for source, importer in fetchers.items()}.items() >= {
        "openai": "OPENAI_ADMIN_KEY",
        "anthropic": "ANTHROPIC_ADMIN_KEY",
        "openrouter": "OPENROUTER_API_KEY",
    }.items()
    assert all(importer.fetches for importer in fetchers.values())
    assert all(
        importer.base_url_setting is None or importer.base_url_setting in Settings.model_fields
        for importer in fetchers.values()
    )


def test_file_importers_declare_nothing_a_fetch_needs() -> None:
    for importer in IMPORTERS:
        if not importer.fetches:
            assert (importer.credential_env, importer.base_url_setting, importer.request_ids_of) == (None, None, None)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_parsing_is_deterministic_and_leaves_the_document_unchanged(case: Case) -> None:
    document = case.document()
    importer = identify(document, case.importers())
    digest = document.sha256

    first, second = importer.parse(document), importer.parse(document)

    assert first == second
    assert document.sha256 == digest


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_identify_is_repeatable_and_claims_only_its_own_documents(case: Case) -> None:
    document = case.document()
    expected = case.expected()["importer"]

    for importer in case.importers():
        claims = importer.identify(document)
        assert claims == importer.identify(document)
        assert claims == (importer.source == expected)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_line_is_typed_dated_and_traceable(case: Case) -> None:
    source, lines = parsed(case)

    assert lines, "a golden document should produce lines"
    for line in lines:
        assert line.source == source
        assert line.usage_type in USAGE_TYPES
        assert line.period_start.utcoffset() == timedelta(0)
        assert line.period_end.utcoffset() == timedelta(0)
        assert line.period_start <= line.period_end
        assert line.quantity is None or isinstance(line.quantity, Decimal)
        assert line.amount is None or isinstance(line.amount, Decimal)
        assert line.amount is None or CURRENCY.match(line.currency or "")
        if line.usage_type in TOKEN_USAGE_TYPES and line.quantity is not None:
            assert line.unit == "tokens"
        assert line.document == case.path.name
        assert line.location
        assert line.raw
        json.dumps(line.raw)  # the raw values can be stored as JSON
