"""The inputs of an evaluation: queries, the documents the run needs, relevance judgments and a first-stage run.

Files: a TREC run (or Rank1's JSON run), TREC qrels (``qid 0 docid rel``) or BEIR's ``qrels/*.tsv``
(``query-id corpus-id score`` with a header), queries and corpus as BEIR JSON lines or TSV (``id<TAB>text``,
``id<TAB>title<TAB>text``). Or an ``ir_datasets`` id, for machines with internet access.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._files import InputFileError, read_corpus, read_queries, read_scored_run
from ..types import Document

TSV_SUFFIXES = (".tsv", ".tab", ".txt")
HEADER_IDS = {"id", "_id", "qid", "docid", "query_id", "doc_id", "query-id", "corpus-id", "pid"}


@dataclass
class Collection:
    """What one evaluation reranks and judges.

    Attributes:
        queries: Query text by id.
        documents: The documents the run needs, by id (``{"title"?, "text"}`` or plain text).
        qrels: Graded relevance by query id and document id (0 or less: not relevant).
        run: The first-stage candidates of each query, best first, as ``(docid, score)``, cut to ``top_k``.
        name: A label for reports (the dataset id or the run file's name).
    """

    queries: dict[str, str]
    documents: dict[str, Document]
    qrels: dict[str, dict[str, int]]
    run: dict[str, list[tuple[str, float]]]
    name: str = "collection"
    skipped: dict[str, int] = field(default_factory=dict)

    def judged_candidates(self) -> dict[str, list[tuple[str, float]]]:
        """The run's queries that have text and judgments, each with its candidates found in the corpus; what
        was left out is counted in ``skipped``."""
        candidates: dict[str, list[tuple[str, float]]] = {}
        counts = {"queries without text": 0, "queries without judgments": 0, "documents missing from the corpus": 0}
        for qid, ranked in self.run.items():
            if qid not in self.queries:
                counts["queries without text"] += 1
            elif qid not in self.qrels:
                counts["queries without judgments"] += 1
            else:
                found = [(docid, score) for docid, score in ranked if docid in self.documents]
                counts["documents missing from the corpus"] += len(ranked) - len(found)
                if found:
                    candidates[qid] = found
        self.skipped = {reason: count for reason, count in counts.items() if count}
        return candidates


def _is_tsv(path: Path) -> bool:
    if path.suffix.lower() in TSV_SUFFIXES:
        return True
    try:
        with path.open(encoding="utf-8") as file:
            start = file.read(256).lstrip()
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None
    return not start.startswith(("{", '"'))


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with path.open(encoding="utf-8", newline="") as file:
            for number, row in enumerate(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if number == 1 and row[0].strip().lower() in HEADER_IDS:
                    continue  # a header line
                yield number, row
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None


def load_queries(path: Path) -> dict[str, str]:
    """Queries from BEIR JSON lines (``{"_id", "text"}``) or TSV (``id<TAB>text``)."""
    if not _is_tsv(path):
        return read_queries(path)
    queries = {}
    for number, row in _tsv_rows(path):
        if len(row) < 2:
            raise InputFileError(f"{path}:{number}: expected 'id<TAB>text'")
        queries[row[0].strip()] = row[1]
    return queries


def load_corpus(path: Path, wanted: set[str]) -> dict[str, Document]:
    """The ``wanted`` documents of a BEIR JSON-lines corpus or a TSV one (``id<TAB>text`` or
    ``id<TAB>title<TAB>text``); the others are not kept in memory."""
    if not _is_tsv(path):
        return read_corpus(path, wanted)
    corpus: dict[str, Document] = {}
    for number, row in _tsv_rows(path):
        if len(row) < 2:
            raise InputFileError(f"{path}:{number}: expected 'id<TAB>text' or 'id<TAB>title<TAB>text'")
        docid = row[0].strip()
        if docid in wanted:
            corpus[docid] = {"text": row[1]} if len(row) == 2 else {"title": row[1], "text": row[2]}
    return corpus


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Relevance judgments: TREC qrels (``qid iteration docid relevance``) or BEIR TSV (``query-id corpus-id
    score``, header optional)."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) == 4:
                    qid, _, docid, relevance = fields
                elif len(fields) == 3:
                    qid, docid, relevance = fields
                else:
                    raise InputFileError(f"{path}:{number}: expected 'qid 0 docid relevance' (TREC) or "
                                         "'query-id corpus-id score' (BEIR)")
                try:
                    grade = int(float(relevance))
                except ValueError:
                    if number == 1:
                        continue  # BEIR's header "query-id corpus-id score"
                    raise InputFileError(f"{path}:{number}: relevance {relevance!r} is not a number") from None
                qrels.setdefault(qid, {})[docid] = grade
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None
    if not qrels:
        raise InputFileError(f"{path}: no judgments")
    return qrels


def load_collection(*, run: Path | None = None, qrels: Path | None = None, queries: Path | None = None,
                    corpus: Path | None = None, dataset: str | None = None, top_k: int = 100) -> Collection:
    """Read an evaluation's inputs from files, or from an ``ir_datasets`` id (files given as well replace the
    dataset's parts: e.g. your own ``run`` on ``beir/scifact/test``)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if dataset is not None:
        return load_ir_dataset(dataset, top_k=top_k, run=run, qrels=qrels, queries=queries, corpus=corpus)
    missing = [name for name, value in (("run", run), ("qrels", qrels), ("queries", queries), ("corpus", corpus))
               if value is None]
    if missing:
        raise ValueError(f"without a dataset id, give {', '.join(missing)}")
    assert run is not None and qrels is not None and queries is not None and corpus is not None
    ranked = read_scored_run(run, top_k)
    wanted = {docid for candidates in ranked.values() for docid, _ in candidates}
    return Collection(queries=load_queries(queries), documents=load_corpus(corpus, wanted), qrels=load_qrels(qrels),
                      run=ranked, name=run.stem)


def _text(record: object, *names: str) -> str:
    default_text = getattr(record, "default_text", None)
    if callable(default_text):
        return str(default_text())
    for name in names:
        value = getattr(record, name, None)
        if isinstance(value, str):
            return value
    raise ValueError(f"ir_datasets record {record!r} has no text")


def load_ir_dataset(dataset_id: str, *, top_k: int = 100, run: Path | None = None, qrels: Path | None = None,
                    queries: Path | None = None, corpus: Path | None = None) -> Collection:
    """An ``ir_datasets`` collection, e.g. ``beir/scifact/test`` or ``msmarco-passage/trec-dl-2019/judged``.

    Needs ``pip install ir_datasets`` and internet access on first use (ir_datasets downloads and caches the
    data). The first-stage run comes from the dataset's ``scoreddocs`` (e.g. the BM25 top-1000 of TREC DL) unless
    ``run`` is given; datasets without them (BEIR) need ``run``.
    """
    try:
        import ir_datasets
    except ImportError as error:
        raise ImportError("an ir_datasets id needs the ir_datasets package: pip install ir_datasets") from error
    data = ir_datasets.load(dataset_id)
    if run is not None:
        ranked = read_scored_run(run, top_k)
    elif data.has_scoreddocs():
        scored: dict[str, dict[str, float]] = {}
        for item in data.scoreddocs_iter():
            scored.setdefault(item.query_id, {})[item.doc_id] = float(item.score)
        ranked = {qid: sorted(scores.items(), key=lambda pair: -pair[1])[:top_k] for qid, scores in scored.items()}
    else:
        raise ValueError(f"{dataset_id} has no first-stage run (scoreddocs): give one with --run")
    wanted = {docid for candidates in ranked.values() for docid, _ in candidates}
    if queries is not None:
        query_texts = load_queries(queries)
    else:
        query_texts = {query.query_id: _text(query, "text", "title") for query in data.queries_iter()}
    if qrels is not None:
        judgments = load_qrels(qrels)
    else:
        judgments = {}
        for judgment in data.qrels_iter():
            judgments.setdefault(judgment.query_id, {})[judgment.doc_id] = int(judgment.relevance)
    if corpus is not None:
        documents = load_corpus(corpus, wanted)
    else:
        documents = {}
        for docid, doc in data.docs_store().get_many(wanted).items():
            text = getattr(doc, "text", None)
            if not isinstance(text, str):
                text = _text(doc, "body", "passage")
            title = getattr(doc, "title", None)
            documents[docid] = {"title": title, "text": text} if isinstance(title, str) and title else {"text": text}
    return Collection(queries=query_texts, documents=documents, qrels=judgments, run=ranked, name=dataset_id)
