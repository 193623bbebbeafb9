"""``rank1 evaluate`` as a library: rerank a first-stage run with Rank1 and measure it, the paper's setting.

Rank1 is evaluated by reranking a first-stage top-100 (BM25 on BRIGHT, TREC DL, BEIR) and reporting nDCG@10.
This package does that for your data::

    from rank1_client import Rank1Client
    from rank1_client.evaluate import evaluate, load_collection

    collection = load_collection(run=Path("bm25.trec"), qrels=Path("qrels.txt"), queries=Path("queries.jsonl"),
                                 corpus=Path("corpus.jsonl"), top_k=100)
    with Rank1Client("localhost:8001") as client:
        report = evaluate(client, collection, budgets=[256, 1024, None], out_dir=Path("report"))
    print(report.table())

Metrics come from ir-measures (trec_eval's definitions), the significance test from scipy and the plots from
matplotlib: ``pip install 'rank1-client[evaluate]'``. They are imported when used, so ``import rank1_client`` does
not need them. ``ir_datasets`` ids (``load_collection(dataset="beir/scifact/test", run=...)``) need ``pip install
ir_datasets`` and internet access.
"""

from __future__ import annotations

from ._cache import PairCache, PairScore, pair_key
from ._data import Collection, load_collection, load_corpus, load_ir_dataset, load_qrels, load_queries
from ._metrics import Comparison, Metrics, compare, compute_metrics, default_measures
from ._runner import BudgetResult, Cost, EvaluationFailed, EvaluationReport, budget_label, evaluate

__all__ = [
    "BudgetResult",
    "Collection",
    "Comparison",
    "Cost",
    "EvaluationFailed",
    "EvaluationReport",
    "Metrics",
    "PairCache",
    "PairScore",
    "budget_label",
    "compare",
    "compute_metrics",
    "default_measures",
    "evaluate",
    "load_collection",
    "load_corpus",
    "load_ir_dataset",
    "load_qrels",
    "load_queries",
    "pair_key",
]
