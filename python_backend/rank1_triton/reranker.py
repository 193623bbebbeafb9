"""The Rank1 algorithm over any engine: think, answer (natural or forced), optionally rethink.

Per document and round:
1. Thinking: greedy generation from the prompt, stopped by ``</think>`` or the budget (``request_output_len``).
2. Answer: NATURAL (ended with ``</think>``) reads the `` true``/`` false`` logits right after it — from the
   engine's fused answer step when it offers one, else from a one-token request over prompt + reasoning
   (``return_generation_logits``; KV-cache reuse makes it cheap on TensorRT-LLM). FORCED (budget spent or
   end-of-sequence) trims the text to its last sentence and scores ``prompt + "\\n" + text + "\\n</think>"``.
3. Rethink (``rethink`` times): cut at the final ``</think>``, append ``"\\nWait"``, think again; the last
   answer gives the score and reasoning tokens add up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from .contract import ANSWER_RESERVE_TOKENS, DEFAULT_MAX_REASONING_TOKENS
from .engines.base import Engine, GenerationRequest, GenerationResult
from .errors import RequestCancelledError, RequestError
from .prompts import RETHINK_TEXT, THINK_END, compose_query, passage_from
from .scoring import ThinkEndFinder, relevance_score, strip_end_id, think_end_stop_words, trim_to_last_sentence
from .tokenization import EncodedPrompt, Rank1Tokenizer, trusted

if TYPE_CHECKING:
    from typing_extensions import Unpack

# How often ascore asks whether its caller cancelled (Triton's request.is_cancelled() is an IPC round trip).
CANCEL_POLL_S = 0.1


@dataclass(frozen=True)
class ScoringOptions:
    """Per-request knobs of the algorithm."""

    max_reasoning_tokens: int = DEFAULT_MAX_REASONING_TOKENS
    rethink: int = 0
    truncate: bool = True


class TemplateOptions(TypedDict, total=False):
    """How a query is put into the prompt: an instruction appended, a dataset or custom prompt applied."""

    instruction: str | None
    prompt: str | None


@dataclass(frozen=True)
class DocumentScore:
    """The outcome for one (query, passage) pair."""

    score: float
    reasoning: str
    reasoning_tokens: int
    forced: bool
    truncated: bool


# One document's algorithm without I/O: yields one engine request at a time, receives its result.
DocumentSteps = Generator[GenerationRequest, GenerationResult, "DocumentScore"]
# A batch of documents in lockstep rounds: yields one request per unfinished document.
ScoringSteps = Generator[list[GenerationRequest], list[GenerationResult], list["DocumentScore"]]


@dataclass
class _Pair:
    """Mutable state of one pair across rounds."""

    prompt: EncodedPrompt
    input_ids: list[int]
    reasoning: str = ""
    reasoning_tokens: int = 0
    score: float = 0.5
    forced: bool = False


class Rank1Reranker:
    """Scores (query, passage) pairs with Rank1 over an engine speaking the TensorRT-LLM contract."""

    def __init__(self, engine: Engine, tokenizer: Rank1Tokenizer) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self._stop_words = think_end_stop_words(
            lambda text: tokenizer.encode([trusted(text)], add_special_tokens=False))
        self._think_end = ThinkEndFinder(tokenizer.decode)

    @property
    def max_context_tokens(self) -> int:
        """The context the engine serves: prompt + reasoning + answer must fit in it."""
        return self.engine.capabilities.max_context_tokens

    @property
    def max_reasoning_tokens_limit(self) -> int:
        """The largest budget that leaves room for a one-token prompt and the answer reserve."""
        return self.max_context_tokens - ANSWER_RESERVE_TOKENS - 1

    def prompt_budget(self, options: ScoringOptions) -> int:
        """How many prompt tokens fit next to the reasoning budget; RequestError if the budget alone is too big."""
        room = self.max_context_tokens - options.max_reasoning_tokens - ANSWER_RESERVE_TOKENS
        if options.max_reasoning_tokens < 1 or room < 1:
            raise RequestError(
                "max_reasoning_tokens",
                f"must be between 1 and {self.max_reasoning_tokens_limit} for this model's "
                f"context of {self.max_context_tokens} tokens, got {options.max_reasoning_tokens}",
            )
        if options.rethink < 0:
            raise RequestError("rethink", f"must be 0 or more, got {options.rethink}")
        return room

    def encode(
        self,
        query: str,
        documents: Sequence[str | Mapping[str, str]],
        *,
        instruction: str | None = None,
        prompt: str | None = None,
        options: ScoringOptions = ScoringOptions(),
    ) -> list[EncodedPrompt]:
        """Template and tokenize one query against its documents (truncating passages if allowed)."""
        query_text = compose_query(query, instruction, prompt)
        budget = self.prompt_budget(options)
        return [
            self.tokenizer.encode_prompt(query_text, passage_from(d).render(), max_tokens=budget,
                                         truncate=options.truncate)
            for d in documents
        ]

    def rerank(
        self,
        query: str,
        documents: Sequence[str | Mapping[str, str]],
        *,
        options: ScoringOptions = ScoringOptions(),
        **template: Unpack[TemplateOptions],
    ) -> list[DocumentScore]:
        """Score every document for the query (``instruction``/``prompt`` as in :meth:`encode`); in document order."""
        return self.score(self.encode(query, documents, options=options, **template), options)

    def score(self, prompts: Sequence[EncodedPrompt], options: ScoringOptions) -> list[DocumentScore]:
        """Run thinking and answering for encoded prompts (of one or many queries) in shared engine batches."""
        steps = self.score_steps(prompts, options)
        requests = next(steps)
        while True:
            try:
                requests = steps.send(self.engine.generate(requests))
            except StopIteration as done:
                return done.value

    async def ascore(
        self,
        prompts: Sequence[EncodedPrompt],
        options: ScoringOptions,
        agenerate_one: Callable[[GenerationRequest], Awaitable[GenerationResult]],
        cancelled: Callable[[], bool] = lambda: False,
        poll_s: float = CANCEL_POLL_S,
    ) -> list[DocumentScore]:
        """``score`` with an asynchronous engine call per request (the Triton entry model's BLS).

        Each document advances on its own: its next request (the answer step, a rethink) goes out as soon as its
        previous one returns, so the engine still holds its KV blocks. At most the engine's ``max_batch_size``
        documents of one call are at the engine at once (the next starts when one is done): the engine's queue is
        first come, first served, so a request arriving later waits for one free slot, not behind all of these
        documents, and cancelling stops only those that run. ``cancelled`` is polled every ``poll_s``;
        when it turns true, every document's task is cancelled (an engine call in flight is cancelled with it,
        see ``TritonBLSEngine.agenerate_one``) and RequestCancelledError is raised. When one document fails, the
        others are cancelled the same way.
        """

        window = asyncio.Semaphore(self.engine.capabilities.max_batch_size or len(prompts) or 1)

        async def run(steps: DocumentSteps) -> DocumentScore:
            async with window:
                request = next(steps)
                while True:
                    try:
                        request = steps.send(await agenerate_one(request))
                    except StopIteration as done:
                        return done.value

        async def watch() -> None:
            while not cancelled():
                await asyncio.sleep(poll_s)
            raise RequestCancelledError("the request was cancelled")

        tasks = [asyncio.ensure_future(run(self.document_steps(p, options))) for p in prompts]
        results = asyncio.gather(*tasks)
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({results, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if results.done():
                return list(results.result())
            watcher.result()  # raises RequestCancelledError
            raise AssertionError("the watcher ends only by cancellation")
        finally:
            watcher.cancel()
            # One document failed or the caller cancelled: stop the others, the last started first (those may
            # wait in the engine's queue; stopped first, they cannot take the slots freed by stopping the rest).
            for task in reversed(tasks):
                task.cancel()
            # The outcome of the cancelled rest is nobody's concern (and must not be logged as never retrieved).
            results.add_done_callback(lambda gathered: gathered.cancelled() or gathered.exception())

    def score_steps(self, prompts: Sequence[EncodedPrompt], options: ScoringOptions) -> ScoringSteps:
        """Every document's steps in lockstep rounds: yields a batch of requests, receives their results.

        ``score`` drives it with a blocking engine, which then sees one batch per round.
        """
        documents = [self.document_steps(p, options) for p in prompts]
        scores: dict[int, DocumentScore] = {}
        pending = {index: next(steps) for index, steps in enumerate(documents)}
        while pending:
            order = list(pending)
            results = yield [pending[index] for index in order]
            pending = {}
            for index, result in zip(order, results, strict=True):
                try:
                    pending[index] = documents[index].send(result)
                except StopIteration as done:
                    scores[index] = done.value
        return [scores[index] for index in range(len(documents))]

    def document_steps(self, prompt: EncodedPrompt, options: ScoringOptions) -> DocumentSteps:
        """The algorithm for one document without I/O: think, answer, rethink; returns its score."""
        pair = _Pair(prompt, list(prompt.input_ids))
        for round_index in range(options.rethink + 1):
            if round_index > 0 and not self._prepare_rethink(pair):
                break  # no room to think again: the last answer stands
            result = yield self._thinking_request(pair, options)
            answer_input = self._finish_thinking(pair, result)
            if answer_input is not None:
                self._record_answer(pair, (yield self._answer_request(answer_input)))
        return DocumentScore(pair.score, pair.reasoning, pair.reasoning_tokens, pair.forced, prompt.truncated)

    def _thinking_request(self, pair: _Pair, options: ScoringOptions) -> GenerationRequest:
        fused = self.engine.capabilities.fused_answer_step
        return GenerationRequest(
            input_ids=pair.input_ids,
            request_output_len=self._round_budget(pair, options),
            end_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id,
            stop_words=self._stop_words,
            answer_token_ids=self.tokenizer.answer_ids if fused else (),
        )

    def _round_budget(self, pair: _Pair, options: ScoringOptions) -> int:
        room = self.max_context_tokens - len(pair.input_ids) - ANSWER_RESERVE_TOKENS
        return min(options.max_reasoning_tokens, room)

    def _finish_thinking(self, pair: _Pair, result: GenerationResult) -> list[int] | None:
        """Record a thinking phase; score it now (fused answer) or return the input of its one-token answer.

        Thinking ended naturally where the text first ends with ``</think>``; an engine that stopped only on its
        token-level stop words may have written past a form of it that is not among them: that tail is dropped
        and the answer is read right after ``</think>`` with a one-token request.
        """
        generated = strip_end_id(result.output_ids, self.tokenizer.eos_id)
        end = self._think_end.position(generated)
        if end is not None:
            pair.reasoning_tokens += end
            pair.reasoning += self.tokenizer.decode(generated[:end])
            pair.forced = False
            if result.answer_logits is not None and end == len(generated):
                pair.score = relevance_score(float(result.answer_logits[0]), float(result.answer_logits[1]))
                return None
            return pair.input_ids + generated[:end]
        pair.reasoning_tokens += len(generated)
        pair.reasoning += "\n" + trim_to_last_sentence(self.tokenizer.decode(generated)) + "\n" + THINK_END
        pair.forced = True
        return self.tokenizer.encode([*pair.prompt.segments, trusted(pair.reasoning)])

    def _answer_request(self, answer_input: list[int]) -> GenerationRequest:
        """A one-token request whose generation logits hold the answer logits."""
        return GenerationRequest(
            input_ids=answer_input,
            request_output_len=1,
            end_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id,
            return_generation_logits=True,
        )

    def _record_answer(self, pair: _Pair, result: GenerationResult) -> None:
        if result.generation_logits is None:
            raise RuntimeError("the engine returned no generation_logits for an answer request")
        true_id, false_id = self.tokenizer.answer_ids
        first_step = result.generation_logits[0]
        pair.score = relevance_score(float(first_step[true_id]), float(first_step[false_id]))

    def _prepare_rethink(self, pair: _Pair) -> bool:
        """Cut the reasoning at its final ``</think>`` and append ``\nWait``; False when that does not fit."""
        reasoning = pair.reasoning[: -len(THINK_END)] + RETHINK_TEXT
        input_ids = self.tokenizer.encode([*pair.prompt.segments, trusted(reasoning)])
        if self.max_context_tokens - len(input_ids) - ANSWER_RESERVE_TOKENS < 1:
            return False
        pair.reasoning, pair.input_ids = reasoning, input_ids
        return True
