"""Thinking ends where the text ends with ``</think>`` (the official stop string), whatever its tokenization.

The model here was trained with a tokenizer that has no ``</think>`` token and closes its reasoning with
``" </think>"`` — BPE pieces that differ from ``</think>`` tokenized alone. The per-pair reference stops on the
decoded text, so parity holds only if the engine and the reranker stop by text too; both answer paths (the
fused step, and TensorRT-LLM's one-token request) and forced answers are checked.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from rank1_triton.engines.base import GenerationRequest
from rank1_triton.engines.inflight import InflightScheduler
from rank1_triton.engines.torch_engine import TorchEngine
from rank1_triton.fixtures.cache import ensure_toy_model
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.reranker import ScoringOptions
from rank1_triton.scoring import ThinkEndFinder
from rank1_triton.tokenization import Rank1Tokenizer
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


@pytest.mark.parametrize("scheduled", [False, True], ids=["static", "inflight"])
def test_the_engine_stops_where_the_text_ends_with_the_closing_tag(scheduled, plain_bpe_model_dir, hf_model_cache):
    """No stop words at all: the engine finds `` </think>`` in its decoded text, and answers right after it."""
    tokenizer = AutoTokenizer.from_pretrained(plain_bpe_model_dir)
    finder = ThinkEndFinder(Rank1Tokenizer(tokenizer).decode)
    answer_ids = [tokenizer(" true").input_ids[-1], tokenizer(" false").input_ids[-1]]
    prompts = [tokenizer(reference_prompt(QUERY, p)).input_ids for p in PASSAGES]
    requests = [GenerationRequest(p, 48, tokenizer.eos_token_id, tokenizer.eos_token_id, answer_token_ids=answer_ids)
                for p in prompts]
    by_text = TorchEngine(plain_bpe_model_dir, think_end=finder)
    scheduler = InflightScheduler(by_text) if scheduled else None
    try:
        results = scheduler.generate(requests) if scheduler else by_text.generate(requests)
    finally:
        if scheduler:
            scheduler.close()
    unstopped = TorchEngine(plain_bpe_model_dir).generate(requests)  # runs on to its end id or budget
    model = hf_model_cache(plain_bpe_model_dir)
    for prompt, result, full in zip(prompts, results, unstopped, strict=True):
        end = finder.position(full.output_ids)
        assert end is not None and end < len(full.output_ids), "the model closes its reasoning and goes on"
        assert result.output_ids == full.output_ids[:end]
        assert Rank1Tokenizer(tokenizer).decode(result.output_ids).endswith(" </think>")
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + result.output_ids])).logits[0, -1]
        assert result.answer_logits.tolist() == pytest.approx(logits[answer_ids].tolist(), abs=1e-4)
