"""Units as billing exports print them ("1000 Tokens", "1K tokens", "1M Tokens", "Requests").

FOCUS writes units as `<quantity> <plural-units>` (e.g. `1000 Tokens`, FOCUS 1.2 UnitFormat); other
exports abbreviate the block size. Token and request counts are normalised to single units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Final

_UNIT: Final = re.compile(
    r"^\s*(?:(?P<size>\d+(?:\.\d+)?)\s*(?P<suffix>[kKmM])?\s+)?(?P<name>[A-Za-z][A-Za-z -]*?)\s*$"
)
_SUFFIXES: Final = {"k": Decimal(1000), "m": Decimal(1_000_000)}
_NAMES: Final = {"token": "tokens", "tokens": "tokens", "request": "requests", "requests": "requests"}


@dataclass(frozen=True, slots=True)
class Unit:
    """A count unit: a quantity in this unit times `scale` is a count of `name`."""

    name: str
    scale: Decimal


def parse_unit(text: str) -> Unit | None:
    """The unit for token and request counts, whatever their block size; None for anything else."""
    match = _UNIT.match(text)
    if not match:
        return None
    name = _NAMES.get(match["name"].lower())
    if name is None:
        return None
    scale = Decimal(match["size"] or 1) * _SUFFIXES.get((match["suffix"] or "").lower(), Decimal(1))
    return Unit(name, scale)


def whole(quantity: Decimal) -> Decimal:
    """`quantity` without a trailing `.0` when it is a whole number (`2500.0` → `2500`). Exact for any size (a
    number too large to store is refused where lines are stored, naming it)."""
    if not quantity.is_finite() or quantity != quantity.to_integral_value():
        return quantity
    with localcontext(Context(prec=max(quantity.adjusted() + 2, 28))):
        return quantity.quantize(Decimal(1))
