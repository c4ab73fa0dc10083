"""The importers, listed explicitly, and how a document finds its importer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from importers.anthropic import AnthropicImporter
from importers.base import Importer, RawDocument
from importers.csv_export import CsvImporter, load_mapping
from importers.focus import FocusImporter
from importers.openai import OpenAIImporter
from importers.openrouter import OpenRouterImporter

IMPORTERS: Final[tuple[Importer, ...]] = (
    OpenAIImporter(),
    AnthropicImporter(),
    OpenRouterImporter(),
    FocusImporter(),
    CsvImporter(),  # claims nothing until a mapping is named: see `importer_for("csv", mapping=…)`
)


class UnidentifiedDocument(ValueError):
    """No importer reads the document."""


class AmbiguousDocument(ValueError):
    """More than one importer claims the document."""


def importer_for(source: str, *, mapping: str | Path | None = None) -> Importer:
    """The importer for `source`; for "csv", the mapping (shipped name or .toml path) it reads with."""
    if mapping is not None:
        if source != "csv":
            raise ValueError(f"a mapping is only for the csv source, not {source!r}")
        return CsvImporter(load_mapping(mapping))
    for importer in IMPORTERS:
        if importer.source == source:
            return importer
    known = ", ".join(importer.source for importer in IMPORTERS)
    raise ValueError(f"unknown statement source {source!r}; expected one of {known}")


def identify(document: RawDocument, importers: Sequence[Importer] = IMPORTERS) -> Importer:
    """The one importer that claims `document`.

    To read a CSV export with a mapping, pass `[*IMPORTERS, importer_for("csv", mapping=name)]`.
    """
    claims = [importer for importer in importers if importer.identify(document)]
    if not claims:
        raise UnidentifiedDocument(
            f"{document.name}: no importer recognises this document (tried {_sources(importers)}); "
            "for a CSV export, name a mapping"
        )
    if len(claims) > 1:
        raise AmbiguousDocument(f"{document.name}: claimed by more than one importer: {_sources(claims)}")
    return claims[0]


def _sources(importers: Sequence[Importer]) -> str:
    return ", ".join(importer.source for importer in importers)
