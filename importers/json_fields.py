"""Reading provider JSON with every value located: errors name the document, the JSON path and the field.

Numbers with a fraction are parsed straight to Decimal (`parse_float=Decimal`), so money never
passes through a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from importers.base import RawDocument, StatementError, implausible

MAX_DEPTH = 64
"""A document too deep for Python's parser (about 1,000 levels; the providers' documents nest a few) is
refused, located where it first nests deeper than this."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_json(document: RawDocument) -> Any:
    """The parsed document; fractional numbers become Decimal."""
    try:
        text = document.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatementError(document.name, "", None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise StatementError(document.name, f"line {exc.lineno} column {exc.colno}", None, exc.msg) from None
    except RecursionError:
        line, column = nesting_beyond(text, MAX_DEPTH) or (1, 1)
        raise StatementError(
            document.name, f"line {line} column {column}", None, f"nests too deeply (beyond {MAX_DEPTH} levels here)"
        ) from None
    surrogate = surrogate_path(value, "") if _SURROGATE_ESCAPE.search(text) else None
    if surrogate is not None:
        raise StatementError(
            document.name, surrogate, None, "holds a lone surrogate (\\ud800-\\udfff), which is no text"
        )
    return value


_BRACKETS = re.compile(r'[\[\]{}"\\]')


def nesting_beyond(text: str, limit: int) -> tuple[int, int] | None:
    """(line, column) where `text`, read as JSON, opens its `limit + 1`-th nested array or object; None when it
    nests no deeper. One pass over the brackets, quotes and backslashes (strings are skipped)."""
    depth = 0
    in_string = False
    escaped_until = -1
    for match in _BRACKETS.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at <= escaped_until:
                continue
            if char == "\\":
                escaped_until = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, at) + 1
                return line, at - (text.rfind("\n", 0, at) + 1) + 1
        elif char in "]}":
            depth -= 1
    return None


def surrogate_path(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or key) in `value` holding a lone surrogate, or None."""
    if isinstance(value, str):
        return path or "(the document)" if _has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _has_surrogate(key):
                return where
            found = surrogate_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = surrogate_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def peek_json(document: RawDocument) -> Any:
    """The parsed document if it is a JSON object, else None; for `identify`, never raises."""
    if document.content.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] != b"{":
        return None
    try:
        return json.loads(document.content.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None


def jsonable(value: Any) -> Any:
    """`value` with Decimals written as strings, ready for a JSON column."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def show(value: Any) -> str:
    """A value as it should appear in an error message."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class JsonObject:
    """A JSON object together with its document and path, read through typed accessors.

    `get_*` return None for an absent or null field; `need_*` raise StatementError instead.
    """

    document: str
    path: str
    data: Mapping[str, Any]

    @classmethod
    def root(cls, document: str, value: Any) -> JsonObject:
        if not isinstance(value, Mapping):
            raise StatementError(document, "", None, f"expected a JSON object at the top, got {show(value)}")
        return cls(document, "", value)

    def error(self, field: str, problem: str) -> StatementError:
        return StatementError(self.document, self.path, field, problem)

    def raw(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self.data)
        return result

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _missing(self, key: str) -> StatementError:
        return self.error(key, "is missing" if key not in self.data else "is null")

    def get_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.error(key, f"expected a string, got {show(value)}")

    def need_str(self, key: str) -> str:
        value = self.get_str(key)
        if value is None:
            raise self._missing(key)
        return value

    def get_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(key, f"expected true or false, got {show(value)}")

    def get_count(self, key: str) -> int | None:
        """A non-negative integer such as a token or request count."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)  # 12.0 from a JSON encoder that writes every number as a float
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {show(value)}")
        if value < 0:
            raise self.error(key, f"expected a count of zero or more, got {value}")
        return value

    def need_count(self, key: str) -> int:
        value = self.get_count(key)
        if value is None:
            raise self._missing(key)
        return value

    def get_decimal(self, key: str) -> Decimal | None:
        """A number, or a decimal number written as a string."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.error(key, f"expected a number, got {show(value)}")
        if isinstance(value, int | Decimal):
            return Decimal(value)
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except ArithmeticError:
                number = Decimal("NaN")
            if number.is_finite():
                return number
        raise self.error(key, f"expected a number, got {show(value)}")

    def need_decimal(self, key: str) -> Decimal:
        value = self.get_decimal(key)
        if value is None:
            raise self._missing(key)
        return value

    def get_object(self, key: str) -> JsonObject | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected an object, got {show(value)}")
        return JsonObject(self.document, self._child(key), value)

    def need_objects(self, key: str) -> list[JsonObject]:
        """The objects of the list at `key`, each with its own path (`key[i]`)."""
        value = self.data.get(key)
        if value is None:
            raise self._missing(key)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {show(value)}")
        objects = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.error(f"{key}[{index}]", f"expected an object, got {show(item)}")
            objects.append(JsonObject(self.document, f"{self._child(key)}[{index}]", item))
        return objects

    def need_unix_time(self, key: str) -> datetime:
        """A Unix timestamp in seconds, as an aware UTC datetime."""
        seconds = self.need_count(key)
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise self.error(key, f"expected a Unix time in seconds, got {seconds}, beyond any date") from None
        if problem := implausible(moment):
            raise self.error(key, problem)
        return moment

    def need_timestamp(self, key: str) -> datetime:
        """An RFC 3339 / ISO 8601 timestamp with an offset, as an aware UTC datetime."""
        text = self.need_str(key)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.error(key, f"expected an RFC 3339 timestamp, got {text!r}") from None
        if moment.tzinfo is None:
            raise self.error(key, f"expected a timestamp with a UTC offset, got {text!r}")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise self.error(key, f"{text!r} is outside the dates a statement covers") from None
        if problem := implausible(moment):
            raise self.error(key, problem)
        return moment

    def _child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


class Grouping:
    """The dimensions a page of grouped results was grouped by, as far as the page shows: those some row gives
    a value. Providers send every dimension key of a result, null unless grouped by it; in a grouped dimension
    null is a bucket of its own (Anthropic: the default workspace, Console usage without an API key, the
    standard tier), which `value` reads as that dimension's label in `blanks` ("" for an account or key: what
    events without one carry). A dimension no row gives stays None: the statement does not break down by it.
    (A page grouped by a dimension in which every row is null reads as not broken down by it: the same
    figures, compared one level up.)"""

    def __init__(self, rows: Iterable[JsonObject], blanks: Mapping[str, str]) -> None:
        rows = list(rows)
        self.blanks = {key: blank for key, blank in blanks.items() if any(row.get_str(key) is not None for row in rows)}

    def value(self, row: JsonObject, key: str) -> str | None:
        value = row.get_str(key)
        return self.blanks.get(key) if value is None else value
