"""The lexical leg: semsearch's own tokeniser and BM25 sparse vectors for Qdrant.

all-MiniLM-L6-v2 reads English only (most CJK characters become [UNK]), so each chunk also gets
a BM25 sparse vector. Qdrant stores it as a named sparse vector with the IDF modifier and
computes IDF = ln(1 + (N - n + 0.5) / (n + 0.5)) itself at query time; the document values
made here carry only the term-frequency part, tf * (k1 + 1) / (tf + k1 * (1 - b + b * len /
avg)). The tokeniser is ours, not Qdrant's, so both engines (Edge and server) see identical
tokens.

Tokens (the input is text cleaned by retrieval.text: NFKC has made full-width forms ASCII):

- CJK runs (Han ideographs, hiragana, katakana) are cut by the `CjkStrategy`: jieba words,
  character unigrams + bigrams, or both.
- Other letters and digits form words: lower-cased, English stop words dropped, Snowball
  English stemming ("running shoes" -> "run", "shoe"). Digits are kept ("4090").
- Compounds joined by "-", "_", ".", "/" ("RTX-4090", "usb-c", "e-mail") give their parts and
  the parts run together ("rtx", "4090", "rtx4090"), so "RTX 4090", "RTX-4090" and "RTX4090"
  all match one another. Codes without a joiner ("x200", "mp3") stay one token. A compound of
  digits only ("3.5", "2024-01-05", "10.0.0.1") is a number, date or address and stays whole.

Chinese strategy, measured with: python benchmarks/zh_tokenization.py (BQ and ATEC label-1
pairs: each distinct sentence2 a document, each distinct sentence1 a query whose relevant
documents are its sentence2s; BM25 scored exactly as Qdrant does; avg_doc_tokens=200; 2 cores)

    set   queries  docs  strategy  Recall@10  MRR@10  tokens/doc  encode s
    BQ    2463     2453  WORDS     0.270      0.150    6.3        0.53
                         BIGRAMS   0.324      0.178   19.9        0.30
                         BOTH      0.324      0.178   26.0        0.77
    ATEC  3684     3684  WORDS     0.451      0.227    8.1        1.26
                         BIGRAMS   0.538      0.264   23.4        0.24
                         BOTH      0.537      0.266   31.6        1.41

WORDS alone is clearly worst (probably: jieba cuts a question and its paraphrase differently).
BOTH and BIGRAMS are level: across these two sets, with and without every sentence2 indexed as
distractors (--distractors), BOTH minus BIGRAMS is -0.001 to +0.006 Recall@10 and 0.000 to
+0.002 MRR@10, about 1 % relative.

BIGRAMS is the default (DEFAULT_CJK_STRATEGY) because that gain does not pay for jieba: about
5 times the encode time on Chinese (0.8-1.5 ms against 0.15-0.3 ms for a 200-character chunk;
150 words of English take about 0.3 ms either way), 2 s and 60 MB per process to load the
dictionary, and tokens that depend on jieba's dictionary, so that a jieba upgrade could change
the tokens of new queries against stored vectors. Bigrams need no dictionary and never change.

Ids: `token_id` is the first 31 bits of the token's UTF-8 blake2b digest: stable across
processes, machines and versions, non-negative and int32-safe. Tokens whose ids collide are
merged by summing their weights.

jieba (WORDS and BOTH only): one private `jieba.Tokenizer` per process, built on first use
under a lock (about 2 s and 60 MB for its prefix dictionary; BIGRAMS never loads it), with
jieba's logger set to WARNING so it prints nothing on the way. jieba caches the parsed
dictionary (9 MB, marshal) in a file in the system temp dir, here named for the jieba version so
that an upgrade does not read a stale cache; if the temp dir is not writable jieba logs one
error and rebuilds the dictionary at each start.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
import tempfile
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import Stemmer
from cachetools import LRUCache

from retrieval.store.base import SparseVector

# jieba 0.42's source holds invalid escape sequences ("\." in plain strings): compiling it
# without a .pyc warns (DeprecationWarning on 3.11, SyntaxWarning on 3.12+), and with
# setuptools < 81 installed it imports pkg_resources, which warns that it is deprecated. Under
# warnings-as-errors (pytest here) either would make the import fail, so they are silenced for
# this one import only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=UserWarning)
    import jieba

__all__ = [
    "DEFAULT_AVG_DOC_TOKENS",
    "DEFAULT_CJK_STRATEGY",
    "ENGLISH_STOP_WORDS",
    "CjkStrategy",
    "LexicalEncoder",
    "token_id",
]


class CjkStrategy(enum.StrEnum):
    """How a run of CJK characters becomes tokens."""

    WORDS = "words"
    """jieba's words (precise mode, HMM for unknown words): "微粒贷额度" -> 微粒, 贷, 额度."""
    BIGRAMS = "bigrams"
    """Character unigrams and bigrams: "额度" -> 额, 额度, 度. Needs no dictionary."""
    BOTH = "both"
    """The unigrams and bigrams, plus jieba's words. A one- or two-character word is then also
    one of the n-grams and counts twice, a small boost for dictionary words that measured
    slightly better than adding only the longer words."""


DEFAULT_CJK_STRATEGY = CjkStrategy.BIGRAMS

DEFAULT_AVG_DOC_TOKENS = 200.0
"""The average document length in tokens that BM25's length normalisation assumes.

A sharded store cannot know its corpus average, so it is fixed, as in Qdrant's own BM25
inference. A chunk of about 200 word pieces gives about 110 tokens of English (150 words less
stop words, plus compound parts; measured on SciFact) and about 320 of Chinese under BIGRAMS
(about 170 characters, each a unigram and most a bigram; measured on BQ): 200, one token per
word piece, sits between them (their geometric mean is 190). Collections of short texts (FAQ
questions of about 20 tokens) rank better with a value near their own length: on BQ and ATEC
20 instead of 200 adds about 0.015 Recall@10.
"""

ENGLISH_STOP_WORDS = frozenset(
    {
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "ain",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "couldn",
        "d",
        "did",
        "didn",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "hadn",
        "has",
        "hasn",
        "have",
        "haven",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "itself",
        "just",
        "ll",
        "m",
        "ma",
        "me",
        "mightn",
        "more",
        "most",
        "mustn",
        "my",
        "myself",
        "needn",
        "no",
        "nor",
        "not",
        "now",
        "o",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "re",
        "s",
        "same",
        "shan",
        "she",
        "should",
        "shouldn",
        "so",
        "some",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "ve",
        "very",
        "was",
        "wasn",
        "we",
        "were",
        "weren",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "won",
        "wouldn",
        "y",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    }
)
"""NLTK's English stop words (the list Qdrant's BM25 uses), matched before stemming.

Apostrophes split words, so "don't" arrives as "don" and "t", both in the list; NLTK's forms
with an apostrophe are left out, as they never arrive.
"""

# Han ideographs (extension A, the unified block, compatibility ideographs, extensions B and
# later), hiragana and katakana. jieba segments Han; kana come through it as single characters.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_WORD_CHAR = rf"[^\W_{_CJK}]"
_JOINERS = "-_./"
_TOKEN_PATTERN = re.compile(
    rf"(?P<cjk>[{_CJK}]+)|(?P<word>{_WORD_CHAR}+(?:[{re.escape(_JOINERS)}]{_WORD_CHAR}+)*)"
)
_JOINER_PATTERN = re.compile(rf"[{re.escape(_JOINERS)}]")

_ID_MASK = 0x7FFF_FFFF


@lru_cache(maxsize=1 << 16)
def token_id(token: str) -> int:
    """The token's sparse-vector index: the first 31 bits of blake2b(UTF-8), stable everywhere.

    Non-negative and below 2**31, so an int32 or uint32 index holds it.
    """
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


_jieba_lock = threading.Lock()
_jieba_tokenizer: jieba.Tokenizer | None = None


def _jieba() -> jieba.Tokenizer:
    """The process's jieba tokenizer, with its dictionary loaded: built once, quietly."""
    global _jieba_tokenizer  # noqa: PLW0603 - a lazily built, process-wide read-only resource
    tokenizer = _jieba_tokenizer
    if tokenizer is not None:
        return tokenizer
    with _jieba_lock:
        if _jieba_tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.cache_file = str(
                Path(tempfile.gettempdir()) / f"semsearch-jieba-{jieba.__version__}.cache"
            )
            tokenizer.initialize()
            _jieba_tokenizer = tokenizer
        return _jieba_tokenizer


def _character_ngrams(run: str) -> Iterator[str]:
    """Unigrams and bigrams of a CJK run, in text order: "额度" -> 额, 额度, 度."""
    last = len(run) - 1
    for i, char in enumerate(run):
        yield char
        if i < last:
            yield run[i : i + 2]


TOKEN_SETS_KEPT = 8192
"""Hit texts whose token sets are kept (a few KiB each at most)."""


class LexicalEncoder:
    """Texts to BM25 sparse vectors: the tokeniser, the document and query weights, coverage.

    Safe to share between threads (the stemmer, which is not, is kept per thread).
    """

    def __init__(
        self,
        *,
        cjk_strategy: CjkStrategy = DEFAULT_CJK_STRATEGY,
        k1: float = 1.2,
        b: float = 0.75,
        avg_doc_tokens: float = DEFAULT_AVG_DOC_TOKENS,
    ) -> None:
        if k1 < 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be between 0 and 1, got {b}")
        if avg_doc_tokens <= 0:
            raise ValueError(f"avg_doc_tokens must be > 0, got {avg_doc_tokens}")
        self.cjk_strategy = CjkStrategy(cjk_strategy)
        self.k1 = k1
        self.b = b
        self.avg_doc_tokens = avg_doc_tokens
        self._per_thread = threading.local()
        self._token_sets: LRUCache[str, frozenset[str]] = LRUCache(maxsize=TOKEN_SETS_KEPT)
        self._token_sets_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LexicalEncoder(cjk_strategy={self.cjk_strategy.name}, k1={self.k1}, b={self.b}, "
            f"avg_doc_tokens={self.avg_doc_tokens})"
        )

    @staticmethod
    def token_id(token: str) -> int:
        """The stable sparse-vector index of a token (see the module function `token_id`)."""
        return token_id(token)

    def token_set(self, text: str) -> frozenset[str]:
        """The text's distinct tokens, remembered for the TOKEN_SETS_KEPT texts last asked:
        every search scores its hits' texts, and the same chunks come back again and again."""
        with self._token_sets_lock:
            kept = self._token_sets.get(text)
        if kept is None:
            kept = frozenset(self.tokens(text))
            with self._token_sets_lock:
                self._token_sets[text] = kept
        return kept

    def tokens(self, text: str) -> list[str]:
        """The text's tokens in text order, repeats kept (BM25 counts them)."""
        stem = self._stemmer().stemWord
        tokens: list[str] = []
        for match in _TOKEN_PATTERN.finditer(text):
            run = match.group("cjk")
            if run is not None:
                tokens.extend(self._cjk_tokens(run))
                continue
            word = match.group().lower()
            if not _JOINER_PATTERN.search(word):
                if word not in ENGLISH_STOP_WORDS:
                    tokens.append(word if word.isdigit() else stem(word))
                continue
            parts = _JOINER_PATTERN.split(word)
            if all(part.isdigit() for part in parts):
                tokens.append(word)
                continue
            tokens.extend(
                part if part.isdigit() else stem(part)
                for part in parts
                if part not in ENGLISH_STOP_WORDS
            )
            tokens.append(stem("".join(parts)))
        return tokens

    def encode_document(self, text: str) -> SparseVector:
        """The BM25 term-frequency part per distinct token: tf*(k1+1) / (tf + k1*(1-b+b*len/avg)).

        len is the text's token count; Qdrant multiplies in the IDF at query time.
        """
        tokens = self.tokens(text)
        if not tokens:
            return SparseVector(indices=(), values=())
        length_norm = self.k1 * (1.0 - self.b + self.b * len(tokens) / self.avg_doc_tokens)
        numerator = self.k1 + 1.0
        weights: dict[int, float] = {}
        for token, tf in Counter(tokens).items():
            index = token_id(token)
            weights[index] = weights.get(index, 0.0) + tf * numerator / (tf + length_norm)
        return _sparse_vector(weights)

    def encode_documents(self, texts: Iterable[str]) -> list[SparseVector]:
        """encode_document for each text, in order."""
        return [self.encode_document(text) for text in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1.0 for each distinct query token, as Qdrant's own BM25 query does.

        A repeated query word ("very very cheap") is not counted twice: short queries repeat
        words by accident more often than for emphasis, and under BOTH a two-character Chinese
        word already appears as its bigram and as its characters.
        """
        weights: dict[int, float] = {}
        for token in set(self.tokens(text)):
            index = token_id(token)
            weights[index] = weights.get(index, 0.0) + 1.0
        return _sparse_vector(weights)

    def query_coverage(self, query_text: str) -> QueryCoverage:
        """Measures how much of this query documents contain (see `QueryCoverage`)."""
        tokens = frozenset(self.tokens(query_text))
        return QueryCoverage(
            tokens=tokens, token_ids=frozenset(map(token_id, tokens)), encoder=self
        )

    def _cjk_tokens(self, run: str) -> Iterable[str]:
        strategy = self.cjk_strategy
        if strategy is CjkStrategy.BIGRAMS:
            return _character_ngrams(run)
        words = _jieba().cut(run, HMM=True)
        if strategy is CjkStrategy.WORDS:
            return list(words)
        return [*_character_ngrams(run), *words]

    def _stemmer(self) -> Stemmer.Stemmer:
        # PyStemmer's objects are not thread-safe; search runs in a thread pool.
        stemmer: Stemmer.Stemmer | None = getattr(self._per_thread, "stemmer", None)
        if stemmer is None:
            stemmer = Stemmer.Stemmer("english")
            self._per_thread.stemmer = stemmer
        return stemmer


def _sparse_vector(weights: dict[int, float]) -> SparseVector:
    indices = tuple(sorted(weights))
    return SparseVector(indices=indices, values=tuple(weights[index] for index in indices))


@dataclass(frozen=True, slots=True)
class QueryCoverage:
    """The share of a query's distinct tokens that occur in a document, in [0, 1].

    A bounded lexical similarity that, unlike a BM25 score, means the same in every
    collection, so the search layer can threshold on it where dense scores are noise (Chinese
    text under an English model). 1.0: every query token is in the document; 0.0: none is,
    or the query has no tokens. With the n-gram strategies a Chinese query's characters and
    bigrams count, so near-paraphrases score partial coverage. The query is tokenised once,
    each document as it comes.
    """

    tokens: frozenset[str]
    token_ids: frozenset[int]
    """The tokens' ids, as a lexical vector's indices hold them."""
    encoder: LexicalEncoder

    def of(self, document_text: str) -> float:
        if not self.tokens:
            return 0.0
        found = self.tokens.intersection(self.encoder.token_set(document_text))
        return len(found) / len(self.tokens)

    def of_token_ids(self, document_token_ids: frozenset[int]) -> float:
        """The same share, read from the indices of the document's lexical vector (its
        distinct token ids) instead of its text."""
        if not self.token_ids:
            return 0.0
        return len(self.token_ids.intersection(document_token_ids)) / len(self.token_ids)
