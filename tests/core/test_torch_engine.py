"""The batched PyTorch engine against plain per-sequence greedy decoding with transformers."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from rank1_triton.engines.base import GenerationRequest
from rank1_triton.engines.torch_engine import TorchEngine
from rank1_triton.errors import RequestError
from rank1_triton.fixtures.cache import ensure_random_model
from rank1_triton.fixtures.toy_task import make_examples
from rank1_triton.reranker import ScoringOptions

EOS, THINK_END = 151643, 151666


def greedy(model, ids: list[int], steps: int, end_id: int, stop: list[int] | None = None):
    """Plain greedy decoding by full recomputation: (generated ids, logits of each step)."""
    generated, step_logits = [], []
    for _ in range(steps):
        with torch.inference_mode():
            logits = model(torch.tensor([ids + generated])).logits[0, -1].float()
        step_logits.append(logits)
        token = int(logits.argmax())
        if token == end_id:
            break
        generated.append(token)
        if stop and generated[-len(stop):] == stop:
            break
    return generated, step_logits


@pytest.fixture(scope="module")
def toy_prompts(toy_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(toy_model_dir)
    return [tokenizer(e.prompt).input_ids for e in make_examples(12, seed=7)]


def test_batched_generation_equals_per_sequence_greedy(toy_model_dir, toy_prompts, engine_cache, hf_model_cache):
    engine, model = engine_cache(toy_model_dir), hf_model_cache(toy_model_dir)
    requests = [GenerationRequest(p, 24, EOS, EOS, stop_words=[[THINK_END]]) for p in toy_prompts]
    results = engine.generate(requests)
    lengths = set()
    for prompt, result in zip(toy_prompts, results, strict=True):
        expected, _ = greedy(model, prompt, 24, EOS, [THINK_END])
        assert result.output_ids == expected
        lengths.add(len(expected))
    assert len(lengths) > 2, "the batch should hold sequences that finish at different steps"


def test_answer_logits_are_those_after_the_stop_word(toy_model_dir, toy_prompts, engine_cache, hf_model_cache):
    engine, model = engine_cache(toy_model_dir), hf_model_cache(toy_model_dir)
    requests = [GenerationRequest(p, 24, EOS, EOS, stop_words=[[THINK_END]], answer_token_ids=[830, 895])
                for p in toy_prompts[:4]]
    for prompt, result in zip(toy_prompts, engine.generate(requests), strict=False):
        assert result.output_ids[-1] == THINK_END
        with torch.inference_mode():
            full = model(torch.tensor([prompt + result.output_ids])).logits[0, -1]
        np.testing.assert_allclose(result.answer_logits, full[[830, 895]].numpy(), atol=1e-4)


def test_budget_end_id_and_generation_logits(random_model_dir, engine_cache, hf_model_cache, rank1_tokenizer):
    engine, model = engine_cache(random_model_dir), hf_model_cache(random_model_dir)
    prompt = rank1_tokenizer.tokenizer("Query: q\nPassage: p\n<think>").input_ids
    first, step_logits = greedy(model, prompt, 1, EOS)
    (result,) = engine.generate([GenerationRequest(prompt, 5, EOS, EOS, return_generation_logits=True)])
    assert len(result.output_ids) == 5 and result.output_ids[0] == first[0]
    assert result.generation_logits.shape == (5, model.config.vocab_size)
    np.testing.assert_allclose(result.generation_logits[0], step_logits[0].numpy(), atol=1e-4)
    # Make the first greedy token the end id: generation stops and the end id is not returned.
    (stopped,) = engine.generate([GenerationRequest(prompt, 5, first[0], EOS)])
    assert stopped.output_ids == []
    assert stopped.answer_logits is None


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (GenerationRequest([], 4, EOS, EOS), "input_ids"),
        (GenerationRequest([1, 2], 0, EOS, EOS), "request_output_len"),
        (GenerationRequest([1, 10**7], 4, EOS, EOS), "input_ids"),
        (GenerationRequest([1, 2], 5000, EOS, EOS), "request_output_len"),
        (GenerationRequest([1], 4, EOS, EOS, answer_token_ids=[-1]), "answer_token_ids"),
    ],
)
def test_check_names_the_bad_tensor(random_model_dir, engine_cache, request_, field):
    with pytest.raises(RequestError) as error:
        engine_cache(random_model_dir).check(request_)
    assert error.value.field == field


@pytest.mark.parametrize("arch", ["llama", "mistral"])
def test_other_rank1_bases_load_and_score(arch, reranker_for):
    reranker = reranker_for(ensure_random_model(arch))
    options = ScoringOptions(max_reasoning_tokens=6)
    results = reranker.rerank("a query", ["first passage.", "second one"], options=options)
    assert [r.forced for r in results] == [True, True]
    assert all(0.0 < r.score < 1.0 and r.reasoning_tokens == 6 for r in results)


def test_bfloat16_engine_runs(random_model_dir):
    engine = TorchEngine(random_model_dir, dtype="bfloat16")
    (result,) = engine.generate([GenerationRequest([1, 2, 3], 3, EOS, EOS, return_generation_logits=True)])
    assert len(result.output_ids) == 3 and result.generation_logits.dtype == np.float32


def test_without_the_fused_step_the_engine_refuses_answer_token_ids(random_model_dir, engine_cache):
    engine = engine_cache(random_model_dir, False)
    assert not engine.capabilities.fused_answer_step
    request = GenerationRequest([1, 2, 3], 4, EOS, EOS, stop_words=[[THINK_END]], answer_token_ids=[830, 895])
    with pytest.raises(RequestError, match="answer_token_ids: this engine has no fused answer step"):
        engine.check(request)
    plain = GenerationRequest([1, 2, 3], 4, EOS, EOS, stop_words=[[THINK_END]], return_generation_logits=True)
    result = engine.generate([plain])[0]
    assert result.answer_logits is None
    # One row of logits per decoding step (a step that produced the end id has a row but no output token).
    assert len(result.output_ids) <= result.generation_logits.shape[0] <= len(result.output_ids) + 1
