"""Columns that foot: rounded figures whose rows add up to their rounded total. Each figure rounded on its own
can leave the column a cent off its total (three rows of 0.334 show 0.33 each and a total of 1.00). Here the
total is rounded once and the rows are rounded down, then the cents left over go to the rows that lost the most
in rounding (the largest-remainder method; ties go to the earlier row). Pure.

Only what is written is rounded: the exact figures stay in the data (and in JSON and CSV downloads)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def footed(values: Sequence[Decimal | None], quantum: Decimal = CENT) -> tuple[list[Decimal | None], Decimal | None]:
    """`values` rounded to `quantum` so that the known ones add up to their total rounded once (half up), and
    that total; None stays None (a total is None when no value is known)."""
    known = [(index, value) for index, value in enumerate(values) if value is not None]
    if not known:
        return [None] * len(values), None
    total = sum((value for _, value in known), Decimal(0)).quantize(quantum, rounding=ROUND_HALF_UP)
    floors = {index: value.quantize(quantum, rounding=ROUND_FLOOR) for index, value in known}
    left = int((total - sum(floors.values(), Decimal(0))) / quantum)
    by_remainder = sorted(known, key=lambda item: (-(item[1] - floors[item[0]]), item[0]))
    for index, _ in by_remainder[:left]:
        floors[index] += quantum
    rounded: list[Decimal | None] = [floors.get(index) for index in range(len(values))]
    return rounded, total


def footed_column(values: Sequence[Decimal | None], quantum: Decimal = CENT) -> list[Decimal | None]:
    """The rows of `footed` alone."""
    return footed(values, quantum)[0]
