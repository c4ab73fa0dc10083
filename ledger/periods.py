"""Period math: calendar months and UTC day/hour buckets. Pure; every datetime is timezone-aware UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_YEAR, LAST_YEAR = 1970, 9998
"""The years a month may be named in: the windows around a month (history before it, the next month) stay
within what a datetime can hold."""


class PeriodError(ValueError):
    """A period string or range that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise PeriodError("period bounds must be timezone-aware")
        if self.end <= self.start:
            raise PeriodError(f"period end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @classmethod
    def month(cls, text: str) -> Period:
        """Parse `YYYY-MM` into that calendar month in UTC."""
        match = _MONTH.match(text.strip())
        if not match:
            raise PeriodError(f"period must look like 2026-10, got {text!r}")
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"period month must be 01-12, got {text!r}")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise PeriodError(f"period year must be {FIRST_YEAR}-{LAST_YEAR}, got {text!r}")
        return cls.of_month(year, month)

    @classmethod
    def of_month(cls, year: int, month: int) -> Period:
        start = datetime(year, month, 1, tzinfo=UTC)
        return cls(start, next_month_start(start))

    @classmethod
    def containing(cls, moment: datetime) -> Period:
        """The calendar month that contains `moment`."""
        moment = moment.astimezone(UTC)
        return cls.of_month(moment.year, moment.month)

    @property
    def label(self) -> str:
        """`2026-10` for a whole calendar month, else `start..end` in ISO dates."""
        if self.start.day == 1 and self.start.time() == time(0) and self.end == next_month_start(self.start):
            return f"{self.start.year:04d}-{self.start.month:02d}"
        return f"{self.start.date().isoformat()}..{self.end.date().isoformat()}"

    def previous(self) -> Period:
        """The calendar month before this one's start."""
        last = self.start - timedelta(days=1)
        return Period.of_month(last.year, last.month)

    def days(self) -> Iterator[date]:
        """Every UTC day the period touches."""
        day = self.start.date()
        while datetime.combine(day, time(0), UTC) < self.end:
            yield day
            day += timedelta(days=1)

    def months(self) -> Iterator[Period]:
        """The calendar months the period touches, in order."""
        current = Period.containing(self.start)
        while current.start < self.end:
            yield current
            current = Period(current.end, next_month_start(current.end))

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


def next_month_start(moment: datetime) -> datetime:
    """Midnight UTC on the first day of the month after `moment`'s month."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def hour_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)
