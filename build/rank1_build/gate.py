"""The quality gate: score one dev set on two served repositories and compare the rankings.

The dev set is JSONL, one query per line: ``{"query_id": "q1", "query": "...", "documents": ["...", ...],
"relevance": [0, 2, ...]}`` (``relevance`` optional: graded labels, one per document). Each query goes to the
``rank1`` entry model over gRPC (inputs ``query`` BYTES [1] and ``documents`` BYTES [-1], output ``scores``
FP32 [-1]). The candidate (e.g. FP8) passes when, against the baseline (e.g. BF16), the mean per-query Spearman
correlation and the mean top-10 overlap reach their minimums and nDCG@10 (queries with labels) does not drop by
more than the allowed amount.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from rank1_triton.contract import ENTRY_MODEL_NAME
from rank1_triton.ranking_metrics import spearman, top_k_overlap

ScoreTable = Mapping[str, Sequence[float]]
TOP_K = 10
NDCG = f"nDCG@{TOP_K}"


@dataclass(frozen=True)
class DevQuery:
    """One query of the dev set."""

    query_id: str
    query: str
    documents: tuple[str, ...]
    relevance: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Thresholds:
    """Pass marks of the gate."""

    min_spearman: float = 0.90
    min_top10_overlap: float = 0.80
    max_ndcg10_drop: float = 0.02


@dataclass(frozen=True)
class QueryComparison:
    """Baseline vs candidate on one query."""

    query_id: str
    spearman: float
    top10_overlap: float
    ndcg10_baseline: float | None
    ndcg10_candidate: float | None


@dataclass
class GateReport:
    """The comparison over the dev set and the thresholds it failed (none: passed)."""

    thresholds: Thresholds
    queries: list[QueryComparison]
    mean_spearman: float
    mean_top10_overlap: float
    ndcg10_baseline: float | None
    ndcg10_candidate: float | None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no threshold failed."""
        return not self.failures

    @property
    def ndcg10_delta(self) -> float | None:
        """Candidate minus baseline mean nDCG@10 (None without relevance labels)."""
        if self.ndcg10_baseline is None or self.ndcg10_candidate is None:
            return None
        return self.ndcg10_candidate - self.ndcg10_baseline

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report."""
        return {**asdict(self), "ndcg10_delta": self.ndcg10_delta, "passed": self.passed}


def load_dev_set(path: Path) -> list[DevQuery]:
    """Read and check the JSONL dev set; ValueError names the offending line."""
    queries: list[DevQuery] = []
    seen: set[str] = set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        record = json.loads(line)
        documents = record.get("documents")
        if not isinstance(record.get("query"), str) or not isinstance(documents, list) or not documents:
            raise ValueError(f"{where}: needs a string 'query' and a non-empty list 'documents'")
        query_id = str(record.get("query_id", number))
        if query_id in seen:
            raise ValueError(f"{where}: duplicate query_id {query_id!r}")
        seen.add(query_id)
        relevance = record.get("relevance")
        if relevance is not None and (len(relevance) != len(documents) or
                                      not all(isinstance(r, int) for r in relevance)):
            raise ValueError(f"{where}: 'relevance' needs one integer label per document")
        queries.append(DevQuery(query_id, record["query"], tuple(documents),
                                tuple(relevance) if relevance is not None else None))
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def per_query_ndcg(dev: Sequence[DevQuery], table: ScoreTable) -> dict[str, float]:
    """nDCG@10 of each labelled query with a relevant document, by ir-measures (trec_eval's definition) through
    ``rank1 evaluate``'s metrics code; documents are identified by their position."""
    from rank1_client.evaluate import compute_metrics

    qrels = {q.query_id: {str(i): label for i, label in enumerate(q.relevance)}
             for q in dev if q.relevance and any(label > 0 for label in q.relevance)}
    run = {qid: [(str(i), float(score)) for i, score in enumerate(table[qid])] for qid in qrels}
    metrics = compute_metrics(qrels, run, [NDCG]) if qrels else None
    return {qid: values[NDCG] for qid, values in metrics.per_query.items()} if metrics else {}


def compare_tables(
    dev: Sequence[DevQuery], baseline: ScoreTable, candidate: ScoreTable, thresholds: Thresholds = Thresholds()
) -> GateReport:
    """Compare two score tables (query_id -> one score per document) and apply the thresholds."""
    for query in dev:
        for name, table in (("baseline", baseline), ("candidate", candidate)):
            if len(table[query.query_id]) != len(query.documents):
                raise ValueError(f"{query.query_id}: {name} has {len(table[query.query_id])} scores for "
                                 f"{len(query.documents)} documents")
    ndcg_base, ndcg_cand = per_query_ndcg(dev, baseline), per_query_ndcg(dev, candidate)
    rows = []
    for query in dev:
        base, cand = baseline[query.query_id], candidate[query.query_id]
        rows.append(QueryComparison(
            query.query_id, spearman(base, cand), top_k_overlap(base, cand, TOP_K),
            ndcg_base.get(query.query_id), ndcg_cand.get(query.query_id),
        ))
    judged = [row for row in rows if row.ndcg10_baseline is not None]
    report = GateReport(
        thresholds=thresholds,
        queries=rows,
        mean_spearman=fmean(row.spearman for row in rows),
        mean_top10_overlap=fmean(row.top10_overlap for row in rows),
        ndcg10_baseline=fmean(row.ndcg10_baseline for row in judged) if judged else None,
        ndcg10_candidate=fmean(row.ndcg10_candidate for row in judged) if judged else None,
    )
    if report.mean_spearman < thresholds.min_spearman:
        report.failures.append(f"mean Spearman {report.mean_spearman:.4f} < {thresholds.min_spearman}")
    if report.mean_top10_overlap < thresholds.min_top10_overlap:
        report.failures.append(f"mean top-10 overlap {report.mean_top10_overlap:.4f} < {thresholds.min_top10_overlap}")
    delta = report.ndcg10_delta
    if delta is not None and -delta > thresholds.max_ndcg10_drop:
        report.failures.append(
            f"nDCG@10 fell by {-delta:.4f} ({report.ndcg10_baseline:.4f} -> {report.ndcg10_candidate:.4f}) "
            f"> {thresholds.max_ndcg10_drop}"
        )
    return report


class TritonScorer:
    """Scores documents with a served ``rank1`` model over gRPC (tritonclient)."""

    def __init__(self, client: Any, model_name: str = ENTRY_MODEL_NAME, timeout_s: float | None = None) -> None:
        self._client = client
        self._model_name = model_name
        self._timeout_s = timeout_s
        self._batched = client.get_model_config(model_name).config.max_batch_size > 0

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """One score per document, in document order."""
        import numpy as np
        from tritonclient.grpc import InferInput, InferRequestedOutput

        arrays = {
            "query": np.array([query.encode("utf-8")], dtype=np.object_),
            "documents": np.array([text.encode("utf-8") for text in documents], dtype=np.object_),
        }
        inputs = []
        for name, array in arrays.items():
            data = array[np.newaxis] if self._batched else array
            tensor = InferInput(name, list(data.shape), "BYTES")
            tensor.set_data_from_numpy(data)
            inputs.append(tensor)
        result = self._client.infer(self._model_name, inputs, outputs=[InferRequestedOutput("scores")],
                                    client_timeout=self._timeout_s)
        scores = result.as_numpy("scores").reshape(-1)
        if len(scores) != len(documents):
            raise RuntimeError(f"{self._model_name} returned {len(scores)} scores for {len(documents)} documents")
        return [float(score) for score in scores]


def _grpc_client(url: str) -> Any:
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(url=url)


def score_dev_set(
    url: str, dev: Sequence[DevQuery], *, model_name: str = ENTRY_MODEL_NAME, timeout_s: float | None = None,
    client_factory: Callable[[str], Any] | None = None,
) -> dict[str, list[float]]:
    """Score every dev query on the server at ``url`` (host:port of its gRPC endpoint)."""
    scorer = TritonScorer((client_factory or _grpc_client)(url), model_name, timeout_s)
    return {query.query_id: scorer.score(query.query, query.documents) for query in dev}


def run_gate(
    baseline_url: str, candidate_url: str, dev: Sequence[DevQuery], thresholds: Thresholds = Thresholds(), *,
    model_name: str = ENTRY_MODEL_NAME, timeout_s: float | None = None,
    client_factory: Callable[[str], Any] | None = None,
) -> GateReport:
    """Score the dev set on both servers and compare."""
    baseline = score_dev_set(baseline_url, dev, model_name=model_name, timeout_s=timeout_s,
                             client_factory=client_factory)
    candidate = score_dev_set(candidate_url, dev, model_name=model_name, timeout_s=timeout_s,
                              client_factory=client_factory)
    return compare_tables(dev, baseline, candidate, thresholds)
