"""Ranking quality measures (pure Python): the quality gate, benchmarks and tests use them.

Conventions: ties in a ranking are broken by document index (earlier first), as a stable sort does; Spearman's
rho is Pearson's correlation of average ranks; nDCG uses linear gains ``rel / log2(rank + 1)`` as trec_eval's
``ndcg_cut`` does (and pytrec_eval, which MTEB/BEIR scores use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def ranking(scores: Sequence[float]) -> list[int]:
    """Document indices, best score first; equal scores keep document order."""
    return sorted(range(len(scores)), key=lambda index: (-scores[index], index))


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` in ascending order; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho of two score lists over the same documents.

    Two constant lists order the documents identically (1.0); one constant list against a varying one has no
    correlation (0.0).
    """
    if len(a) != len(b):
        raise ValueError(f"score lists differ in length: {len(a)} vs {len(b)}")
    rank_a, rank_b = average_ranks(a), average_ranks(b)
    mean = (len(a) + 1) / 2
    da = [r - mean for r in rank_a]
    db = [r - mean for r in rank_b]
    var_a, var_b = sum(x * x for x in da), sum(y * y for y in db)
    if var_a == 0 and var_b == 0:
        return 1.0
    if var_a == 0 or var_b == 0:
        return 0.0
    return sum(x * y for x, y in zip(da, db, strict=True)) / math.sqrt(var_a * var_b)


def top_k_overlap(a: Sequence[float], b: Sequence[float], k: int = 10) -> float:
    """Share of the top ``k`` documents under ``a`` that are also in the top ``k`` under ``b``."""
    if len(a) != len(b):
        raise ValueError(f"score lists differ in length: {len(a)} vs {len(b)}")
    depth = min(k, len(a))
    if depth == 0:
        return 1.0
    return len(set(ranking(a)[:depth]) & set(ranking(b)[:depth])) / depth
