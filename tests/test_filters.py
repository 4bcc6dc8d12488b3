"""parse_filter: the grammar it accepts, and the path and reason of every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from retrieval.errors import InvalidInput
from retrieval.filters import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    And,
    DateRange,
    Match,
    MatchAny,
    Not,
    Or,
    Range,
    parse_filter,
)

EN = {"key": "lang", "match": "en"}
FR = {"key": "lang", "match": "fr"}


FIELD_RULE = (
    "expected a metadata field name (letters, digits, '_', '-', and '.' between the parts of "
    "a nested field; at most 64)"
)
INTEGER_RULE = "integers in filters lie within -2^63..2^63-1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"key": "category", "match": "shoes"}, Match("category", "shoes")),
        ({"key": "year", "match": 2024}, Match("year", 2024)),
        ({"key": "price", "match": 9.5}, Match("price", 9.5)),
        ({"key": "public", "match": False}, Match("public", False)),
        ({"key": "category", "match": {"value": "shoes"}}, Match("category", "shoes")),
        ({"key": "tags", "any": ["a", "b"]}, MatchAny("tags", ("a", "b"))),
        ({"key": "year", "any": [2023, 2024]}, MatchAny("year", (2023, 2024))),
        ({"key": "tags", "match": {"any": ["a"]}}, MatchAny("tags", ("a",))),
        ({"key": "price", "range": {"gte": 10, "lt": 50}}, Range("price", gte=10.0, lt=50.0)),
        ({"key": "price", "range": {"gt": 0.5, "lte": 1}}, Range("price", gt=0.5, lte=1.0)),
        (
            {"key": "published", "range": {"gte": "2024-01-01T00:00:00Z"}},
            DateRange("published", gte=datetime(2024, 1, 1, tzinfo=UTC)),
        ),
        (
            {"key": "published", "range": {"gt": "2024-06-01T12:00:00+02:00", "lt": "2025-01-01"}},
            DateRange(
                "published",
                gt=datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=2))),
                lt=datetime(2025, 1, 1, tzinfo=UTC),
            ),
        ),
        ({"must": [EN]}, Match("lang", "en")),
        (
            {"must": [EN, {"key": "year", "match": 2024}]},
            And((Match("lang", "en"), Match("year", 2024))),
        ),
        ({"should": [EN, FR]}, Or((Match("lang", "en"), Match("lang", "fr")))),
        ({"must_not": [EN]}, Not(Match("lang", "en"))),
        ({"must_not": [EN, FR]}, Not(Or((Match("lang", "en"), Match("lang", "fr"))))),
        (
            {
                "must": [EN],
                "should": [{"key": "a", "match": 1}, {"key": "b", "match": 2}],
                "must_not": [FR],
            },
            And(
                (Match("lang", "en"), Or((Match("a", 1), Match("b", 2))), Not(Match("lang", "fr")))
            ),
        ),
        (
            {
                "should": [
                    {"must": [EN, {"key": "year", "range": {"lt": 2022}}]},
                    {"must_not": [FR]},
                ]
            },
            Or((And((Match("lang", "en"), Range("year", lt=2022.0))), Not(Match("lang", "fr")))),
        ),
        # The first API's shorthand: an AND of equalities; the empty object matches everything.
        ({"lang": "en"}, Match("lang", "en")),
        (
            {"lang": "en", "year": 2024, "public": True},
            And((Match("lang", "en"), Match("year", 2024), Match("public", True))),
        ),
        ({}, And(())),
    ],
)
def test_valid_filters(data: object, expected: object) -> None:
    assert parse_filter(data) == expected


def nested(depth: int) -> dict[str, object]:
    """A filter whose clause objects are nested `depth` deep, a condition at the bottom."""
    data: dict[str, object] = {"must": [EN]}
    for _ in range(depth - 1):
        data = {"must": [data]}
    return data


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert parse_filter(nested(MAX_FILTER_DEPTH)) == Match("lang", "en")


def test_conditions_up_to_the_limit_are_accepted() -> None:
    data = {"must": [{"key": f"f{i}", "match": i} for i in range(MAX_FILTER_CONDITIONS)]}
    parsed = parse_filter(data)
    assert isinstance(parsed, And)
    assert len(parsed.filters) == MAX_FILTER_CONDITIONS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("lang=en", "filter: expected an object, got 'lang=en'"),
        (
            {"must": [EN, {"key": "price", "range": {"gte": "ten"}}]},
            "filter.must[1].range.gte: expected a number or an ISO-8601 date, got 'ten'",
        ),
        (
            {"key": "price", "range": {"gte": True}},
            "filter.range.gte: expected a number or an ISO-8601 date, got True",
        ),
        (
            {"key": "price", "range": {"lt": None}},
            "filter.range.lt: expected a number or an ISO-8601 date, got None",
        ),
        (
            {"key": "price", "range": {"gte": float("inf")}},
            "filter.range.gte: expected a finite number, got inf",
        ),
        (
            {"key": "price", "range": {"gte": 1, "lt": "2024-01-01"}},
            "filter.range: mixed number and date bounds (numbers: gte; dates: lt); use one kind",
        ),
        ({"key": "price", "range": {}}, "filter.range: expected at least one of gt, gte, lt, lte"),
        (
            {"key": "price", "range": {"between": [1, 2]}},
            "filter.range: unknown operator 'between'; a range has gt, gte, lt and lte",
        ),
        (
            {"key": "price", "range": 10},
            "filter.range: expected an object of gt, gte, lt, lte, got 10",
        ),
        (
            {"key": "lang", "regex": "e.*"},
            "filter: unknown operator 'regex'; a condition has one of 'match', 'any' or 'range'",
        ),
        (
            {"key": "lang"},
            "filter: expected exactly one of 'match', 'any' or 'range' beside 'key', got 0",
        ),
        (
            {"key": "lang", "match": "en", "any": ["fr"]},
            "filter: expected exactly one of 'match', 'any' or 'range' beside 'key', got 2",
        ),
        ({"key": "", "match": "en"}, f"filter.key: {FIELD_RULE}, got ''"),
        ({"key": 3, "match": "en"}, f"filter.key: {FIELD_RULE}, got 3"),
        ({"key": "$where", "match": "1"}, f"filter.key: {FIELD_RULE}, got '$where'"),
        ({"key": "a\x00b", "match": "1"}, f"filter.key: {FIELD_RULE}, got 'a\\x00b'"),
        ({"key": "n", "match": 2**70}, f"filter.match: {INTEGER_RULE}"),
        ({"key": "n", "any": [1, 2**64]}, f"filter.any: {INTEGER_RULE}"),
        ({"key": "n", "range": {"gt": 10**400}}, f"filter.range.gt: {INTEGER_RULE}"),
        (
            {"key": "lang", "match": ["en"]},
            "filter.match: expected a string, number or boolean, got ['en']",
        ),
        (
            {"key": "lang", "match": None},
            "filter.match: expected a string, number or boolean, got None",
        ),
        (
            {"key": "price", "match": float("nan")},
            "filter.match: expected a finite number, got nan",
        ),
        (
            {"key": "lang", "match": {"text": "en"}},
            "filter.match: expected one of 'value' or 'any', got the keys ['text']",
        ),
        (
            {"key": "lang", "match": {"value": {}}},
            "filter.match.value: expected a string, number or boolean, got {}",
        ),
        (
            {"key": "tags", "any": "a"},
            "filter.any: expected a list of strings or integers, got 'a'",
        ),
        ({"key": "tags", "any": []}, "filter.any: expected at least one value, got an empty list"),
        (
            {"key": "tags", "any": ["a", 1]},
            "filter.any: expected strings only or integers only, got ['a', 1]",
        ),
        (
            {"key": "tags", "any": [True]},
            "filter.any: expected strings only or integers only, got [True]",
        ),
        (
            {"key": "tags", "any": [1.5]},
            "filter.any: expected strings only or integers only, got [1.5]",
        ),
        (
            {"key": "tags", "match": {"any": []}},
            "filter.match.any: expected at least one value, got an empty list",
        ),
        ({"must": []}, "filter.must: expected at least one condition, got an empty list"),
        ({"should": []}, "filter.should: expected at least one condition, got an empty list"),
        ({"must_not": []}, "filter.must_not: expected at least one condition, got an empty list"),
        ({"must": EN}, "filter.must: expected a list, got {'key': 'lang', 'match': 'en'}"),
        ({"should": "lang"}, "filter.should: expected a list, got 'lang'"),
        (
            {"must": [EN], "min_should": 1},
            "filter: unknown operator 'min_should'; a filter holds 'must', 'should' and 'must_not'",
        ),
        (
            {"must": [{"lang": "en"}]},
            "filter.must[0]: expected a condition with 'key' or a filter with 'must', 'should' or "
            "'must_not', got the keys ['lang']",
        ),
        ({"must": [EN, "en"]}, "filter.must[1]: expected an object, got 'en'"),
        (
            {"should": [EN, {"must_not": [{"key": "year", "range": {"gte": "x"}}]}]},
            "filter.should[1].must_not[0].range.gte: "
            "expected a number or an ISO-8601 date, got 'x'",
        ),
        (
            {"lang": ["en", "fr"]},
            "filter.lang: expected a string, number or boolean, got ['en', 'fr']",
        ),
        ({"lang": None}, "filter.lang: expected a string, number or boolean, got None"),
        (
            nested(MAX_FILTER_DEPTH + 1),
            "filter" + ".must[0]" * MAX_FILTER_DEPTH + ": filters are nested deeper than 5 levels "
            "(SEMSEARCH_LIMITS__MAX_FILTER_DEPTH)",
        ),
        (
            {"must": [{"key": f"f{i}", "match": i} for i in range(MAX_FILTER_CONDITIONS + 1)]},
            "filter.must[64]: a filter holds at most 64 conditions",
        ),
        (
            {f"f{i}": i for i in range(MAX_FILTER_CONDITIONS + 1)},
            "filter: a filter holds at most 64 conditions",
        ),
    ],
)
def test_invalid_filters_name_the_path_and_the_reason(data: object, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_filter(data)
    assert str(raised.value) == message


def test_the_root_path_can_be_named() -> None:
    with pytest.raises(InvalidInput, match=r"^body\.filter\.must: expected a list"):
        parse_filter({"must": 1}, path="body.filter")


def test_date_ranges_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DateRange("published", gte=datetime(2024, 1, 1))
