"""The Jinja environment every report renders with: templates from `reports/templates/`, HTML autoescaped,
undefined names an error, and the filters of `ledger.display`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ledger.display import FILTERS
from reports.drift_split import written
from reports.evidence import columns, in_reading_order


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["chart_json"] = chart_json
    env.filters["columns"] = columns
    env.filters["in_reading_order"] = in_reading_order
    env.filters["written_split"] = written
    return env


def chart_json(data: Any) -> Markup:
    """Chart data for a `<script type="application/json">` block: `<`, `>` and `&` escaped so the data can
    never close the block."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))
