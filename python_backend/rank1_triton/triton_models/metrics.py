"""Custom Prometheus metrics of the entry and engine models (Triton ``pb_utils.MetricFamily``, on :8002/metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from ..reranker import DocumentScore

if TYPE_CHECKING:  # the entry model imports this module and must not load torch
    from ..engines.inflight import SchedulerStats

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


ENGINE_COUNTERS = {
    "steps": ("rank1_engine_steps_total", "Steps (forward passes over the running batch) of the in-flight engine"),
    "decode_tokens": ("rank1_engine_decode_tokens_total", "Tokens decoded by the in-flight engine"),
    "prefill_tokens": ("rank1_engine_prefill_tokens_total", "Prompt tokens fed through the model, padding included"),
    "shared_prefix_tokens": ("rank1_engine_shared_prefix_tokens_total",
                             "Prompt tokens not computed because the documents of a query shared their prefix"),
    "joined": ("rank1_engine_joined_total", "Sequences that joined a batch already decoding"),
    "cancelled": ("rank1_engine_cancelled_total", "Engine requests cancelled before they finished"),
    "steps_after_cancel": ("rank1_engine_steps_after_cancel_total",
                           "Steps that ran between a cancellation and the sequence leaving the batch"),
}
ENGINE_GAUGES = {
    "sequences": ("rank1_engine_sequences", "Sequences in the running batch or prefilling"),
    "queued": ("rank1_engine_queued_requests", "Engine requests waiting for a batch slot"),
}


class EngineMetrics:
    """The in-flight scheduler's counters and load as Prometheus metrics, copied from its stats by ``update``."""

    def __init__(self, pb_utils: ModuleType, model_name: str) -> None:
        family = pb_utils.MetricFamily
        labels = {"model": model_name}
        self._families = {
            **{key: family(name=name, description=text, kind=family.COUNTER)
               for key, (name, text) in ENGINE_COUNTERS.items()},
            **{key: family(name=name, description=text, kind=family.GAUGE)
               for key, (name, text) in ENGINE_GAUGES.items()},
        }
        self._metrics = {key: self._families[key].Metric(labels=labels) for key in self._families}
        self._last = dict.fromkeys(ENGINE_COUNTERS, 0)

    def update(self, stats: SchedulerStats, load: tuple[int, int]) -> None:
        """Add what the counters gained since the last call; set the gauges to ``load`` (sequences, queued)."""
        for key in ENGINE_COUNTERS:
            value = getattr(stats, key)
            if value > self._last[key]:
                self._metrics[key].increment(float(value - self._last[key]))
                self._last[key] = value
        for key, value in zip(ENGINE_GAUGES, load, strict=True):
            self._metrics[key].set(float(value))
