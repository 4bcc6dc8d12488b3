"""Tests of retrieval/text.py: document, line and query cleaning."""

import pytest

from retrieval.text import clean_line, clean_query, clean_text


def test_zero_width_characters_and_bom_are_removed() -> None:
    assert clean_text("\ufeffhel\u200blo wo\u200c\u200drld\u2060") == "hello world"


def test_control_and_format_characters_are_removed() -> None:
    # NUL, BEL, DEL, a C1 control, soft hyphen (Cf), right-to-left mark (Cf).
    assert clean_text("a\x00b\x07c\x7fd\x9be\u00adf\u200fg") == "abcdefg"


def test_nfkc_turns_full_width_ascii_and_spaces_into_ascii() -> None:
    assert clean_text("ＡＢＣ　１２３！ｘｙｚ") == "ABC 123!xyz"
    assert clean_text("ﾃｽﾄ") == "テスト"


def test_whitespace_runs_collapse_and_line_breaks_survive() -> None:
    assert clean_text("  a \t  b\n\n   c \r\n d\u3000\u00a0e  ") == "a b\nc\nd e"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\r", "\x85", "\v", "\f"])
def test_line_separators_become_line_breaks(separator: str) -> None:
    assert clean_text(f"first{separator}second") == "first\nsecond"


def test_blank_and_invisible_only_texts_become_empty() -> None:
    assert clean_text(" \n\t\u200b\ufeff\x00 ") == ""
    assert clean_query(" \u3000？！。 ") == ""


def test_clean_text_is_idempotent() -> None:
    sample = " 他说：“好。”\u200b\n\n  Ｈｅｌｌｏ\u2028world…  "
    once = clean_text(sample)
    assert clean_text(once) == once


def test_clean_line_makes_every_whitespace_run_one_space() -> None:
    assert clean_line(" a\n\n b \u2029 c\t") == "a b c"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What is RAG?!", "What is RAG"),
        ("什么是期货？？", "什么是期货"),
        ("好的……", "好的"),
        ("保证金怎么算。", "保证金怎么算"),
        ("Hello, world ... ", "Hello, world"),
        ("ＲＡＧ是什么！", "RAG是什么"),
        ("a, b. c.", "a, b. c"),
        ("价格，保证金、手续费？", "价格,保证金、手续费"),
        ("pi is 3.14", "pi is 3.14"),
        ("line one\nline two.", "line one line two"),
    ],
)
def test_clean_query_strips_final_punctuation_and_keeps_inner(query: str, expected: str) -> None:
    assert clean_query(query) == expected
