"""Tests of retrieval/terms.py: the per-collection term map."""

import pytest

from retrieval.errors import InvalidInput
from retrieval.terms import MAX_ENTRIES, TermMap
from retrieval.text import clean_query


def test_longest_term_wins() -> None:
    terms = TermMap({"期货": "futures", "期货交易": "futures trading", "交易所": "exchange"})
    assert terms.apply("期货交易所") == "futures trading所"
    assert terms.apply("期货公司") == "futures公司"


def test_replacements_are_not_scanned_again() -> None:
    terms = TermMap({"A": "B", "B": "C"})
    assert terms.apply("A") == "B"
    assert terms.apply("A B") == "B C"


def test_latin_terms_match_case_insensitively() -> None:
    terms = TermMap({"rag": "retrieval augmented generation"})
    assert terms.apply("What is RAG") == "What is retrieval augmented generation"
    assert terms.apply("Rag, rag") == (
        "retrieval augmented generation, retrieval augmented generation"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MAIL", "MAIL"),
        ("AIR AI2 2AI", "AIR AI2 2AI"),
        ("AI model", "artificial intelligence model"),
        ("(ai), AI.", "(artificial intelligence), artificial intelligence."),
        ("用AI做客服", "用artificial intelligence做客服"),
    ],
)
def test_latin_terms_match_on_word_boundaries_only(text: str, expected: str) -> None:
    assert TermMap({"AI": "artificial intelligence"}).apply(text) == expected


def test_cjk_terms_match_anywhere() -> None:
    terms = TermMap({"保证金": "margin"})
    assert terms.apply("CTP保证金怎么算") == "CTPmargin怎么算"


def test_mixed_term_needs_a_boundary_only_on_its_latin_side() -> None:
    terms = TermMap({"CTP保证金": "期货交易保证金"})
    assert terms.apply("CTP保证金怎么算") == "期货交易保证金怎么算"
    assert terms.apply("请问ctp保证金") == "请问期货交易保证金"
    assert terms.apply("XCTP保证金") == "XCTP保证金"


def test_full_width_keys_match_cleaned_queries() -> None:
    terms = TermMap({"ＣＴＰ\u3000保证金": "margin"})
    assert terms.as_dict() == {"CTP 保证金": "margin"}
    assert terms.apply(clean_query("ＣＴＰ　保证金？")) == "margin"


def test_empty_replacement_deletes_the_term() -> None:
    assert TermMap({"请问": ""}).apply("请问保证金") == "保证金"


def test_size_as_dict_and_truth() -> None:
    empty = TermMap({})
    assert not empty
    assert len(empty) == 0
    assert empty.apply("anything") == "anything"
    terms = TermMap({"a": "b", "c": "d"})
    assert terms
    assert len(terms) == 2
    assert terms.as_dict() == {"a": "b", "c": "d"}


def test_thousands_of_terms() -> None:
    terms = TermMap({f"term{index}": f"T{index}" for index in range(MAX_ENTRIES)})
    indexes = list(range(0, MAX_ENTRIES, 7)) * 3
    text = " ".join(f"term{index}" for index in indexes)
    assert terms.apply(text) == " ".join(f"T{index}" for index in indexes)
    # Longest match: "term1234" is not read as "term1" + "234".
    assert terms.apply("term1234 term12345") == "T1234 term12345"


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"": "x"}, "empty term"),
        ({" \u3000 ": "x"}, "empty term"),
        ({"\u200b": "x"}, "empty term"),
        ({"x" * 101: "y"}, "is 101 characters long; the limit is 100"),
        ({"x": "y" * 501}, "is 501 characters long; the limit is 500"),
        ({"AI": "one", "ａｉ": "two"}, "are the same term after cleaning"),
    ],
)
def test_invalid_maps_are_refused(terms: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TermMap(terms)


def test_too_many_entries_are_refused() -> None:
    with pytest.raises(InvalidInput, match="has 10001 entries; the limit is 10000"):
        TermMap({f"t{index}": "x" for index in range(MAX_ENTRIES + 1)})


def test_duplicates_with_the_same_replacement_are_accepted() -> None:
    terms = TermMap({"AI": "x", "ai": "x"})
    assert len(terms) == 1
    assert terms.apply("ai") == "x"
