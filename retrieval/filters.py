"""Metadata filters: a small typed tree, parsed from JSON with the path of every mistake.

Keys name fields of a chunk's `metadata` object. The tree is engine-neutral; each store
engine (store/edge.py, store/server.py) translates it into its own filter. The JSON grammar
follows Qdrant's::

    {"must": [...], "should": [...], "must_not": [...]}         all / any / none of the items
    {"key": "category", "match": "shoes"}                       equality (string, number, bool)
    {"key": "category", "match": {"value": "shoes"}}            the same, Qdrant's long form
    {"key": "tags", "any": ["a", "b"]}                          one of (strings or integers)
    {"key": "tags", "match": {"any": ["a", "b"]}}               the same, Qdrant's long form
    {"key": "price", "range": {"gte": 10, "lt": 50}}            numbers
    {"key": "published", "range": {"gte": "2024-01-01T00:00:00Z"}}   ISO-8601 dates

Items of the lists are conditions or nested filters. An object with none of the keys `must`,
`should`, `must_not` and `key` is the shorthand of the first API: every field equal to its
value (`{"lang": "en", "year": 2024}`); the empty object matches every chunk.

A date without a UTC offset is read as UTC, as Qdrant reads stored dates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval.errors import InvalidInput

MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
"""Qdrant stores integers as 64-bit."""
_FIELD_NAME = re.compile(r"\w[\w-]{0,63}(?:\.\w[\w-]{0,63}){0,7}")
"""A metadata field, or a nested one as parts joined by '.': what a payload key path can
address (no '$', brackets, quotes, spaces or control characters)."""
MAX_FILTER_DEPTH = 5
"""Filter objects nested in one another, the outermost counting as 1."""
MAX_FILTER_CONDITIONS = 64
"""Conditions (match, any, range) in one filter, counted over every level."""

MatchValue = str | int | float | bool
AnyValues = tuple[str, ...] | tuple[int, ...]

_CLAUSES = ("must", "should", "must_not")
_BOUNDS = ("gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True)
class Match:
    """The field equals `value` (a float is compared exactly)."""

    key: str
    value: MatchValue


@dataclass(frozen=True, slots=True)
class MatchAny:
    """The field equals one of `values`: all strings or all integers."""

    key: str
    values: AnyValues


@dataclass(frozen=True, slots=True)
class Range:
    """The field is a number within the given bounds (at least one is set)."""

    key: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True, slots=True)
class DateRange:
    """The field is an ISO-8601 date within the given bounds (timezone-aware datetimes)."""

    key: str
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None

    def __post_init__(self) -> None:
        for bound in (self.gt, self.gte, self.lt, self.lte):
            if bound is not None and bound.utcoffset() is None:
                raise ValueError(f"DateRange bounds must be timezone-aware, got {bound!r}")


@dataclass(frozen=True, slots=True)
class Not:
    """The inner filter does not match (a chunk without the field matches)."""

    filter: Filter


@dataclass(frozen=True, slots=True)
class And:
    """Every inner filter matches; no inner filter at all matches every chunk."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one inner filter matches."""

    filters: tuple[Filter, ...]


Condition = Match | MatchAny | Range | DateRange
Filter = Condition | Not | And | Or


def parse_filter(
    data: object, *, path: str = "filter", max_depth: int = MAX_FILTER_DEPTH
) -> Filter:
    """The filter that JSON-like `data` describes; InvalidInput names the path of a mistake."""
    return _Parser(max_depth).filter(data, path, depth=1, top_level=True)


class _Parser:
    """One parse: counts the conditions met so far."""

    def __init__(self, max_depth: int) -> None:
        self._conditions = 0
        self._max_depth = max_depth

    def filter(self, data: object, path: str, *, depth: int, top_level: bool = False) -> Filter:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{path}: expected an object, got {_show(data)}")
        if "key" in data:
            return self.condition(data, path)
        if depth > self._max_depth:
            raise InvalidInput(
                f"{path}: filters are nested deeper than {self._max_depth} levels "
                "(SEMSEARCH_LIMITS__MAX_FILTER_DEPTH)"
            )
        if not any(clause in data for clause in _CLAUSES):
            if top_level:
                return self.shorthand(data, path)
            raise InvalidInput(
                f"{path}: expected a condition with 'key' or a filter with 'must', "
                f"'should' or 'must_not', got the keys {_show(sorted(map(str, data)))}"
            )
        for name in data:
            if name not in _CLAUSES:
                raise InvalidInput(
                    f"{path}: unknown operator {_show(name)}; a filter holds 'must', "
                    "'should' and 'must_not'"
                )
        parts: list[Filter] = []
        if "must" in data:
            parts.extend(self.items(data["must"], f"{path}.must", depth=depth))
        if "should" in data:
            parts.append(_either(self.items(data["should"], f"{path}.should", depth=depth)))
        if "must_not" in data:
            excluded = self.items(data["must_not"], f"{path}.must_not", depth=depth)
            parts.append(Not(_either(excluded)))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def items(self, data: object, path: str, *, depth: int) -> list[Filter]:
        if isinstance(data, str | bytes) or not isinstance(data, Sequence):
            raise InvalidInput(f"{path}: expected a list, got {_show(data)}")
        if not data:
            raise InvalidInput(f"{path}: expected at least one condition, got an empty list")
        return [
            self.filter(item, f"{path}[{index}]", depth=depth + 1)
            for index, item in enumerate(data)
        ]

    def shorthand(self, data: Mapping[object, object], path: str) -> Filter:
        matches: list[Filter] = []
        for key, value in data.items():
            field_path = f"{path}.{key}"
            self.count(path)
            matches.append(Match(_key(key, field_path), _match_value(value, field_path)))
        return matches[0] if len(matches) == 1 else And(tuple(matches))

    def condition(self, data: Mapping[object, object], path: str) -> Condition:
        key = _key(data["key"], f"{path}.key")
        operators = [name for name in data if name != "key"]
        for name in operators:
            if name not in ("match", "any", "range"):
                raise InvalidInput(
                    f"{path}: unknown operator {_show(name)}; a condition has one of "
                    "'match', 'any' or 'range'"
                )
        if len(operators) != 1:
            raise InvalidInput(
                f"{path}: expected exactly one of 'match', 'any' or 'range' beside 'key', "
                f"got {len(operators)}"
            )
        self.count(path)
        operator = operators[0]
        value = data[operator]
        operator_path = f"{path}.{operator}"
        if operator == "any":
            return MatchAny(key, _any_values(value, operator_path))
        if operator == "range":
            return _range(key, value, operator_path)
        if isinstance(value, Mapping):
            return _long_match(key, value, operator_path)
        return Match(key, _match_value(value, operator_path))

    def count(self, path: str) -> None:
        self._conditions += 1
        if self._conditions > MAX_FILTER_CONDITIONS:
            raise InvalidInput(f"{path}: a filter holds at most {MAX_FILTER_CONDITIONS} conditions")


def _either(filters: list[Filter]) -> Filter:
    return filters[0] if len(filters) == 1 else Or(tuple(filters))


def _key(value: object, path: str) -> str:
    if not isinstance(value, str) or not _FIELD_NAME.fullmatch(value):
        raise InvalidInput(
            f"{path}: expected a metadata field name (letters, digits, '_', '-', and '.' "
            f"between the parts of a nested field; at most 64), got {_show(value)}"
        )
    return value


def _check_integer(value: int, path: str) -> int:
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise InvalidInput(f"{path}: integers in filters lie within -2^63..2^63-1")
    return value


def _match_value(value: object, path: str) -> MatchValue:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{path}: expected a finite number, got {_show(value)}")
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_integer(value, path)
    if isinstance(value, str | float | bool):
        return value
    raise InvalidInput(f"{path}: expected a string, number or boolean, got {_show(value)}")


def _long_match(key: str, data: Mapping[object, object], path: str) -> Condition:
    if len(data) != 1 or next(iter(data)) not in ("value", "any"):
        names = _show(sorted(map(str, data)))
        raise InvalidInput(f"{path}: expected one of 'value' or 'any', got the keys {names}")
    if "any" in data:
        return MatchAny(key, _any_values(data["any"], f"{path}.any"))
    return Match(key, _match_value(data["value"], f"{path}.value"))


def _any_values(data: object, path: str) -> AnyValues:
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise InvalidInput(f"{path}: expected a list of strings or integers, got {_show(data)}")
    if not data:
        raise InvalidInput(f"{path}: expected at least one value, got an empty list")
    if all(isinstance(value, str) for value in data):
        return tuple(str(value) for value in data)
    if all(isinstance(value, int) and not isinstance(value, bool) for value in data):
        return tuple(_check_integer(int(value), path) for value in data)
    raise InvalidInput(f"{path}: expected strings only or integers only, got {_show(list(data))}")


def _range(key: str, data: object, path: str) -> Range | DateRange:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{path}: expected an object of gt, gte, lt, lte, got {_show(data)}")
    for name in data:
        if name not in _BOUNDS:
            raise InvalidInput(
                f"{path}: unknown operator {_show(name)}; a range has gt, gte, lt and lte"
            )
    if not data:
        raise InvalidInput(f"{path}: expected at least one of gt, gte, lt, lte")
    numbers: dict[str, float] = {}
    dates: dict[str, datetime] = {}
    for name in _BOUNDS:
        if name in data:
            bound = _bound(data[name], f"{path}.{name}")
            if isinstance(bound, datetime):
                dates[name] = bound
            else:
                numbers[name] = bound
    if numbers and dates:
        raise InvalidInput(
            f"{path}: mixed number and date bounds (numbers: {', '.join(numbers)}; "
            f"dates: {', '.join(dates)}); use one kind"
        )
    if dates:
        return DateRange(key, **dates)
    return Range(key, **numbers)


def _bound(value: object, path: str) -> float | datetime:
    """A range bound: a finite number (integers within 64 bits) or an ISO-8601 date."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(_check_integer(value, path))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{path}: expected a finite number, got {_show(value)}")
        return value
    if isinstance(value, str) and (parsed := _parse_date(value)) is not None:
        return parsed
    raise InvalidInput(f"{path}: expected a number or an ISO-8601 date, got {_show(value)}")


def _parse_date(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _show(value: object) -> str:
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        return "an integer out of range"  # repr of 10**400 is 400 digits (and slow beyond)
    shown = repr(value)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."
