"""The trained toy model ranks relevant passages first through the engine (a known right answer)."""

from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.ranking_metrics import ndcg_at_k
from rank1_triton.reranker import ScoringOptions


def test_toy_model_ranks_relevant_passages_first(toy_model_dir, reranker_for):
    reranker = reranker_for(toy_model_dir)
    values = []
    for query, passages, labels in make_ranking_queries(6, 16, seed=2024):
        results = reranker.rerank(query, passages, options=ScoringOptions(max_reasoning_tokens=32))
        assert not any(r.forced for r in results)
        values.append(ndcg_at_k([r.score for r in results], [int(x) for x in labels]))
    mean = sum(values) / len(values)
    print(f"toy model nDCG@10 over {len(values)} queries x 16 passages: {mean:.3f}")
    assert mean >= 0.9
