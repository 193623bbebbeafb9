"""Retrieval metrics from ir-measures (trec_eval's definitions through pytrec_eval), and a paired t-test (scipy)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EXTRA = "pip install 'rank1-client[evaluate]'"
PRIMARY = "nDCG@10"


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError as error:
        raise ImportError(f"rank1 evaluate needs ir-measures: {EXTRA}") from error
    return ir_measures


def default_measures(top_k: int) -> list[str]:
    """nDCG@10 (the paper's measure), MAP, Recall@10 and Recall@top_k, MRR@10, in ir-measures' names."""
    recall = ["R@10"] if top_k == 10 else ["R@10", f"R@{top_k}"]
    return [PRIMARY, "AP", *recall, "RR@10"]


Run = Mapping[str, Sequence[tuple[str, float]]]


@dataclass(frozen=True)
class Metrics:
    """Mean values over the judged queries of the run, and each query's values (ir-measures' names)."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]


def compute_metrics(qrels: Mapping[str, Mapping[str, int]], run: Run, measures: Sequence[str]) -> Metrics:
    """``measures`` of ``run`` against ``qrels`` with ir-measures (queries without judgments are not counted, as
    in trec_eval)."""
    ir_measures = _ir_measures()
    parsed = [ir_measures.parse_measure(name) for name in measures]
    names = {measure: name for measure, name in zip(parsed, measures, strict=True)}
    as_dicts = {qid: {docid: float(score) for docid, score in ranked} for qid, ranked in run.items() if ranked}
    judged = {qid: dict(judgments) for qid, judgments in qrels.items()}
    aggregate = {names[measure]: float(value)
                 for measure, value in ir_measures.calc_aggregate(parsed, judged, as_dicts).items()}
    per_query: dict[str, dict[str, float]] = {}
    for metric in ir_measures.iter_calc(parsed, judged, as_dicts):
        per_query.setdefault(metric.query_id, {})[names[metric.measure]] = float(metric.value)
    return Metrics({name: aggregate.get(name, 0.0) for name in measures}, per_query)


@dataclass(frozen=True)
class Comparison:
    """A reranked run against the first stage on one measure, query by query."""

    measure: str
    deltas: dict[str, float]
    mean_delta: float
    p_value: float | None
    test: str = "paired t-test (scipy.stats.ttest_rel)"


def compare(baseline: Metrics, candidate: Metrics, measure: str = PRIMARY) -> Comparison:
    """Per-query deltas of ``measure`` (candidate minus baseline) and the two-sided paired t-test's p-value
    (``None`` without scipy or with fewer than two queries; 1.0 when every delta is zero)."""
    queries = sorted(set(baseline.per_query) & set(candidate.per_query))
    deltas = {qid: candidate.per_query[qid][measure] - baseline.per_query[qid][measure] for qid in queries}
    mean = sum(deltas.values()) / len(deltas) if deltas else 0.0
    p_value: float | None = None
    if len(queries) >= 2:
        if all(delta == 0 for delta in deltas.values()):
            p_value = 1.0
        else:
            try:
                from scipy.stats import ttest_rel
            except ImportError:
                p_value = None
            else:
                result = ttest_rel([candidate.per_query[qid][measure] for qid in queries],
                                   [baseline.per_query[qid][measure] for qid in queries])
                p_value = None if math.isnan(result.pvalue) else float(result.pvalue)
    return Comparison(measure, deltas, mean, p_value)
