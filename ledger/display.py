"""How the reports write numbers, money, rates and times: the Jinja filters, in one module. Money is a
`Decimal` with its currency ("1,234.56 USD"), token counts have thousands separators, a missing value is
an em dash. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MISSING = "—"
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MONEY_WORDS = ("usd", "cost", "amount", "overcharge", "spend", "price", "impact", "baseline", "observed")
"""Evidence keys whose decimal values are money. Integers in evidence are always counts (tokens, requests)."""
MONEY_KEYS = frozenset({"expected", "billed", "difference", "logged", "money_abs_tolerance"})
"""Keys that hold money when their value is a decimal (not an integer) string, as spend evidence does."""
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_INFINITE = {"Infinity": "∞", "-Infinity": "-∞"}  # a statistic of an exact fit (Decimal's spelling)


def plain_decimal(value: Decimal | None) -> str | None:
    """A Decimal in fixed point without trailing zeros ("12.34", "100", "0.0000012"); exact."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money(value: Decimal | str | None, currency: str | None = "USD") -> str:
    """ "1,234.56 USD"; an amount that rounds to zero cents keeps up to six places ("0.0034 USD")."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded == 0:
        fine = amount.quantize(MICRO, rounding=ROUND_HALF_UP)
        text = f"{fine:,}".rstrip("0") if fine != 0 else "0.00"
    else:
        text = f"{rounded:,}"
    return f"{text} {currency or 'USD'}"


def signed_money(value: Decimal | str | None, currency: str | None = "USD") -> str:
    """A difference, to the cent and with its sign: "+12.30 USD", "-4.00 USD". Below half a cent it reads
    "0.00 USD": such a difference is the rounding between a statement's amounts and the catalog's prices, and
    "+0.000001 USD" beside "0.00%" would only look like a finding."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    rounded = _unsigned_zero(amount.quantize(CENT, rounding=ROUND_HALF_UP))
    return f"{'+' if rounded > 0 else ''}{rounded:,} {currency or 'USD'}"


def tokens(value: int | Decimal | str | None) -> str:
    """A count with thousands separators: "1,234,567"."""
    number = _decimal(value)
    if number is None:
        return MISSING
    return f"{number.to_integral_value(rounding=ROUND_HALF_UP):,}"


def number(value: int | Decimal | str | None) -> str:
    """A number with thousands separators, keeping its decimals ("1,234.5")."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    whole, _, fraction = (plain_decimal(abs(amount)) or "0").partition(".")
    return f"{'-' if amount < 0 else ''}{int(whole):,}" + (f".{fraction}" if fraction else "")


def percent(value: Decimal | str | None) -> str:
    """A value already in percent, signed: "+3.21%"."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    rounded = _unsigned_zero(amount.quantize(CENT, rounding=ROUND_HALF_UP))
    return f"{'+' if rounded > 0 else ''}{rounded}%"


def _unsigned_zero(rounded: Decimal) -> Decimal:
    """A value that rounded to zero, without the sign of what it was ("-0.00" reads as a drift that is not)."""
    return abs(rounded) if rounded == 0 else rounded


def rate(value: Decimal | str | None) -> str:
    """A fraction as a percentage: Decimal("0.0123") → "1.23%"."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    return f"{_unsigned_zero((amount * 100).quantize(CENT, rounding=ROUND_HALF_UP))}%"


DRIFT_STEPS = ((Decimal(20), "large"), (Decimal(5), "medium"), (Decimal(1), "small"))
"""Percent of expected cost from which a drift is large, medium, small; below the smallest it reads as none."""


def drift_class(difference: Decimal | str | None, expected: Decimal | str | None = None) -> str:
    """The CSS class of a drift cell, by sign and size: "drift-over-large" (billed 20% or more above expected),
    "drift-under-small", "drift-none" (under 1%, or under half a cent), "" when there is no drift figure.
    Without an expected cost to compare with, any drift of a cent or more is "large"."""
    amount = _decimal(difference)
    if amount is None:
        return ""
    if abs(amount) < CENT / 2:
        return "drift-none"
    base = _decimal(expected)
    share = abs(amount) / abs(base) * 100 if base else None
    direction = "over" if amount > 0 else "under"
    if share is None:
        return f"drift-{direction}-large"
    for step, size in DRIFT_STEPS:
        if share >= step:
            return f"drift-{direction}-{size}"
    return "drift-none"


def milliseconds(value: int | None) -> str:
    """A latency: "840 ms", "1.25 s"."""
    if value is None:
        return MISSING
    if value < 1_000:
        return f"{value} ms"
    return f"{plain_decimal(Decimal(value) / 1000)} s"


def when(value: datetime | str | None) -> str:
    """An instant in UTC to the minute: "2026-10-05 14:03 UTC"."""
    if value is None:
        return MISSING
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"when: {moment!r} has no timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def days(start: datetime | str | None, end: datetime | str | None) -> str:
    """A period by its first and last UTC day, the end being exclusive as everywhere in TokenLedger:
    "2026-10-01 – 2026-10-31", one day alone "2026-10-23". A period that does not start and end at midnight
    UTC is written by its instants."""
    if start is None or end is None:
        return MISSING
    first, stop = (datetime.fromisoformat(value) if isinstance(value, str) else value for value in (start, end))
    if first.tzinfo is None or stop.tzinfo is None:
        raise ValueError(f"days: {first!r} – {stop!r} has no timezone")
    first, stop = first.astimezone(UTC), stop.astimezone(UTC)
    if first.time() != time() or stop.time() != time() or stop <= first:
        return f"{when(first)} – {when(stop)}"
    last = (stop - timedelta(days=1)).date()
    return first.date().isoformat() if last == first.date() else f"{first.date().isoformat()} – {last.isoformat()}"


def age(value: timedelta | None) -> str:
    """A duration, coarsely: "3 d 4 h", "5 h 10 min", "12 min"."""
    if value is None:
        return MISSING
    minutes = max(0, int(value.total_seconds() // 60))
    days, minutes = divmod(minutes, 1_440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def label(key: str) -> str:
    """An evidence key as words: "cached_tokens_logged" → "Cached tokens logged"."""
    words = key.replace("_", " ").strip()
    words = re.sub(r"\bper 1m\b", "per 1M tokens", words)
    words = re.sub(r"\busd\b", "USD", words)
    words = re.sub(r"\bapi\b", "API", words)
    return words[:1].upper() + words[1:]


def evidence_value(value: Any, key: str = "", parent: str = "") -> str:
    """A scalar of a finding's evidence in words: counts with separators, money with its currency, yes/no."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return tokens(value)
    if isinstance(value, str) and _DECIMAL.match(value):
        if "." in value and _is_money(key, parent):
            return money(value)
        return number(value)
    return _INFINITE.get(value, str(value)) if isinstance(value, str) else str(value)


def _is_money(key: str, parent: str) -> bool:
    names = (key.lower(), parent.lower())
    return any(word in name for name in names for word in MONEY_WORDS) or key.lower() in MONEY_KEYS


def _decimal(value: int | Decimal | str | None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("money and counts are never floats")
    try:
        return Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"not a number: {value!r}") from error


FILTERS: dict[str, Callable[..., str | None]] = {
    "money": money,
    "signed_money": signed_money,
    "tokens": tokens,
    "number": number,
    "percent": percent,
    "rate": rate,
    "ms": milliseconds,
    "when": when,
    "days": days,
    "age": age,
    "label": label,
    "evidence_value": evidence_value,
    "plain_decimal": plain_decimal,
    "drift_class": drift_class,
}
