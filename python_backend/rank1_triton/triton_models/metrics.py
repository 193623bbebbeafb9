"""Custom Prometheus metrics of the entry model (Triton ``pb_utils.MetricFamily``, served on :8002/metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from ..reranker import DocumentScore

REASONING_TOKEN_BUCKETS = [16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0]
COUNTERS = {
    "documents": ("rank1_documents_total", "Documents scored"),
    "forced": ("rank1_forced_answers_total", "Answers forced after the reasoning budget ran out"),
    "truncated": ("rank1_truncated_documents_total", "Documents whose passage was truncated to fit the context"),
}


class Rank1Metrics:
    """Reasoning tokens per document (histogram), documents scored, forced answers, truncated documents."""

    def __init__(self, pb_utils: ModuleType, model_name: str) -> None:
        family = pb_utils.MetricFamily
        labels = {"model": model_name}
        # A MetricFamily must outlive its metrics, so the families are kept too.
        self._families = {
            "reasoning_tokens": family(name="rank1_reasoning_tokens", description="Reasoning tokens per document",
                                       kind=family.HISTOGRAM),
            **{key: family(name=name, description=text, kind=family.COUNTER) for key, (name, text) in COUNTERS.items()},
        }
        self._reasoning_tokens = self._families["reasoning_tokens"].Metric(labels=labels,
                                                                           buckets=REASONING_TOKEN_BUCKETS)
        self._counters = {key: self._families[key].Metric(labels=labels) for key in COUNTERS}

    def record(self, results: Sequence[DocumentScore]) -> None:
        """Count one request's documents."""
        for result in results:
            self._reasoning_tokens.observe(float(result.reasoning_tokens))
        self._counters["documents"].increment(float(len(results)))
        self._counters["forced"].increment(float(sum(r.forced for r in results)))
        self._counters["truncated"].increment(float(sum(r.truncated for r in results)))
