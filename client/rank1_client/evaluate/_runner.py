"""``evaluate``: rerank a first-stage run at one or several reasoning budgets, and measure each run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._client import Rank1Client
from .._protocol import render_document
from ..errors import Rank1Error
from ._cache import PairCache, PairScore, pair_key
from ._data import Collection
from ._metrics import PRIMARY, Comparison, Metrics, compare, compute_metrics, default_measures

Ranked = list[tuple[str, float]]


def budget_label(budget: int | None) -> str:
    """``"default"`` for the server's default budget, else the number."""
    return "default" if budget is None else str(budget)


def written(score: float) -> float:
    """A score as a run file holds it (8 decimals), so that metrics computed here equal those of the files."""
    return float(f"{score:.8f}")


@dataclass(frozen=True)
class Cost:
    """What one reranked run cost, over all its pairs (scored now or taken from the cache)."""

    documents: int
    reasoning_tokens: int
    forced: int
    truncated: int
    scored: int
    cached: int
    wall_s: float

    @property
    def tokens_per_document(self) -> float:
        return self.reasoning_tokens / self.documents if self.documents else 0.0

    @property
    def forced_pct(self) -> float:
        return 100.0 * self.forced / self.documents if self.documents else 0.0

    @property
    def truncated_pct(self) -> float:
        return 100.0 * self.truncated / self.documents if self.documents else 0.0

    @property
    def docs_per_s(self) -> float | None:
        """Documents scored per second of this invocation (``None`` when everything came from the cache)."""
        return self.scored / self.wall_s if self.scored and self.wall_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "reasoning_tokens": self.reasoning_tokens, "forced": self.forced,
                "truncated": self.truncated, "scored": self.scored, "cached": self.cached, "wall_s": self.wall_s,
                "tokens_per_document": self.tokens_per_document, "forced_pct": self.forced_pct,
                "truncated_pct": self.truncated_pct, "docs_per_s": self.docs_per_s}


@dataclass
class BudgetResult:
    """One reranked run: its ranking, metrics, comparison with the first stage, cost and failed queries."""

    budget: int | None
    run: dict[str, Ranked]
    metrics: Metrics
    comparison: Comparison
    cost: Cost
    failures: dict[str, Rank1Error] = field(default_factory=dict)
    run_file: Path | None = None

    @property
    def label(self) -> str:
        return budget_label(self.budget)


@dataclass
class EvaluationReport:
    """First stage and every reranked run, with what produced them; written out by ``write_report``."""

    name: str
    top_k: int
    measures: list[str]
    options: dict[str, Any]
    queries: int
    first_stage_run: dict[str, Ranked]
    first_stage: Metrics
    budgets: list[BudgetResult]
    skipped: dict[str, int] = field(default_factory=dict)
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metric(self, budget: int | None, measure: str = PRIMARY) -> float:
        """The mean ``measure`` of the run reranked at ``budget``."""
        return next(result for result in self.budgets if result.budget == budget).metrics.aggregate[measure]

    def table(self) -> str:
        """The Markdown tables (quality, then cost) that ``rank1 evaluate`` prints."""
        from ._report import markdown

        return markdown(self)

    def to_dict(self) -> dict[str, Any]:
        from ._report import as_dict

        return as_dict(self)


class EvaluationFailed(Rank1Error):
    """Some queries failed (their errors in ``failures``, by query id); the pairs scored so far are cached, so a
    rerun redoes only those, and ``skip_failed=True`` finishes without them."""

    def __init__(self, failures: Mapping[str, Rank1Error]) -> None:
        first_qid, first = next(iter(failures.items()))
        super().__init__(f"{len(failures)} quer{'y' if len(failures) == 1 else 'ies'} failed, e.g. {first_qid}: "
                         f"{first}")
        self.failures = dict(failures)


def _stderr(message: str) -> None:
    print(f"rank1: {message}", file=sys.stderr)


def evaluate(
    client: Rank1Client,
    collection: Collection,
    *,
    budgets: Sequence[int | None] = (None,),
    top_k: int = 100,
    measures: Sequence[str] | None = None,
    instruction: str | None = None,
    prompt: str | None = None,
    rethink: int | None = None,
    truncate: str | None = None,
    priority: int | None = None,
    model_id: str | None = None,
    cache: PairCache | Path | None = None,
    out_dir: Path | None = None,
    skip_failed: bool = False,
    max_concurrency: int | None = None,
    progress: bool = False,
    plots: bool = True,
    log: Callable[[str], object] = _stderr,
) -> EvaluationReport:
    """Rerank the top ``top_k`` of each judged query of ``collection.run`` at each budget and measure the runs.

    Args:
        client: A connected-on-demand :class:`~rank1_client.Rank1Client` (its chunk size, concurrency, retries).
        collection: Queries, documents, judgments and the first-stage run (:func:`load_collection`).
        budgets: ``max_reasoning_tokens`` values to sweep (``None``: the server's default).
        top_k: Candidates reranked per query (the paper: 100).
        measures: ir-measures names; default nDCG@10, AP (MAP), R@10, R@top_k, RR@10 (MRR@10).
        instruction, prompt, rethink, truncate: As :meth:`Rank1Client.rerank`, for every run (part of the cache
            keys).
        priority: Triton's request priority for every request (not part of the cache keys).
        model_id: Names the served model in the cache keys (default: the client's ``model_name``); give each
            checkpoint or quantization its own, or its own cache file.
        cache: A :class:`PairCache`, a path for one, or ``None`` (``out_dir/cache.sqlite`` with ``out_dir``,
            else in memory). Scored pairs found there are not sent again.
        out_dir: The report folder (run files, report.md/json, per-query TSV, plots); ``None`` writes nothing.
        skip_failed: Finish even if queries fail (they keep their first-stage order and are listed in the
            report); otherwise :class:`EvaluationFailed` is raised after the other queries are scored and cached.
        max_concurrency: Requests in flight (default: the client's).
        progress: Show a tqdm bar of the pairs to score.
        plots: Draw nDCG@10 vs reasoning tokens and the per-query deltas (needs matplotlib).
        log: Where progress lines go (default: stderr).

    Returns:
        The :class:`EvaluationReport`; ``report.table()`` is the Markdown summary.
    """
    measures = list(measures) if measures is not None else default_measures(top_k)
    if PRIMARY not in measures:
        measures.insert(0, PRIMARY)
    if not budgets:
        raise ValueError("give at least one budget")
    own_cache = not isinstance(cache, PairCache)
    pair_cache = cache if isinstance(cache, PairCache) else PairCache(
        cache if cache is not None else (out_dir / "cache.sqlite" if out_dir is not None else None))
    try:
        candidates = {qid: ranked[:top_k] for qid, ranked in collection.judged_candidates().items()}
        if not candidates:
            raise ValueError("no run query has both text and judgments (check the query and qrels ids)")
        first_stage_run = {qid: [(docid, written(score)) for docid, score in ranked]
                           for qid, ranked in candidates.items()}
        first_stage = compute_metrics(collection.qrels, first_stage_run, measures)
        options = {"instruction": instruction, "prompt": prompt, "rethink": rethink, "truncate": truncate}
        options = {name: value for name, value in options.items() if value is not None}
        results = []
        for budget in budgets:
            result = _rerank_at(client, collection, candidates, budget, options, model_id or client.model_name,
                                pair_cache, skip_failed, max_concurrency, progress, log, priority)
            result.metrics = compute_metrics(collection.qrels, result.run, measures)
            result.comparison = compare(first_stage, result.metrics, PRIMARY)
            results.append(result)
        report = EvaluationReport(
            name=collection.name, top_k=top_k, measures=measures, options=options, queries=len(candidates),
            first_stage_run=first_stage_run, first_stage=first_stage, budgets=results,
            skipped=dict(collection.skipped), out_dir=out_dir)
        if out_dir is not None:
            from ._report import write_report

            write_report(report, out_dir, plots=plots)
        return report
    finally:
        if own_cache:
            pair_cache.close()


def _rerank_at(client: Rank1Client, collection: Collection, candidates: Mapping[str, Ranked], budget: int | None,
               options: Mapping[str, Any], model_id: str, cache: PairCache, skip_failed: bool,
               max_concurrency: int | None, progress: bool, log: Callable[[str], object],
               priority: int | None = None) -> BudgetResult:
    """Score every candidate pair at ``budget`` (cached pairs first) and rank each query by score."""
    from tqdm import tqdm

    key_options = {**options, "max_reasoning_tokens": budget}
    passages = {docid: render_document(collection.documents[docid], 0)
                for ranked in candidates.values() for docid, _ in ranked}
    keys = {qid: [pair_key(model_id, key_options, collection.queries[qid], passages[docid]) for docid, _ in ranked]
            for qid, ranked in candidates.items()}
    scores = cache.get_many(key for query_keys in keys.values() for key in query_keys)
    total = sum(len(query_keys) for query_keys in keys.values())
    todo = [(qid, [i for i, key in enumerate(keys[qid]) if key not in scores]) for qid in candidates]
    todo = [(qid, missing) for qid, missing in todo if missing]
    to_score = sum(len(missing) for _, missing in todo)
    label = budget_label(budget)
    log(f"budget {label}: {len(candidates)} queries, {total} pairs, {total - to_score} cached, {to_score} to score")
    failures: dict[str, Rank1Error] = {}
    started = time.monotonic()
    if todo:
        pairs = ((collection.queries[qid], [collection.documents[candidates[qid][i][0]] for i in missing])
                 for qid, missing in todo)
        with tqdm(total=to_score, unit="pair", desc=f"budget {label}", disable=not progress) as bar:
            for position, outcome in client.rerank_as_completed(
                pairs, max_concurrency=max_concurrency, return_exceptions=True, priority=priority,
                max_reasoning_tokens=budget, **options,
            ):
                qid, missing = todo[position]
                if isinstance(outcome, Rank1Error):
                    failures[qid] = outcome
                    log(f"query {qid} failed: {outcome}")
                    continue
                fresh = {keys[qid][missing[r.index]]: PairScore(r.score, r.reasoning_tokens, r.forced, r.truncated)
                         for r in outcome.results}
                cache.put_many(fresh)
                scores.update(fresh)
                bar.update(len(missing))
    wall_s = time.monotonic() - started
    if failures and not skip_failed:
        raise EvaluationFailed(failures)
    run: dict[str, Ranked] = {}
    pairs_scored = [scores[key] for qid in candidates if qid not in failures for key in keys[qid]]
    for qid, ranked in candidates.items():
        if qid in failures:  # kept in first-stage order, so the query still counts (as not reranked)
            run[qid] = [(docid, written(score)) for docid, score in ranked]
            continue
        order = sorted(range(len(ranked)), key=lambda i: (-scores[keys[qid][i]].score, i))
        run[qid] = [(ranked[i][0], written(scores[keys[qid][i]].score)) for i in order]
    cost = Cost(
        documents=len(pairs_scored), reasoning_tokens=sum(p.reasoning_tokens for p in pairs_scored),
        forced=sum(p.forced for p in pairs_scored), truncated=sum(p.truncated for p in pairs_scored),
        scored=to_score - sum(len(missing) for qid, missing in todo if qid in failures),
        cached=total - to_score, wall_s=wall_s,
    )
    empty = Metrics({}, {})
    return BudgetResult(budget, run, empty, Comparison(PRIMARY, {}, 0.0, None), cost, failures)
