"""Ranking quality measures used by tests, the quality gate and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def ndcg_at_k(scores: Sequence[float], relevance: Sequence[float], k: int = 10) -> float:
    """nDCG@k of the ranking induced by ``scores`` (ties broken by input order) for graded ``relevance``."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
    dcg = sum(relevance[i] / math.log2(rank + 2) for rank, i in enumerate(order))
    ideal = sorted(relevance, reverse=True)[:k]
    best = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg / best if best > 0 else 0.0
