"""The lexical leg: tokens, stable ids, BM25 document and query vectors, coverage."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from retrieval import lexical
from retrieval.lexical import (
    DEFAULT_AVG_DOC_TOKENS,
    DEFAULT_CJK_STRATEGY,
    CjkStrategy,
    LexicalEncoder,
    token_id,
)
from retrieval.store.base import SparseVector
from retrieval.text import clean_query, clean_text

EMPTY = SparseVector(indices=(), values=())


@pytest.fixture(scope="module")
def encoder() -> LexicalEncoder:
    return LexicalEncoder()


def weight_of(vector: SparseVector, token: str) -> float:
    return vector.values[vector.indices.index(token_id(token))]


def test_english_words_are_lower_cased_stemmed_and_stop_words_dropped(
    encoder: LexicalEncoder,
) -> None:
    assert encoder.tokens("Running shoes for the kids") == ["run", "shoe", "kid"]
    assert encoder.tokens("He doesn't like it") == ["like"]
    assert encoder.encode_query("running shoes") == encoder.encode_query("run shoe")
    assert encoder.encode_document("RUNNING Shoes") == encoder.encode_document("running shoes")


def test_product_codes_match_with_or_without_their_joiner(encoder: LexicalEncoder) -> None:
    assert encoder.tokens("RTX-4090") == ["rtx", "4090", "rtx4090"]
    assert encoder.tokens("x200 mp3") == ["x200", "mp3"]
    assert encoder.tokens("usb-c e-mails") == ["usb", "c", "usbc", "e", "mail", "email"]
    for query in ("RTX 4090", "rtx4090", "RTX-4090"):
        assert encoder.query_coverage(query).of("the new RTX-4090 card") == 1.0


def test_numbers_are_kept_and_numeric_compounds_stay_whole(encoder: LexicalEncoder) -> None:
    assert encoder.tokens("version 2 costs 3.5 on 2024-01-05") == [
        "version",
        "2",
        "cost",
        "3.5",
        "2024-01-05",
    ]


def test_full_width_input_is_ascii_after_cleaning(encoder: LexicalEncoder) -> None:
    assert encoder.tokens(clean_query("ＲＴＸ－４０９０")) == encoder.tokens("rtx-4090")
    assert encoder.tokens(clean_text("额度，降低")) == ["额", "额度", "度", "降", "降低", "低"]


def test_bigrams_are_character_unigrams_and_bigrams_within_a_run() -> None:
    encoder = LexicalEncoder(cjk_strategy=CjkStrategy.BIGRAMS)
    assert encoder.tokens("额度") == ["额", "额度", "度"]
    assert encoder.tokens("贷") == ["贷"]
    # Punctuation ends a run: no bigram spans it.
    assert encoder.tokens("你好,世界") == ["你", "你好", "好", "世", "世界", "界"]
    assert encoder.tokens("カタカナ") == ["カ", "カタ", "タ", "タカ", "カ", "カナ", "ナ"]


def test_words_are_jieba_words() -> None:
    encoder = LexicalEncoder(cjk_strategy=CjkStrategy.WORDS)
    tokens = encoder.tokens("怎么更换绑定还款的卡")
    assert "".join(tokens) == "怎么更换绑定还款的卡"
    assert {"怎么", "更换", "绑定", "还款"} <= set(tokens)
    assert "换绑" not in tokens


def test_both_adds_the_words_to_the_ngrams() -> None:
    text = "中华人民共和国的额度"
    both = LexicalEncoder(cjk_strategy=CjkStrategy.BOTH).tokens(text)
    bigrams = LexicalEncoder(cjk_strategy=CjkStrategy.BIGRAMS).tokens(text)
    words = LexicalEncoder(cjk_strategy=CjkStrategy.WORDS).tokens(text)
    assert both == bigrams + words
    assert "中华人民共和国" in both


def test_mixed_text_splits_scripts(encoder: LexicalEncoder) -> None:
    assert encoder.tokens("iPhone15手机 Prices") == ["iphone15", "手", "手机", "机", "price"]


def test_default_strategy_and_string_values() -> None:
    assert DEFAULT_CJK_STRATEGY is CjkStrategy.BIGRAMS
    assert LexicalEncoder(cjk_strategy=CjkStrategy("words")).cjk_strategy is CjkStrategy.WORDS


def test_token_ids_are_stable_non_negative_int32() -> None:
    # Computed once; a change here re-keys every stored sparse vector.
    assert token_id("shoe") == 1757513937
    assert token_id("额度") == 293881455
    assert LexicalEncoder.token_id("shoe") == token_id("shoe")
    for token in ("", "a", "rtx4090", "中华人民共和国", "x" * 1000):
        assert 0 <= token_id(token) < 2**31


def test_document_values_are_bm25_term_frequency_parts() -> None:
    encoder = LexicalEncoder(k1=1.2, b=0.75, avg_doc_tokens=4)
    vector = encoder.encode_document("shoe shoe lace boot")
    length_norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4)
    assert weight_of(vector, "shoe") == pytest.approx(2 * 2.2 / (2 + length_norm))
    assert weight_of(vector, "lace") == pytest.approx(1 * 2.2 / (1 + length_norm))
    assert DEFAULT_AVG_DOC_TOKENS == 200.0


def test_document_values_grow_with_tf_and_saturate(encoder: LexicalEncoder) -> None:
    weights = [
        weight_of(encoder.encode_document(" ".join(["shoe"] * tf + ["lace"] * (8 - tf))), "shoe")
        for tf in range(1, 8)
    ]
    assert weights == sorted(weights)
    assert len(set(weights)) == len(weights)
    assert all(weight < encoder.k1 + 1 for weight in weights)


def test_longer_documents_weigh_a_token_less() -> None:
    encoder = LexicalEncoder(avg_doc_tokens=10)
    short = weight_of(encoder.encode_document("shoe lace"), "shoe")
    long = weight_of(encoder.encode_document("shoe " + "lace boot sock " * 10), "shoe")
    assert short > long
    flat = LexicalEncoder(b=0.0, avg_doc_tokens=10)
    assert weight_of(flat.encode_document("shoe lace"), "shoe") == pytest.approx(
        weight_of(flat.encode_document("shoe " + "lace boot sock " * 10), "shoe")
    )


def test_query_weights_are_one_per_distinct_token(encoder: LexicalEncoder) -> None:
    vector = encoder.encode_query("cheap shoes, cheap shoe")
    assert sorted(vector.indices) == sorted([token_id("cheap"), token_id("shoe")])
    assert vector.values == (1.0, 1.0)


def test_indices_are_unique_and_ascending(encoder: LexicalEncoder) -> None:
    text = "The RTX-4090 x200 额度怎么降低 微粒贷额度 running shoes 3.5 GHz 中华人民共和国 " * 3
    for vector in (encoder.encode_document(text), encoder.encode_query(text)):
        assert list(vector.indices) == sorted(set(vector.indices))
        assert len(vector.values) == len(vector.indices)
        assert all(value > 0 for value in vector.values)


def test_colliding_ids_are_merged_by_summing(
    encoder: LexicalEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    separate = encoder.encode_document("shoe lace")
    monkeypatch.setattr(lexical, "token_id", lambda token: 7)
    merged = encoder.encode_document("shoe lace")
    assert merged.indices == (7,)
    assert merged.values[0] == pytest.approx(sum(separate.values))
    assert encoder.encode_query("shoe lace") == SparseVector(indices=(7,), values=(2.0,))


@pytest.mark.parametrize("text", ["", "   ", "the of and", "!!! ,,, ...", "。？！"])
def test_empty_input_gives_empty_vectors(encoder: LexicalEncoder, text: str) -> None:
    assert encoder.tokens(text) == []
    assert encoder.encode_document(text) == EMPTY
    assert encoder.encode_query(text) == EMPTY
    assert encoder.query_coverage(text).of("shoes") == 0.0


def test_coverage_is_the_share_of_query_tokens_in_the_document(encoder: LexicalEncoder) -> None:
    assert encoder.query_coverage("running shoes").of("I run in my old shoes") == 1.0
    assert encoder.query_coverage("red shoes").of("blue shoes") == 0.5
    assert encoder.query_coverage("red shoes").of("a green hat") == 0.0
    assert encoder.query_coverage("shoes").of("") == 0.0
    partial = encoder.query_coverage("怎么更换还款银行卡").of("还款卡怎么换")
    assert 0.0 < partial < 1.0


def test_coverage_is_bounded(encoder: LexicalEncoder) -> None:
    texts = ["", "shoes", "the shoes shoes", "额度怎么降低", "RTX-4090 额度", "a b c"]
    for query in texts:
        for document in texts:
            assert 0.0 <= encoder.query_coverage(query).of(document) <= 1.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"k1": -0.1}, "k1"),
        ({"b": 1.5}, "b must"),
        ({"avg_doc_tokens": 0}, "avg_doc_tokens"),
    ],
)
def test_invalid_parameters_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LexicalEncoder(**arguments)  # type: ignore[arg-type]


def test_jieba_loads_quietly_once(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(lexical, "_jieba_tokenizer", None)
    encoder = LexicalEncoder(cjk_strategy=CjkStrategy.WORDS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(encoder.tokens, ["还款银行怎么更换"] * 8))
    assert all(result == results[0] for result in results)
    assert capfd.readouterr().err == ""


def test_encoding_is_thread_safe(encoder: LexicalEncoder) -> None:
    texts = [f"running shoes {i} jumping foxes generously 额度怎么降低" for i in range(200)]
    expected = [encoder.encode_document(text) for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(encoder.encode_document, texts)) == expected
