"""The in-flight scheduler: a request joining a running batch gets what it would get alone; cancel; queue bound.

The expectations are plain per-sequence greedy decoding with transformers (``greedy``: full recomputation, no
cache, no batch) and the static engine's reranker; the scheduler's limits are set small so that requests queue,
join running batches, share prefixes and have their prefill chunked.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch
from test_torch_engine import EOS, THINK_END, greedy
from transformers import AutoTokenizer

from rank1_triton.engines.base import GenerationRequest
from rank1_triton.engines.inflight import InflightScheduler, SchedulerLimits
from rank1_triton.engines.triton_bls import is_unavailable
from rank1_triton.errors import EngineQueueFullError, RequestCancelledError, RequestError
from rank1_triton.fixtures.toy_task import make_examples, make_ranking_queries
from rank1_triton.reranker import Rank1Reranker, ScoringOptions
from rank1_triton.tokenization import Rank1Tokenizer

ANSWER_IDS = [830, 895]
LONG = 3000  # a budget the random model never finishes within a test: it has to be cancelled


@pytest.fixture
def scheduler_for(engine_cache):
    started: list[InflightScheduler] = []

    def start(path, limits: SchedulerLimits | None = None, fused_answer_step: bool = True):
        scheduler = InflightScheduler(engine_cache(path, fused_answer_step), limits or SchedulerLimits())
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        scheduler.close()


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def toy_prompts(toy_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(toy_model_dir)
    return [tokenizer(e.prompt).input_ids for e in make_examples(10, seed=11)]


def assert_equals_greedy(model, prompt, request, result, steps=24):
    expected, step_logits = greedy(model, prompt, steps, EOS, [THINK_END])
    assert result.output_ids == expected
    if request.return_generation_logits:
        np.testing.assert_allclose(result.generation_logits, torch.stack(step_logits).numpy(), atol=1e-4)
    if request.answer_token_ids:
        with torch.inference_mode():
            full = model(torch.tensor([prompt + result.output_ids])).logits[0, -1]
        np.testing.assert_allclose(result.answer_logits, full[ANSWER_IDS].numpy(), atol=1e-4)


def test_requests_joining_a_running_batch_get_what_they_get_alone(toy_model_dir, toy_prompts, scheduler_for,
                                                                  hf_model_cache):
    model = hf_model_cache(toy_model_dir)
    # 64 tokens per step: while sequences decode, one ~40-token prompt at a time fits, so the rest queue and join.
    scheduler = scheduler_for(toy_model_dir, SchedulerLimits(max_batch_size=4, max_num_tokens=64))
    requests = [GenerationRequest(p, 24, EOS, EOS, stop_words=[[THINK_END]], return_generation_logits=i % 2 == 0,
                                  answer_token_ids=ANSWER_IDS if i % 3 else ()) for i, p in enumerate(toy_prompts)]
    first = [scheduler.submit(r) for r in requests[:2]]
    wait_until(lambda: scheduler.stats.decode_tokens > 0)
    later = [scheduler.submit(r) for r in requests[2:]]
    for prompt, request, ticket in zip(toy_prompts, requests, first + later, strict=True):
        assert_equals_greedy(model, prompt, request, ticket.future.result(timeout=60))
    assert scheduler.stats.joined >= len(later) - 1, "requests should have joined a batch that was decoding"
    assert scheduler.load == (0, 0)


def test_a_prompt_longer_than_a_step_is_prefilled_in_chunks(random_model_dir, scheduler_for, hf_model_cache):
    model = hf_model_cache(random_model_dir)
    scheduler = scheduler_for(random_model_dir, SchedulerLimits(max_batch_size=2, max_num_tokens=40))
    prompt = [int(t) for t in np.random.default_rng(3).integers(100, 5000, size=150)]
    short = GenerationRequest(prompt[:20], 30, EOS, EOS, return_generation_logits=True)
    long = GenerationRequest(prompt, 8, EOS, EOS, return_generation_logits=True)
    tickets = [scheduler.submit(short)]
    wait_until(lambda: scheduler.stats.decode_tokens > 0)
    tickets.append(scheduler.submit(long))
    for request, ticket in zip([short, long], tickets, strict=True):
        assert_equals_greedy(model, list(request.input_ids), request, ticket.future.result(timeout=60),
                             steps=request.request_output_len)
    # Each step fed at most 40 tokens, so 150 prompt tokens took at least four steps next to the decoding one.
    assert scheduler.stats.prefill_tokens == 20 + 150
    assert scheduler.stats.steps >= 150 // (40 - 1)


def test_documents_of_one_query_share_their_prefix_and_match_alone(toy_model_dir, scheduler_for, hf_model_cache):
    model = hf_model_cache(toy_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(toy_model_dir)
    query, passages, _ = make_ranking_queries(1, 6, seed=5)[0]
    reranker_tokenizer = Rank1Tokenizer(tokenizer)
    prompts = [reranker_tokenizer.encode_prompt(query, p, max_tokens=1000, truncate=False).input_ids
               for p in passages]
    scheduler = scheduler_for(toy_model_dir, SchedulerLimits(min_shared_prefix=8))
    requests = [GenerationRequest(list(p), 24, EOS, EOS, stop_words=[[THINK_END]], answer_token_ids=ANSWER_IDS,
                                  return_generation_logits=True) for p in prompts]
    results = scheduler.generate(requests)
    shared = len(prompts[0]) - max(len(p) for p in prompts)  # a lower bound: the query's tokens at least
    assert scheduler.stats.shared_prefix_tokens > 0
    assert scheduler.stats.shared_prefix_tokens >= (len(prompts) - 1) * max(shared, 8)
    for prompt, request, result in zip(prompts, requests, results, strict=True):
        assert_equals_greedy(model, list(prompt), request, result)


@pytest.mark.parametrize("gather", [True, False])
def test_an_idle_engine_lets_a_burst_of_arrivals_share_one_prefill(random_model_dir, scheduler_for, hf_model_cache,
                                                                  gather):
    """The documents of one request arrive one BLS call at a time, a few ms apart."""
    limits = SchedulerLimits(join_gap_s=0.2, join_window_s=2.0) if gather else SchedulerLimits(join_window_s=0)
    scheduler = scheduler_for(random_model_dir, limits)
    requests = [GenerationRequest([5, 6, 7 + i], 40, EOS, EOS, return_generation_logits=True) for i in range(4)]
    tickets = []
    for request in requests:
        tickets.append(scheduler.submit(request))
        time.sleep(0.01)
    for request, ticket in zip(requests, tickets, strict=True):
        assert_equals_greedy(hf_model_cache(random_model_dir), list(request.input_ids), request,
                             ticket.future.result(timeout=60), steps=40)
    if gather:
        assert scheduler.stats.joined == 0, "all four should have been prefilled together"
    else:
        assert scheduler.stats.joined >= 1, "without the window, later arrivals join a running batch"


def test_cancel_drops_a_decoding_sequence_at_the_next_step(random_model_dir, scheduler_for, hf_model_cache):
    scheduler = scheduler_for(random_model_dir)
    running = scheduler.submit(GenerationRequest([5, 6, 7], LONG, EOS, EOS))
    wait_until(lambda: scheduler.stats.decode_tokens > 3)
    running.cancel()
    with pytest.raises(RequestCancelledError):
        running.future.result(timeout=10)
    assert scheduler.stats.cancelled == 1
    assert scheduler.stats.steps_after_cancel <= 1
    assert scheduler.load == (0, 0)
    request = GenerationRequest([5, 6, 7, 8], 5, EOS, EOS, return_generation_logits=True)
    assert_equals_greedy(hf_model_cache(random_model_dir), [5, 6, 7, 8], request,
                         scheduler.submit(request).future.result(timeout=30), steps=5)


def test_the_callers_own_is_cancelled_is_polled(random_model_dir, scheduler_for):
    scheduler = scheduler_for(random_model_dir, SchedulerLimits(cancel_poll_s=0.05))
    gone = threading.Event()
    ticket = scheduler.submit(GenerationRequest([5, 6, 7], LONG, EOS, EOS), is_cancelled=gone.is_set)
    wait_until(lambda: scheduler.stats.decode_tokens > 3)
    gone.set()
    with pytest.raises(RequestCancelledError):
        ticket.future.result(timeout=10)
    assert scheduler.load == (0, 0)


def test_a_cancellation_landing_mid_step_drops_the_sequence_once(random_model_dir, scheduler_for, hf_model_cache):
    # While one step drops a cancelled sequence, a second one's cancellation lands (as a concurrent stop request
    # does): the second must be finished once and leave the batch, and their neighbour must carry on unharmed.
    scheduler = scheduler_for(random_model_dir, SchedulerLimits(cancel_poll_s=0.0))
    looks = {"first": 0, "second_since_first": 0}

    def first_cancelled() -> bool:
        looks["first"] += 1
        return looks["first"] > 3

    def second_cancelled() -> bool:  # false at its first look after the first turned true, true from the next on
        if looks["first"] <= 3:
            return False
        looks["second_since_first"] += 1
        return looks["second_since_first"] > 1

    tickets = [scheduler.submit(GenerationRequest([5, 6, 7], LONG, EOS, EOS), is_cancelled=first_cancelled),
               scheduler.submit(GenerationRequest([5, 6, 9], LONG, EOS, EOS), is_cancelled=second_cancelled)]
    neighbour_request = GenerationRequest([5, 6, 7, 8], 40, EOS, EOS)
    neighbour = scheduler.submit(neighbour_request)
    for ticket in tickets:
        with pytest.raises(RequestCancelledError):
            ticket.future.result(timeout=30)
    assert_equals_greedy(hf_model_cache(random_model_dir), [5, 6, 7, 8], neighbour_request,
                         neighbour.future.result(timeout=60), steps=40)
    assert scheduler.stats.cancelled == 2
    assert scheduler.load == (0, 0)


def test_cancelling_the_awaiting_task_cancels_the_request(random_model_dir, scheduler_for):
    scheduler = scheduler_for(random_model_dir)

    async def abandon():
        task = asyncio.ensure_future(scheduler.agenerate_one(GenerationRequest([5, 6, 7], LONG, EOS, EOS)))
        while scheduler.stats.decode_tokens < 3:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(abandon())
    wait_until(lambda: scheduler.load == (0, 0), timeout_s=10)
    assert scheduler.stats.cancelled == 1


def test_the_queue_bound_rejects_with_the_unavailable_message(random_model_dir, scheduler_for):
    scheduler = scheduler_for(random_model_dir, SchedulerLimits(max_batch_size=1, max_num_tokens=64,
                                                                max_queue_size=1))
    running = scheduler.submit(GenerationRequest([5, 6, 7], LONG, EOS, EOS))
    wait_until(lambda: scheduler.stats.decode_tokens > 0)
    queued = scheduler.submit(GenerationRequest([5, 6], 4, EOS, EOS))
    with pytest.raises(EngineQueueFullError) as error:
        scheduler.submit(GenerationRequest([5], 4, EOS, EOS))
    assert "Exceeds maximum queue size" in str(error.value) and is_unavailable(str(error.value))
    assert scheduler.load == (1, 1)
    queued.cancel()  # a waiting request can be cancelled too
    with pytest.raises(RequestCancelledError):
        queued.future.result(timeout=10)
    running.cancel()
    wait_until(lambda: scheduler.load == (0, 0))


def test_a_bad_request_is_refused_at_submit(random_model_dir, scheduler_for):
    scheduler = scheduler_for(random_model_dir)
    with pytest.raises(RequestError, match="request_output_len"):
        scheduler.submit(GenerationRequest([5, 6], 0, EOS, EOS))
    assert scheduler.load == (0, 0)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_num_tokens"):
        SchedulerLimits(max_batch_size=64, max_num_tokens=64)


def test_the_reranker_over_the_scheduler_matches_the_static_engine(toy_model_dir, fused_answer_step, scheduler_for,
                                                                   reranker_for):
    static = reranker_for(toy_model_dir, fused_answer_step)
    scheduler = scheduler_for(toy_model_dir, SchedulerLimits(max_batch_size=3, max_num_tokens=100),
                              fused_answer_step=fused_answer_step)
    inflight = Rank1Reranker(scheduler, static.tokenizer)
    query, passages, _ = make_ranking_queries(1, 8, seed=9)[0]
    options = ScoringOptions(max_reasoning_tokens=24, rethink=1)
    prompts = inflight.encode(query, passages, options=options)
    at_engine = peak = 0

    async def counted(request):  # a document holds its slot across its steps: count documents, not calls
        nonlocal at_engine, peak
        at_engine += 1
        peak = max(peak, at_engine)
        try:
            return await scheduler.agenerate_one(request)
        finally:
            at_engine -= 1

    got = asyncio.run(inflight.ascore(prompts, options, counted))
    # 8 documents, max_batch_size 3: never more than 3 at the engine, so none waited in its queue.
    assert peak == 3
    for mine, want in zip(got, static.score(prompts, options), strict=True):
        assert (mine.reasoning, mine.forced, mine.reasoning_tokens) == (want.reasoning, want.forced,
                                                                        want.reasoning_tokens)
        assert mine.score == pytest.approx(want.score, abs=1e-4)
