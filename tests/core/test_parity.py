"""The batched engine + reranker against the per-pair reference of the official semantics (tests/reference.py).

Both tiny models, mixed batches (natural and forced answers together), dataset prompts, instructions,
rethink and truncation. Scores must agree within 1e-4 (fp32) and give the same order.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from rank1_triton.engines.torch_engine import TorchEngine
from rank1_triton.fixtures.toy_task import make_ranking_queries
from rank1_triton.prompts import DATASET_PROMPTS
from rank1_triton.reranker import Rank1Reranker, ScoringOptions
from rank1_triton.tokenization import Rank1Tokenizer
from reference import reference_prompt, reference_score

QUERY, PASSAGES, _ = make_ranking_queries(1, 8, seed=11)[0]
CASES = {
    "plain": {},
    "dataset_prompt": {"prompt": "TRECCOVID"},
    "instruction": {"instruction": "only animals count"},
    "rethink": {"rethink": 1},
}


def assert_parity(results, expected):
    for got, want in zip(results, expected, strict=True):
        assert got.score == pytest.approx(want.score, abs=1e-4)
        assert got.forced == want.forced
        assert got.reasoning == want.reasoning
        assert got.reasoning_tokens == want.reasoning_tokens
    order = sorted(range(len(results)), key=lambda i: -results[i].score)
    assert order == sorted(range(len(expected)), key=lambda i: -expected[i].score)


@pytest.mark.parametrize("case", CASES)
def test_engine_matches_reference(case, model_dir, fused_answer_step, reranker_for, hf_model_cache):
    settings = CASES[case]
    budget = 10
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    results = reranker_for(model_dir, fused_answer_step).rerank(
        QUERY, PASSAGES, instruction=settings.get("instruction"), prompt=settings.get("prompt"),
        options=ScoringOptions(max_reasoning_tokens=budget, rethink=settings.get("rethink", 0)),
    )
    dataset_prompt = DATASET_PROMPTS[settings["prompt"]] if "prompt" in settings else None
    expected = [
        reference_score(
            hf_model_cache(model_dir), tokenizer,
            reference_prompt(QUERY, p, settings.get("instruction"), dataset_prompt), budget, settings.get("rethink", 0),
        )
        for p in PASSAGES
    ]
    assert_parity(results, expected)
    if "toy" in str(model_dir) and case == "plain":
        assert {r.forced for r in results} == {True, False}, "the toy batch should mix natural and forced answers"


def reference_truncation(tokenizer, query: str, passage: str, limit: int) -> tuple[str, bool]:
    """Independent rule: the longest token-boundary prefix of the passage whose prompt has <= limit tokens."""
    if len(tokenizer(reference_prompt(query, passage)).input_ids) <= limit:
        return passage, False
    offsets = tokenizer(passage, add_special_tokens=False, return_offsets_mapping=True).offset_mapping
    for keep in range(len(offsets), -1, -1):
        cut = passage[: offsets[keep - 1][1]] if keep else ""
        if len(tokenizer(reference_prompt(query, cut)).input_ids) <= limit:
            return cut, True
    raise AssertionError("even an empty passage does not fit")


def test_truncation_matches_reference(model_dir, fused_answer_step, hf_model_cache):
    context, budget = 120, 10
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    engine = TorchEngine(model_dir, max_context_tokens=context, fused_answer_step=fused_answer_step)
    reranker = Rank1Reranker(engine, Rank1Tokenizer(tokenizer))
    passages = [" ".join([p] * 20) for p in PASSAGES[:3]] + PASSAGES[3:5]
    results = reranker.rerank(QUERY, passages, options=ScoringOptions(max_reasoning_tokens=budget))
    limit = context - budget - 8
    for passage, result in zip(passages, results, strict=True):
        kept, truncated = reference_truncation(tokenizer, QUERY, passage, limit)
        assert result.truncated == truncated
        expected = reference_score(hf_model_cache(model_dir), tokenizer, reference_prompt(QUERY, kept), budget)
        assert result.score == pytest.approx(expected.score, abs=1e-4)
    assert [r.truncated for r in results] == [True, True, True, False, False]
