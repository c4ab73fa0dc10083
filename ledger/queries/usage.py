"""Reading logged usage: raw events page by page (keyset), and totals from the hourly rollup.
Every query is scoped to one tenant."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Label, SQLColumnExpression, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from ledger.display import plain_decimal
from ledger.errors import InvalidRequest
from ledger.events.schema import COLUMNS, MEASURES
from ledger.periods import Period, PeriodError
from ledger.storage.tables import UsageEvent, UsageHourly

MAX_PAGE = 1_000

GROUPS: dict[str, SQLColumnExpression[Any]] = {
    "provider": UsageHourly.provider,
    "account": UsageHourly.account,
    "api_key_id": UsageHourly.api_key_id,
    "model": UsageHourly.response_model,
    "request_model": UsageHourly.request_model,
    "app": UsageHourly.app,
    "service_tier": UsageHourly.service_tier,
    "day": func.date_trunc("day", UsageHourly.hour, "UTC"),
    "hour": UsageHourly.hour,
}


def _count(column: SQLColumnExpression[Any]) -> ColumnElement[Any]:
    return cast(func.sum(column), BigInteger)


TOTALS: dict[str, ColumnElement[Any]] = {
    "requests": _count(UsageHourly.requests),
    # Every measure the events state; not those they may leave out, whose sum covers only some requests.
    **{measure.name: _count(UsageHourly.__table__.c[measure.name]) for measure in MEASURES if not measure.optional},
    "errors": _count(UsageHourly.status_4xx + UsageHourly.status_429 + UsageHourly.status_5xx),
    # None where no request of the group reported a cost: unknown, not zero.
    "reported_cost": case(
        (func.sum(UsageHourly.reported_cost_requests) > 0, func.sum(UsageHourly.reported_cost)), else_=None
    ),
}


def instant(name: str, text: str | None) -> datetime | None:
    """An RFC 3339 instant with its UTC offset (`2026-10-05T00:00:00Z`) from a query parameter; None when left out.
    Numbers are not read as Unix times: a timestamp must say what it is."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{name} must be an RFC 3339 instant such as 2026-10-05T00:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} needs a UTC offset (RFC 3339), got {text!r}")
    return moment


def month(text: str) -> Period:
    """The calendar month a `period` parameter names (`2026-10`), or InvalidRequest saying what is wrong."""
    try:
        return Period.month(text)
    except PeriodError as error:
        raise InvalidRequest(str(error)) from error


def resolve_range(period: str | None, since: datetime | None, until: datetime | None) -> Period | None:
    """`period` (YYYY-MM) or an explicit since/until range; None when neither is given (an empty `period` is
    given, and refused: a script's unset variable must not widen a query to everything)."""
    if period is not None and (since or until):
        raise InvalidRequest("give either period or since/until, not both")
    if period is not None:
        return month(period)
    if since or until:
        if not (since and until):
            raise InvalidRequest("since and until go together")
        if since.tzinfo is None or until.tzinfo is None:
            raise InvalidRequest("since and until need a UTC offset (RFC 3339)")
        if until <= since:
            raise InvalidRequest("until must be after since")
        return Period(since, until)
    return None


def usage_totals(session: Session, tenant_id: int, period: Period, group_by: Sequence[str]) -> list[dict[str, Any]]:
    unknown = [name for name in group_by if name not in GROUPS]
    if unknown:
        raise InvalidRequest(f"group_by {unknown[0]!r} is not one of {', '.join(GROUPS)}")
    groups: list[Label[Any]] = [GROUPS[name].label(name) for name in group_by]
    query = select(*groups, *(total.label(name) for name, total in TOTALS.items())).where(
        UsageHourly.tenant_id == tenant_id, UsageHourly.hour >= period.start, UsageHourly.hour < period.end
    )
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    rows = []
    for row in session.execute(query).mappings():
        if row["requests"] is None:
            continue
        rows.append({name: _jsonable(value) for name, value in row.items()})
    return rows


@dataclass(frozen=True, slots=True)
class EventFilter:
    period: Period | None = None
    provider: str | None = None
    model: str | None = None
    app: str | None = None
    account: str | None = None
    """"" means events without an account (what a statement's default workspace or project is)."""
    api_key_id: str | None = None


def list_events(
    session: Session, tenant_id: int, filters: EventFilter, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events ordered by (occurred_at, event_id), and the cursor of the next page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    query = select(UsageEvent).where(UsageEvent.tenant_id == tenant_id)
    if filters.period:
        query = query.where(UsageEvent.occurred_at >= filters.period.start, UsageEvent.occurred_at < filters.period.end)
    if filters.provider:
        query = query.where(UsageEvent.provider == filters.provider)
    if filters.model:
        query = query.where(or_(UsageEvent.response_model == filters.model, UsageEvent.request_model == filters.model))
    if filters.app:
        query = query.where(UsageEvent.app == filters.app)
    for column, wanted in ((UsageEvent.account, filters.account), (UsageEvent.api_key_id, filters.api_key_id)):
        if wanted is not None:
            query = query.where(column.is_(None) | (column == "") if wanted == "" else column == wanted)
    if cursor:
        after_time, after_id = decode_cursor(cursor)
        query = query.where(
            or_(
                UsageEvent.occurred_at > after_time,
                and_(UsageEvent.occurred_at == after_time, UsageEvent.event_id > after_id),
            )
        )
    events = list(session.scalars(query.order_by(UsageEvent.occurred_at, UsageEvent.event_id).limit(limit + 1)))
    next_cursor = (
        encode_cursor(events[limit - 1].occurred_at, events[limit - 1].event_id) if len(events) > limit else None
    )
    return [event_json(event) for event in events[:limit]], next_cursor


_FIELD_OF_COLUMN = {"user_label": "user", "usage_raw": "usage"}
"""Columns whose field in the API has the name EventIn gives it."""
EVENT_FIELDS: dict[str, str] = {
    "event_id": "event_id",
    **{_FIELD_OF_COLUMN.get(name, name): name for name in COLUMNS if name not in ("tenant_id", "event_id")},
}
"""What GET /v1/events answers with for an event, in order: each field with its column, from the event field
list (`ledger.events.schema.COLUMNS`); the tenant is the caller's own."""


def event_json(event: UsageEvent) -> dict[str, Any]:
    return {name: _jsonable(getattr(event, column)) for name, column in EVENT_FIELDS.items()}


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([occurred_at.isoformat(), event_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (occurred_at, event_id) a cursor of `encode_cursor` holds; 422 naming `cursor` for anything else,
    a NUL or a lone surrogate included (text PostgreSQL cannot take)."""
    try:
        moment, event_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        after = datetime.fromisoformat(moment)
        if not isinstance(event_id, str) or after.tzinfo is None or "\x00" in event_id:
            raise ValueError("not a cursor")
        event_id.encode("utf-8")  # a lone surrogate has no UTF-8 form
        return after, event_id
    except (ValueError, TypeError, UnicodeError) as error:
        raise InvalidRequest(
            "cursor is not one this server issued",
            details=[{"field": "cursor", "message": "give the next_cursor of the previous page as it came"}],
        ) from error


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return plain_decimal(value)  # "0.0123", "0": never "0E-10" or the column's trailing zeros
    return value
