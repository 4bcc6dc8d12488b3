"""Which CJK tokenisation should the BM25 leg use? Recall@10 and MRR@10 on BQ and ATEC.

For each set: the label-1 pairs; every distinct sentence2 is a document; every distinct
sentence1 is a query whose relevant documents are the sentence2s it is paired with (in BQ one
question often has several). Scores are BM25 exactly as Qdrant computes them with the IDF
modifier: document values from LexicalEncoder.encode_document, query values from encode_query,
IDF = ln(1 + (N - n + 0.5) / (n + 0.5)), score = sum over shared ids of idf * q * d. Documents
scoring 0 are not retrieved.

    python benchmarks/zh_tokenization.py                 # the full sets
    python benchmarks/zh_tokenization.py --limit 500     # a sample of 500 pairs per set
    python benchmarks/zh_tokenization.py --distractors   # every distinct sentence2 indexed
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.lexical import (
    DEFAULT_AVG_DOC_TOKENS,
    DEFAULT_CJK_STRATEGY,
    CjkStrategy,
    LexicalEncoder,
)
from retrieval.store.base import SparseVector
from retrieval.text import clean_query, clean_text

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "zh-pairs"
SETS = ("bq", "atec")
TOP_K = 10
QUERY_BATCH = 512


@dataclass(frozen=True)
class RetrievalTask:
    name: str
    pairs: int
    documents: list[str]
    queries: list[str]
    relevant: list[frozenset[int]]
    """Per query, the indices of its relevant documents."""


@dataclass(frozen=True)
class Result:
    task: RetrievalTask
    strategy: CjkStrategy
    recall_at_10: float
    mrr_at_10: float
    tokens_per_document: float
    encode_s: float
    search_s: float


def load_task(path: Path, *, limit: int | None, distractors: bool, seed: int) -> RetrievalTask:
    """The label-1 pairs of one TSV as documents, queries and relevance judgements."""
    with path.open(encoding="utf-8", newline="\n") as file:
        lines = file.read().split("\n")
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line]
    if header != ["sentence1", "sentence2", "label"]:
        raise SystemExit(f"{path}: unexpected header {header}")
    positives = [(s1, s2) for s1, s2, label in rows if label == "1"]
    if limit is not None and limit < len(positives):
        positives = random.Random(seed).sample(positives, limit)
    document_texts = [s2 for _, s2 in positives]
    if distractors:
        document_texts += [s2 for _, s2, _ in rows]
    document_index: dict[str, int] = {}
    for text in document_texts:
        document_index.setdefault(text, len(document_index))
    relevant: dict[str, set[int]] = defaultdict(set)
    for s1, s2 in positives:
        relevant[s1].add(document_index[s2])
    return RetrievalTask(
        name=path.stem.upper(),
        pairs=len(positives),
        documents=list(document_index),
        queries=list(relevant),
        relevant=[frozenset(documents) for documents in relevant.values()],
    )


def _matrix(
    vectors: Sequence[SparseVector], columns: dict[int, int], *, grow: bool
) -> sparse.csr_matrix:
    """Rows of sparse vectors, token ids mapped to columns (new ids added only when grow)."""
    indptr, indices, data = [0], [], []
    for vector in vectors:
        for token, value in zip(vector.indices, vector.values, strict=True):
            column = columns.get(token)
            if column is None:
                if not grow:
                    continue
                column = columns[token] = len(columns)
            indices.append(column)
            data.append(value)
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(vectors), len(columns)),
    )


def evaluate(task: RetrievalTask, encoder: LexicalEncoder) -> Result:
    started = time.perf_counter()
    document_texts = [clean_text(text) for text in task.documents]
    documents = encoder.encode_documents(document_texts)
    queries = [encoder.encode_query(clean_query(text)) for text in task.queries]
    encode_s = time.perf_counter() - started
    tokens_per_document = sum(len(encoder.tokens(t)) for t in document_texts) / len(documents)

    started = time.perf_counter()
    columns: dict[int, int] = {}
    document_matrix = _matrix(documents, columns, grow=True).tocsc()
    query_matrix = _matrix(queries, columns, grow=False)
    n = len(documents)
    document_frequency = np.diff(document_matrix.indptr)
    idf = np.log1p((n - document_frequency + 0.5) / (document_frequency + 0.5))
    weighted_documents = (document_matrix @ sparse.diags(idf)).T.tocsr()

    reciprocal_ranks, recalls = [], []
    for start in range(0, len(queries), QUERY_BATCH):
        scores = (query_matrix[start : start + QUERY_BATCH] @ weighted_documents).toarray()
        for offset, row in enumerate(scores):
            relevant = task.relevant[start + offset]
            candidates = np.argpartition(-row, min(TOP_K, n - 1))[:TOP_K]
            # Ties broken by document order, so every strategy is ranked the same way.
            ranked = sorted((-row[d], d) for d in candidates if row[d] > 0)[:TOP_K]
            hits = [rank for rank, (_, d) in enumerate(ranked, start=1) if d in relevant]
            reciprocal_ranks.append(1.0 / hits[0] if hits else 0.0)
            recalls.append(len(hits) / len(relevant))
    search_s = time.perf_counter() - started
    return Result(
        task=task,
        strategy=encoder.cjk_strategy,
        recall_at_10=float(np.mean(recalls)),
        mrr_at_10=float(np.mean(reciprocal_ranks)),
        tokens_per_document=tokens_per_document,
        encode_s=encode_s,
        search_s=search_s,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="bq.tsv, atec.tsv")
    parser.add_argument("--limit", type=int, default=None, help="sample N label-1 pairs per set")
    parser.add_argument("--seed", type=int, default=0, help="the sample's random seed")
    parser.add_argument(
        "--distractors",
        action="store_true",
        help="index every distinct sentence2 of the file, label 0 rows included",
    )
    parser.add_argument(
        "--avg-doc-tokens",
        type=float,
        default=DEFAULT_AVG_DOC_TOKENS,
        help=f"BM25's fixed average document length (default {DEFAULT_AVG_DOC_TOKENS:g})",
    )
    arguments = parser.parse_args(argv)

    console = Console(width=140)
    encoders = [
        LexicalEncoder(cjk_strategy=strategy, avg_doc_tokens=arguments.avg_doc_tokens)
        for strategy in CjkStrategy
    ]
    encoders[0].tokens("预热")  # load jieba's dictionary outside the timings

    table = Table(title=f"BM25 (Qdrant's formula), avg_doc_tokens={arguments.avg_doc_tokens:g}")
    for column in ("set", "pairs", "queries", "docs", "strategy"):
        table.add_column(column)
    for column in ("Recall@10", "MRR@10", "tokens/doc", "encode s", "search s"):
        table.add_column(column, justify="right")
    for name in SETS:
        task = load_task(
            arguments.data_dir / f"{name}.tsv",
            limit=arguments.limit,
            distractors=arguments.distractors,
            seed=arguments.seed,
        )
        for encoder in encoders:
            result = evaluate(task, encoder)
            marker = " (default)" if result.strategy is DEFAULT_CJK_STRATEGY else ""
            table.add_row(
                task.name,
                str(task.pairs),
                str(len(task.queries)),
                str(len(task.documents)),
                result.strategy.name + marker,
                f"{result.recall_at_10:.3f}",
                f"{result.mrr_at_10:.3f}",
                f"{result.tokens_per_document:.1f}",
                f"{result.encode_s:.2f}",
                f"{result.search_s:.2f}",
            )
        table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
