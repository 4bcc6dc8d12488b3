"""The running service under load: concurrent searches and small ingests, nothing lost.

By default the benchmark starts `semsearch serve` as a child process on a free port of
127.0.0.1 with a fresh temporary data directory (``SEMSEARCH_DATA_DIR``) and
``OMP_WAIT_POLICY=PASSIVE``; ``--url`` uses a service that already runs instead. It waits for
``GET /health/ready``, creates a collection, seeds it with real text (BANKING77 questions, or
SciFact abstracts with ``--data scifact``) through ``POST /collections/{name}/documents``, then
drives it with simulated clients, each its own ``httpx.AsyncClient`` sending one request after
another without pause (a closed loop):

- 95% searches (``POST /collections/{name}/search``, a BANKING77 test question or a SciFact
  query picked at random);
- 5% small ingests: 1-3 short documents with ids never used before, answered 202 with a job
  (``--ingest-share``; 0 sends searches only).

A warm-up at the highest level (``--warmup`` s) comes first, then each level of ``--clients``
(default 1, 8, 32, 64) runs for ``--duration`` s; clients start no request after that and the
level ends when their last answer is in. Between levels the ingest jobs are waited for, so each
level starts with an idle ingestion thread. Per level: throughput (2xx answers per second) and
its ratio to the 1-client level (the lowest level when 1 is not run), p50 / p95 / p99 latency
of the 2xx answers, errors (any other status or a transport error, with the counts per status)
and "shed" (429 and 503: the service's backpressure, counted apart from the errors).

At the end every job is waited for and every ingested document checked: ``GET
/collections/{name}/documents/{id}`` must say ``indexed``, a search filtered on the document's
own ``load_id`` must return it, and the collection's ``document_count`` must equal the seeded
plus the ingested documents. Documents that fail any of these are lost. The server process's
RSS is sampled every 0.5 s (psutil when installed, else ``VmRSS`` of /proc/<pid>/status): at
start (ready, no model loaded), after the warm-up, its peak and at the end; end / after warm-up
is the figure to watch for leaks (target: within 5%). With ``--url`` the RSS needs
``--server-pid``.

The exit status is 1 when a level had errors, a document was lost or the document count does
not match; shed requests alone do not fail the run.

    python benchmarks/load.py                                 # 1, 8, 32, 64 clients, 60 s each
    python benchmarks/load.py --duration 3 --clients 1,8      # a smoke run
    python benchmarks/load.py --url http://127.0.0.1:8000 --api-key KEY --server-pid 1234

The data is read from ../shared/data (next to the repository); without it the benchmark says so
and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BANKING77 = DATA_DIR / "banking77"
SCIFACT = DATA_DIR / "scifact"

INGEST_SHARE = 0.05
"""Share of requests that ingest; the others search."""
SHED_STATUSES = frozenset({429, 503})
"""Answers that are the service's backpressure: counted as shed, not as errors."""
RSS_INTERVAL_S = 0.5
SEED_BATCH = 250
SEED_TIMEOUT_S = 900.0
"""Documents per seeding request."""
SHORT_DOCUMENT_CHARS = 300
"""SciFact abstracts are cut to this many characters for the small ingests."""
DEFAULT_SEED_DOCS = {"banking77": 1000, "scifact": 200}
READY_TIMEOUT_S = 180.0
MAX_BACKOFF_S = 5.0
"""A shed answer's Retry-After is honoured up to this many seconds (1 s without one)."""
VERIFY_CONCURRENCY = 8


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True, slots=True)
class Texts:
    seed: list[tuple[str, str | None]]
    """(text, title) of the documents the collection starts with."""
    ingest: list[str]
    """Short texts for the small ingests, none of them seeded."""
    queries: list[str]


def banking77_texts(seed_docs: int, seed: int) -> Texts:
    def read(split: str) -> list[str]:
        with (BANKING77 / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
            return [row["text"] for row in csv.DictReader(handle)]

    train = read("train")
    random.Random(seed).shuffle(train)
    return Texts(
        seed=[(text, None) for text in train[:seed_docs]],
        ingest=train[seed_docs:],
        queries=read("test"),
    )


def scifact_texts(seed_docs: int, seed: int) -> Texts:
    def read(name: str) -> list[dict[str, Any]]:
        with (SCIFACT / name).open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    corpus = read("corpus.jsonl")
    random.Random(seed).shuffle(corpus)
    return Texts(
        seed=[
            (str(row["text"]), str(row.get("title") or "") or None) for row in corpus[:seed_docs]
        ],
        ingest=[str(row["text"])[:SHORT_DOCUMENT_CHARS] for row in corpus[seed_docs:]],
        queries=[str(row["text"]) for row in read("queries.jsonl")],
    )


LOADERS: dict[str, tuple[Path, Callable[[int, int], Texts]]] = {
    "banking77": (BANKING77 / "train.csv", banking77_texts),
    "scifact": (SCIFACT / "corpus.jsonl", scifact_texts),
}


# ------------------------------------------------------------------------------ RSS


def proc_status_rss(pid: int) -> int | None:
    """VmRSS of /proc/<pid>/status in bytes; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def rss_reader(pid: int) -> tuple[Callable[[], int | None], str]:
    """A function that reads the process's RSS in bytes, and what it reads it with."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return (lambda: proc_status_rss(pid)), "/proc VmRSS"
    process = psutil.Process(pid)

    def read() -> int | None:
        try:
            return int(process.memory_info().rss)
        except psutil.Error:
            return None

    return read, "psutil"


class RssSampler:
    """Samples a process's RSS every `RSS_INTERVAL_S` in a daemon thread."""

    def __init__(self, pid: int) -> None:
        self._read, self.method = rss_reader(pid)
        self._samples: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL_S):
            self.sample()

    def sample(self) -> int | None:
        """Read the RSS now (and keep it); None when the process is gone."""
        value = self._read()
        if value is not None:
            with self._lock:
                self._samples.append(value)
        return value

    def mark(self) -> int:
        with self._lock:
            return len(self._samples)

    def peak(self, since: int = 0) -> int | None:
        with self._lock:
            window = self._samples[since:]
        return max(window) if window else None


# ------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def semsearch_command() -> list[str]:
    beside = Path(sys.executable).with_name("semsearch")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("semsearch")
    if found is None:
        raise SystemExit("no `semsearch` command beside this Python or on PATH: pip install -e .")
    return [found]


@dataclass(slots=True)
class ChildServer:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def child_server(
    console: Console,
    *,
    unlimited: bool,
    data_dir: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, ChildServer]]:
    """`semsearch serve` on a free port, on `data_dir` or a fresh data directory, with
    `environment` added to this process's; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="semsearch-load-") as folder:
        port = free_port()
        env = dict(os.environ)
        env["SEMSEARCH_DATA_DIR"] = str(data_dir or Path(folder) / "data")
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        env.pop("SEMSEARCH_BROKER_URL", None)
        if unlimited:
            env["SEMSEARCH_RATE_LIMIT_SEARCH"] = ""
            env["SEMSEARCH_RATE_LIMIT_INGEST"] = ""
        env.update(environment or {})
        log_path = Path(folder) / "serve.log"
        command = [
            *semsearch_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        console.print(f"started `semsearch serve` (pid {process.pid}) on 127.0.0.1:{port}")
        server = ChildServer(process=process, log_path=log_path)
        try:
            yield f"http://127.0.0.1:{port}", server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_ready(
    base_url: str, headers: dict[str, str], server: ChildServer | None, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(base_url=base_url, headers=headers, timeout=5.0) as http:
        while time.monotonic() < deadline:
            if server is not None and server.process.poll() is not None:
                raise SystemExit(
                    f"the server exited with {server.process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            try:
                answer = http.get("/health/ready")
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
    raise SystemExit(f"{base_url}/health/ready did not answer 200 within {timeout_s:.0f} s: {last}")


# ------------------------------------------------------------------------------ load


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    """"search" or "ingest"."""
    status: int | None
    """The HTTP status; None for a transport error (see `label`)."""
    label: str
    """The status as text, or the transport error's class."""
    latency_s: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def shed(self) -> bool:
        return self.status in SHED_STATUSES


@dataclass(slots=True)
class Ledger:
    """What the ingests were answered: the documents the service owes, and its unfinished
    jobs."""

    accepted: dict[str, str] = field(default_factory=dict)
    """Document id -> text, for every 202."""
    uncertain: dict[str, str] = field(default_factory=dict)
    """Documents of requests that got no answer (a transport error): maybe stored, maybe not."""
    pending_jobs: set[str] = field(default_factory=set)


@dataclass(slots=True)
class LevelResult:
    clients: int
    wall_s: float
    outcomes: list[Outcome]
    peak_rss: int | None = None
    drain_s: float = 0.0

    def count(self, kind: str | None = None) -> int:
        return sum(1 for o in self.outcomes if kind is None or o.kind == kind)

    @property
    def ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def shed(self) -> int:
        return sum(1 for o in self.outcomes if o.shed)

    @property
    def errors(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok and not o.shed)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def latency_ms(self, percentile: float) -> float | None:
        latencies = [o.latency_s for o in self.outcomes if o.ok]
        if not latencies:
            return None
        return float(np.percentile(latencies, percentile)) * 1000

    def statuses(self) -> str:
        """Counts of every answer that is not 2xx, e.g. "503 x4, ReadTimeout x1"."""
        counts = Counter(o.label for o in self.outcomes if not o.ok)
        return ", ".join(f"{label} x{n}" for label, n in sorted(counts.items())) or "-"


@dataclass(frozen=True, slots=True)
class LoadPlan:
    base_url: str
    headers: dict[str, str]
    collection: str
    texts: Texts
    timeout_s: float
    run_tag: str
    seed: int
    ingest_share: float = INGEST_SHARE


async def timed(
    http: httpx.AsyncClient, kind: str, method: str, path: str, body: Any
) -> tuple[Outcome, httpx.Response | None]:
    started = time.perf_counter()
    try:
        answer = await http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        return Outcome(kind, None, type(exc).__name__, time.perf_counter() - started), None
    elapsed = time.perf_counter() - started
    return Outcome(kind, answer.status_code, str(answer.status_code), elapsed), answer


def retry_after_s(answer: httpx.Response) -> float:
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(answer.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


async def back_off(outcome: Outcome, answer: httpx.Response | None, deadline: float) -> None:
    """After a shed answer, wait as told, as a well-behaved client would (not past the end)."""
    if outcome.shed and answer is not None:
        await asyncio.sleep(min(retry_after_s(answer), max(0.0, deadline - time.perf_counter())))


async def simulated_client(
    plan: LoadPlan,
    ledger: Ledger,
    *,
    phase: str,
    index: int,
    deadline: float,
    outcomes: list[Outcome],
) -> None:
    rng = random.Random(f"{plan.seed}-{phase}-{index}")
    search_path = f"/collections/{plan.collection}/search"
    ingest_path = f"/collections/{plan.collection}/documents"
    sent = 0
    async with httpx.AsyncClient(
        base_url=plan.base_url, headers=plan.headers, timeout=plan.timeout_s
    ) as http:
        while time.perf_counter() < deadline:
            if rng.random() >= plan.ingest_share:
                query = rng.choice(plan.texts.queries)
                outcome, answer = await timed(http, "search", "POST", search_path, {"query": query})
                outcomes.append(outcome)
                await back_off(outcome, answer, deadline)
                continue
            documents: dict[str, str] = {}
            for _ in range(rng.randint(1, 3)):
                sent += 1
                document_id = f"{plan.run_tag}-{phase}-c{index}-{sent}"
                documents[document_id] = rng.choice(plan.texts.ingest)
            body = {
                "documents": [
                    {"id": document_id, "text": text, "metadata": {"load_id": document_id}}
                    for document_id, text in documents.items()
                ]
            }
            outcome, answer = await timed(http, "ingest", "POST", ingest_path, body)
            outcomes.append(outcome)
            if answer is None:
                ledger.uncertain.update(documents)
            elif outcome.ok:
                ledger.accepted.update(documents)
                job_id = str(answer.json()["id"])
                ledger.pending_jobs.add(job_id)
            await back_off(outcome, answer, deadline)


async def run_level(
    plan: LoadPlan, ledger: Ledger, phase: str, clients: int, duration_s: float
) -> LevelResult:
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    deadline = started + duration_s
    await asyncio.gather(
        *(
            simulated_client(
                plan, ledger, phase=phase, index=index, deadline=deadline, outcomes=outcomes
            )
            for index in range(clients)
        )
    )
    return LevelResult(clients=clients, wall_s=time.perf_counter() - started, outcomes=outcomes)


async def wait_jobs(plan: LoadPlan, ledger: Ledger, timeout_s: float) -> dict[str, str]:
    """Poll the pending jobs until each has finished; their final statuses by id."""
    finished: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(
        base_url=plan.base_url, headers=plan.headers, timeout=plan.timeout_s
    ) as http:
        while ledger.pending_jobs and time.monotonic() < deadline:
            for job_id in sorted(ledger.pending_jobs):
                try:
                    answer = await http.get(f"/jobs/{job_id}")
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    job_status = str(answer.json()["status"])
                    if job_status in ("succeeded", "failed"):
                        finished[job_id] = job_status
                        ledger.pending_jobs.discard(job_id)
            if ledger.pending_jobs:
                await asyncio.sleep(0.5)
    return finished


# ------------------------------------------------------------------------------ checks


@dataclass(slots=True)
class Verdict:
    seeded: int
    ingested: int = 0
    """Documents answered 202, plus unanswered ones the service turns out to hold."""
    not_indexed: dict[str, str] = field(default_factory=dict)
    """Document id -> what its GET said instead of "indexed"."""
    not_found_by_search: list[str] = field(default_factory=list)
    document_count: int | None = None
    failed_jobs: int = 0
    unfinished_jobs: int = 0

    @property
    def lost(self) -> int:
        return len(set(self.not_indexed) | set(self.not_found_by_search))

    @property
    def expected_count(self) -> int:
        return self.seeded + self.ingested

    @property
    def count_matches(self) -> bool:
        return self.document_count == self.expected_count


async def verify(plan: LoadPlan, ledger: Ledger, seeded: int, timeout_s: float) -> Verdict:
    finished = await wait_jobs(plan, ledger, timeout_s)
    verdict = Verdict(
        seeded=seeded,
        failed_jobs=sum(1 for s in finished.values() if s == "failed"),
        unfinished_jobs=len(ledger.pending_jobs),
    )
    semaphore = asyncio.Semaphore(VERIFY_CONCURRENCY)
    documents = f"/collections/{plan.collection}/documents"
    held: set[str] = set()

    async with httpx.AsyncClient(
        base_url=plan.base_url, headers=plan.headers, timeout=plan.timeout_s
    ) as http:

        async def request(method: str, path: str, body: Any = None) -> httpx.Response | None:
            """The answer; retried after a transport error or a shed answer, None if none."""
            for _ in range(10):
                try:
                    answer = await http.request(method, path, json=body)
                except httpx.HTTPError:
                    await asyncio.sleep(1.0)
                    continue
                if answer.status_code not in SHED_STATUSES:
                    return answer
                await asyncio.sleep(retry_after_s(answer))
            return None

        async def check(document_id: str, text: str, owed: bool) -> None:
            async with semaphore:
                answer = await request("GET", f"{documents}/{document_id}")
                if answer is None:
                    verdict.not_indexed[document_id] = "no answer to GET"
                    return
                if answer.status_code == 404 and not owed:
                    return  # an unanswered ingest the service never stored: nothing owed
                held.add(document_id)
                state = answer.json().get("status") if answer.status_code == 200 else None
                if state != "indexed":
                    verdict.not_indexed[document_id] = str(state or answer.status_code)
                    return
                found = await request(
                    "POST",
                    f"/collections/{plan.collection}/search",
                    {
                        "query": text,
                        "filter": {"load_id": document_id},
                        "threshold": -1.0,
                        "top_k": 1,
                    },
                )
                ok = found is not None and found.status_code == 200
                hits = found.json().get("hits", []) if found is not None and ok else []
                if not any(hit.get("document_id") == document_id for hit in hits):
                    verdict.not_found_by_search.append(document_id)

        await asyncio.gather(
            *(check(i, t, True) for i, t in ledger.accepted.items()),
            *(check(i, t, False) for i, t in ledger.uncertain.items()),
        )
        answer = await http.get(f"/collections/{plan.collection}")
        if answer.status_code == 200:
            verdict.document_count = int(answer.json()["document_count"])
    verdict.ingested = len(held)
    return verdict


# ------------------------------------------------------------------------------ run


def create_and_seed(plan: LoadPlan, model: str | None, console: Console) -> float:
    """Create the collection and ingest the seed documents; the seconds the seeding took."""
    body: dict[str, Any] = {"name": plan.collection, "filterable": {"load_id": "keyword"}}
    if model is not None:
        body["model"] = model
    with httpx.Client(base_url=plan.base_url, headers=plan.headers, timeout=120.0) as http:
        created = http.post("/collections", json=body)
        if created.status_code != 201:
            raise SystemExit(f"creating the collection: HTTP {created.status_code} {created.text}")
        started = time.perf_counter()
        seed = plan.texts.seed
        jobs: list[str] = []
        for start in range(0, len(seed), SEED_BATCH):
            batch = [
                {"id": f"seed-{n}", "text": text, "title": title}
                for n, (text, title) in enumerate(seed[start : start + SEED_BATCH], start)
            ]
            answer = http.post(
                f"/collections/{plan.collection}/documents", json={"documents": batch}
            )
            if answer.status_code != 202:
                raise SystemExit(f"seeding: HTTP {answer.status_code} {answer.text}")
            jobs.append(str(answer.json()["id"]))
        deadline = time.monotonic() + SEED_TIMEOUT_S
        for job_id in jobs:
            while True:
                answer = http.get(f"/jobs/{job_id}")
                if answer.status_code != 200:
                    raise SystemExit(f"seeding job {job_id}: HTTP {answer.status_code}")
                job = answer.json()
                if job["status"] == "failed":
                    raise SystemExit(f"seeding job {job_id} failed: {job['error']}")
                if job["status"] == "succeeded":
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"seeding did not finish in {SEED_TIMEOUT_S:.0f} s")
                time.sleep(0.5)
    seconds = time.perf_counter() - started
    console.print(
        f"seeded {plan.collection!r} with {len(seed)} documents in {seconds:.1f} s "
        f"({len(seed) / seconds:.1f} documents/s)"
    )
    return seconds


def delete_collection(plan: LoadPlan) -> None:
    with httpx.Client(base_url=plan.base_url, headers=plan.headers, timeout=120.0) as http:
        http.delete(f"/collections/{plan.collection}")


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def levels_table(
    levels: Sequence[LevelResult], baseline: LevelResult, caption: str, ingest_share: float
) -> Table:
    share = round(ingest_share * 100)
    table = Table(
        title=f"semsearch under load: {100 - share}% searches, {share}% ingests of 1-3 short "
        "documents",
        caption=caption,
    )
    table.add_column("clients", justify="right")
    table.add_column("requests", justify="right")
    table.add_column("searches / ingests", justify="right")
    table.add_column("req/s ↑", justify="right")
    one = "1 client" if baseline.clients == 1 else f"{baseline.clients} clients"
    table.add_column(f"vs {one}", justify="right")
    for percentile in ("p50", "p95", "p99"):
        table.add_column(f"{percentile} ms ↓", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("shed", justify="right")
    table.add_column("not 2xx", justify="left")
    table.add_column("peak RSS MiB", justify="right")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    for level in levels:
        ratio = level.throughput / baseline.throughput if baseline.throughput else None
        table.add_row(
            str(level.clients),
            str(level.count()),
            f"{level.count('search')} / {level.count('ingest')}",
            f"{level.throughput:.1f}",
            "-" if ratio is None else f"{ratio:.2f}x",
            ms(level.latency_ms(50)),
            ms(level.latency_ms(95)),
            ms(level.latency_ms(99)),
            str(level.errors),
            str(level.shed),
            level.statuses(),
            mib(level.peak_rss),
        )
    return table


def summary_table(verdict: Verdict, rss: dict[str, int | None], rss_method: str | None) -> Table:
    table = Table(title="documents and memory", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("", justify="left")
    table.add_row("documents ingested under load", f"{verdict.ingested:,}", "")
    table.add_row(
        "lost (not indexed or not found by search)",
        str(verdict.lost),
        "target 0" if verdict.lost == 0 else f"e.g. {lost_examples(verdict)}",
    )
    table.add_row(
        "ingest jobs failed / unfinished",
        f"{verdict.failed_jobs} / {verdict.unfinished_jobs}",
        "",
    )
    table.add_row(
        "document_count / seeded + ingested",
        f"{'-' if verdict.document_count is None else f'{verdict.document_count:,}'}"
        f" / {verdict.expected_count:,}",
        "matches" if verdict.count_matches else "MISMATCH",
    )
    for label, key in (
        ("server RSS at start, MiB", "start"),
        ("server RSS after warm-up, MiB", "warm"),
        ("server RSS peak, MiB", "peak"),
        ("server RSS at end, MiB", "end"),
    ):
        table.add_row(label, mib(rss.get(key)), rss_method or "no pid: not measured")
    start, warm, end = rss.get("start"), rss.get("warm"), rss.get("end")
    if warm and end:
        ratio = end / warm
        table.add_row(
            "RSS end / after warm-up",
            f"{ratio:.3f}x",
            "within 5%" if abs(ratio - 1) <= 0.05 else "OUTSIDE 5%",
        )
    if start and warm:
        table.add_row("RSS after warm-up / start", f"{warm / start:.2f}x", "model loaded")
    return table


def lost_examples(verdict: Verdict) -> str:
    examples = [f"{i}: {s}" for i, s in list(verdict.not_indexed.items())[:3]]
    examples += [f"{i}: no hit" for i in verdict.not_found_by_search[:3]]
    return "; ".join(examples[:3])


def parse_positive_ints(text: str) -> list[int]:
    """A comma-separated list of positive integers, as an argparse `type`."""
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not numbers or any(number < 1 for number in numbers):
        raise argparse.ArgumentTypeError("a list of positive integers, e.g. 1,8,32,64")
    return numbers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--clients",
        type=parse_positive_ints,
        default=[1, 8, 32, 64],
        metavar="N,N,...",
        help="concurrent clients of each level (default 1,8,32,64)",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, metavar="S", help="seconds per level"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        metavar="S",
        help="seconds of warm-up at the highest level (default: a sixth of --duration, "
        "at least 3 and at most 10)",
    )
    parser.add_argument(
        "--url", default=None, help="a running service to use instead of starting one"
    )
    parser.add_argument(
        "--api-key", default=None, help="sent as `Authorization: Bearer KEY` with every request"
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="with --url: the server's pid, for its RSS (on this machine)",
    )
    parser.add_argument(
        "--unlimited",
        action="store_true",
        help="start the child server without per-client rate limits "
        "(SEMSEARCH_RATE_LIMIT_SEARCH and _INGEST empty): its capacity, not its limits",
    )
    parser.add_argument("--data", choices=sorted(LOADERS), default="banking77")
    parser.add_argument(
        "--ingest-share",
        type=float,
        default=INGEST_SHARE,
        metavar="P",
        help="share of requests that ingest (default 0.05); 0: searches only, which tells "
        "memory that grows with stored documents from memory that grows with requests",
    )
    parser.add_argument(
        "--seed-docs",
        type=int,
        default=None,
        metavar="N",
        help="documents in the collection before the load "
        f"(default: {', '.join(f'{k} {v}' for k, v in DEFAULT_SEED_DOCS.items())})",
    )
    parser.add_argument(
        "--model", default=None, help="the collection's model (default: the service's)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="per request (default 60)"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="how long to wait for the ingest jobs after a level (default 300)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    marker, load_texts = LOADERS[args.data]
    if not marker.is_file():
        console.print(
            f"[yellow]skipped: the benchmark data is missing ({marker}); it lives in {DATA_DIR}[/]"
        )
        return
    seed_docs = args.seed_docs if args.seed_docs is not None else DEFAULT_SEED_DOCS[args.data]
    texts = load_texts(seed_docs, args.seed)
    warmup_s = args.warmup if args.warmup is not None else min(10.0, max(3.0, args.duration / 6))
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with service(args, console) as (base_url, server):
        pid = server.process.pid if server is not None else args.server_pid
        wait_ready(base_url, headers, server, READY_TIMEOUT_S)
        sampler = RssSampler(pid) if pid is not None else None
        if sampler is not None:
            sampler.start()
        try:
            failed = run(
                args,
                console,
                base_url=base_url,
                headers=headers,
                texts=texts,
                warmup_s=warmup_s,
                server=server,
                sampler=sampler,
            )
        finally:
            if sampler is not None:
                sampler.stop()
    raise SystemExit(1 if failed else 0)


@contextmanager
def service(args: argparse.Namespace, console: Console) -> Iterator[tuple[str, ChildServer | None]]:
    if args.url is not None:
        yield args.url.rstrip("/"), None
        return
    with child_server(console, unlimited=args.unlimited) as (base_url, server):
        yield base_url, server


def run(
    args: argparse.Namespace,
    console: Console,
    *,
    base_url: str,
    headers: dict[str, str],
    texts: Texts,
    warmup_s: float,
    server: ChildServer | None,
    sampler: RssSampler | None,
) -> bool:
    """The whole benchmark against a ready service; True when it failed."""
    started = time.perf_counter()
    run_tag = uuid.uuid4().hex[:8]
    plan = LoadPlan(
        base_url=base_url,
        headers=headers,
        collection=f"load-{run_tag}",
        texts=texts,
        timeout_s=args.timeout,
        run_tag=run_tag,
        seed=args.seed,
        ingest_share=args.ingest_share,
    )
    rss: dict[str, int | None] = {}
    if sampler is not None:
        rss["start"] = sampler.sample()
    create_and_seed(plan, args.model, console)
    ledger = Ledger()
    levels: list[LevelResult] = []
    try:
        top = max(args.clients)
        console.print(f"warm-up: {top} clients for {warmup_s:.0f} s")
        warm = asyncio.run(run_level(plan, ledger, "warm", top, warmup_s))
        asyncio.run(wait_jobs(plan, ledger, args.drain_timeout))
        console.print(
            f"warm-up: {warm.count()} requests, {warm.throughput:.1f} req/s, "
            f"{warm.errors} errors, {warm.shed} shed"
        )
        if sampler is not None:
            rss["warm"] = sampler.sample()
        for clients in args.clients:
            mark = sampler.mark() if sampler is not None else 0
            level = asyncio.run(run_level(plan, ledger, f"n{clients}", clients, args.duration))
            drain_started = time.perf_counter()
            asyncio.run(wait_jobs(plan, ledger, args.drain_timeout))
            level.drain_s = time.perf_counter() - drain_started
            level.peak_rss = sampler.peak(mark) if sampler is not None else None
            levels.append(level)
            console.print(
                f"{clients} client{'s' if clients > 1 else ''}: {level.count()} requests in "
                f"{level.wall_s:.1f} s, "
                f"{level.throughput:.1f} req/s, p50 {level.latency_ms(50) or 0:.0f} ms, "
                f"p99 {level.latency_ms(99) or 0:.0f} ms, {level.errors} errors, {level.shed} "
                f"shed (not 2xx: {level.statuses()}); ingest jobs drained in "
                f"{level.drain_s:.1f} s"
            )
            if server is not None and server.process.poll() is not None:
                console.print(f"[red]the server exited:[/]\n{server.log_tail()}")
                break
        verdict = asyncio.run(verify(plan, ledger, len(texts.seed), args.drain_timeout))
        if sampler is not None:
            rss["end"] = sampler.sample()
            rss["peak"] = sampler.peak()
    finally:
        if args.url is not None:
            delete_collection(plan)
    wall_s = time.perf_counter() - started
    baseline = next((level for level in levels if level.clients == 1), None) or min(
        levels, key=lambda level: level.clients
    )
    caption = (
        f"{args.data}: {len(texts.seed):,} documents seeded, {len(texts.queries):,} queries; "
        f"{args.duration:.0f} s per level after a {warmup_s:.0f} s warm-up at {max(args.clients)} "
        f"clients; latencies of 2xx answers; {os.cpu_count()} CPUs; "
        f"{'child server, ' if server is not None else base_url + ', '}"
        f"wall time {wall_s / 60:.1f} min"
    )
    console.print(levels_table(levels, baseline, caption, args.ingest_share))
    console.print(summary_table(verdict, rss, sampler.method if sampler is not None else None))
    errors = sum(level.errors for level in levels) + warm.errors
    failed = errors > 0 or verdict.lost > 0 or not verdict.count_matches
    failed = failed or verdict.unfinished_jobs > 0 or len(levels) < len(args.clients)
    console.print(
        f"errors {errors} (warm-up included), lost documents {verdict.lost}, document count "
        f"{'matches' if verdict.count_matches else 'does not match'}: "
        f"{'FAILED' if failed else 'passed'}"
    )
    return failed


if __name__ == "__main__":
    main()
