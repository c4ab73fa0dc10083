"""Golden statement documents: `<source>/<case>.json|csv` beside `<case>.expected.json`.

An expected file holds the importer that must claim the document, the CSV mapping it needs (if any)
and every line the document parses to. Regenerate with `UPDATE_GOLDEN=1 python3 -m pytest tests/importers`
and review the diff: the expected files are the specification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from importers.base import Importer, RawDocument, StatementLine
from importers.csv_export import CsvImporter, load_mapping
from importers.registry import IMPORTERS

ROOT = Path(__file__).parent
MEDIA_TYPES = {".json": "application/json", ".csv": "text/csv"}


@dataclass(frozen=True)
class Case:
    path: Path

    @property
    def expected_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.expected.json")

    @property
    def id(self) -> str:
        return str(self.path.relative_to(ROOT))

    def document(self) -> RawDocument:
        return RawDocument(
            name=self.path.name,
            content=self.path.read_bytes(),
            media_type=MEDIA_TYPES[self.path.suffix],
            source=self.path.parent.name,
        )

    def expected(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.expected_path.read_text(encoding="utf-8"))
        return result

    def importers(self) -> list[Importer]:
        """The registry, with the CSV importer reading through the mapping this case names."""
        mapping = self.expected().get("mapping") if self.expected_path.exists() else None
        if not mapping:
            return list(IMPORTERS)
        return [*(i for i in IMPORTERS if i.source != "csv"), CsvImporter(load_mapping(mapping))]


def documents() -> list[Path]:
    return sorted(
        path for path in ROOT.glob("*/*") if path.suffix in MEDIA_TYPES and not path.name.endswith(".expected.json")
    )


def golden_cases() -> list[Case]:
    return [Case(path) for path in documents() if Case(path).expected_path.exists()]


def unclaimed_cases() -> list[Case]:
    return [Case(path) for path in documents() if not Case(path).expected_path.exists()]


def serialise(line: StatementLine) -> dict[str, Any]:
    """A line as plain JSON: Decimals as strings, datetimes in ISO 8601."""
    result: dict[str, Any] = {}
    for field in fields(line):
        value = getattr(line, field.name)
        if field.name == "model_labels":
            if not value:
                continue  # only sources whose columns name the model several ways give them
            value = list(value)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        result[field.name] = value
    return result


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def json_document(name: str, body: Any) -> RawDocument:
    """An inline JSON statement document (floats written as JSON numbers, as providers send them)."""
    return RawDocument(name=name, content=json.dumps(body).encode(), media_type="application/json", source="test")


def csv_document(name: str, text: str) -> RawDocument:
    """An inline CSV statement document."""
    return RawDocument(name=name, content=text.encode(), media_type="text/csv", source="test")
