"""Thinking ends where the text ends with ``</think>`` (the official stop string), whatever its tokenization.

The model here was trained with a tokenizer that has no ``</think>`` token and closes its reasoning with
``" </think>"`` — BPE pieces that differ from ``</think>`` tokenized alone. The per-pair reference stops on the
decoded text, so parity holds only if the engine and the reranker stop by text too; both answer paths (the
fused step, and TensorRT-LLM's one-token request) and forced answers are checked.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from rank1_triton.fixtures.cache import ensure_toy_model
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.reranker import ScoringOptions
from reference import reference_prompt, reference_score

QUERY, PASSAGES, LABELS = make_ranking_queries(1, 6, seed=21)[0]


@pytest.fixture(scope="module")
def plain_bpe_model_dir():
    return ensure_toy_model(plain_bpe=True)


def test_the_closing_tag_is_plain_bpe_here(plain_bpe_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(plain_bpe_model_dir)
    alone = tokenizer("</think>", add_special_tokens=False).input_ids
    spaced = tokenizer(" </think>", add_special_tokens=False).input_ids
    assert len(alone) > 1, "</think> must not be one token for this test"
    assert spaced[-len(alone):] != alone, "after a space the pieces differ from </think> tokenized alone"


@pytest.mark.parametrize("budget", [48, 6])  # 48: the model closes its reasoning; 6: every answer is forced
def test_text_level_stop_matches_the_reference(budget, plain_bpe_model_dir, fused_answer_step, reranker_for,
                                               hf_model_cache):
    tokenizer = AutoTokenizer.from_pretrained(plain_bpe_model_dir)
    results = reranker_for(plain_bpe_model_dir, fused_answer_step).rerank(
        QUERY, PASSAGES, options=ScoringOptions(max_reasoning_tokens=budget))
    model = hf_model_cache(plain_bpe_model_dir)
    expected = [reference_score(model, tokenizer, reference_prompt(QUERY, p), budget) for p in PASSAGES]
    for got, want in zip(results, expected, strict=True):
        assert got.forced == want.forced
        assert got.reasoning == want.reasoning
        assert got.reasoning_tokens == want.reasoning_tokens
        assert got.score == pytest.approx(want.score, abs=1e-4)
    if budget == 48:
        assert not any(r.forced for r in results), "the model should close its reasoning with ' </think>'"
        assert all(r.reasoning.endswith(" </think>") for r in results)
        assert [r.score > 0.5 for r in results] == LABELS
    else:
        assert all(r.forced for r in results)
