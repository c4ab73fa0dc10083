"""Billing-statement importers: provider documents in, statement lines out (see README.md)."""

from importers.base import (
    USAGE_TYPES,
    AdminKeyRequired,
    FetchContext,
    FetchError,
    Importer,
    RawDocument,
    StatementError,
    StatementLine,
    item_label,
    unrecognised,
)
from importers.csv_export import CsvMapping, MappingError, load_mapping, shipped_mappings
from importers.fetching import FetchClient
from importers.registry import IMPORTERS, AmbiguousDocument, UnidentifiedDocument, identify, importer_for

__all__ = [
    "IMPORTERS",
    "USAGE_TYPES",
    "AdminKeyRequired",
    "AmbiguousDocument",
    "CsvMapping",
    "FetchClient",
    "FetchContext",
    "FetchError",
    "Importer",
    "MappingError",
    "RawDocument",
    "StatementError",
    "StatementLine",
    "UnidentifiedDocument",
    "identify",
    "importer_for",
    "item_label",
    "load_mapping",
    "shipped_mappings",
    "unrecognised",
]
