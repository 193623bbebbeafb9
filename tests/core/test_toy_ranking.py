"""The trained toy model ranks relevant passages first through the engine (a known right answer)."""

import pytest

from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.reranker import ScoringOptions

evaluate = pytest.importorskip("rank1_client.evaluate")  # ir-measures (rank1-client[evaluate])


def test_toy_model_ranks_relevant_passages_first(toy_model_dir, reranker_for):
    reranker = reranker_for(toy_model_dir)
    qrels, run = {}, {}
    for number, (query, passages, labels) in enumerate(make_ranking_queries(6, 16, seed=2024)):
        results = reranker.rerank(query, passages, options=ScoringOptions(max_reasoning_tokens=32))
        assert not any(r.forced for r in results)
        qrels[f"q{number}"] = {f"d{i}": int(label) for i, label in enumerate(labels)}
        run[f"q{number}"] = [(f"d{i}", r.score) for i, r in enumerate(results)]
    mean = evaluate.compute_metrics(qrels, run, ["nDCG@10"]).aggregate["nDCG@10"]
    print(f"toy model nDCG@10 over {len(qrels)} queries x 16 passages: {mean:.3f}")
    assert mean >= 0.9
