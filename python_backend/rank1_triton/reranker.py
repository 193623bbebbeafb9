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

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass

from .contract import ANSWER_RESERVE_TOKENS, DEFAULT_MAX_REASONING_TOKENS
from .engines.base import Engine, GenerationRequest, GenerationResult
from .errors import RequestCancelledError, RequestError
from .prompts import RETHINK_TEXT, THINK_END, compose_query, passage_from
from .scoring import Ending, relevance_score, strip_end_id, thinking_ending, trim_to_last_sentence
from .tokenization import EncodedPrompt, Rank1Tokenizer, trusted


@dataclass(frozen=True)
class ScoringOptions:
    """Per-request knobs of the algorithm."""

    max_reasoning_tokens: int = DEFAULT_MAX_REASONING_TOKENS
    rethink: int = 0
    truncate: bool = True


@dataclass(frozen=True)
class DocumentScore:
    """The outcome for one (query, passage) pair."""

    score: float
    reasoning: str
    reasoning_tokens: int
    forced: bool
    truncated: bool


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
    answer_input: list[int] | None = None  # pending one-token answer request
    thinking: bool = True


class Rank1Reranker:
    """Scores (query, passage) pairs with Rank1 over an engine speaking the TensorRT-LLM contract."""

    def __init__(self, engine: Engine, tokenizer: Rank1Tokenizer) -> None:
        self.engine = engine
        self.tokenizer = tokenizer

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
        instruction: str | None = None,
        prompt: str | None = None,
        options: ScoringOptions = ScoringOptions(),
    ) -> list[DocumentScore]:
        """Score every document for the query; results are in document order."""
        prompts = self.encode(query, documents, instruction=instruction, prompt=prompt, options=options)
        return self.score(prompts, options)

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
        agenerate: Callable[[list[GenerationRequest]], Awaitable[list[GenerationResult]]],
        cancelled: Callable[[], bool] = lambda: False,
    ) -> list[DocumentScore]:
        """``score`` with an asynchronous engine call (the Triton entry model's BLS).

        ``cancelled`` is checked before each engine call; when it turns true, RequestCancelledError is raised.
        """
        steps = self.score_steps(prompts, options)
        requests = next(steps)
        while True:
            if cancelled():
                steps.close()
                raise RequestCancelledError("the request was cancelled")
            try:
                requests = steps.send(await agenerate(requests))
            except StopIteration as done:
                return done.value

    def score_steps(self, prompts: Sequence[EncodedPrompt], options: ScoringOptions) -> ScoringSteps:
        """The algorithm without I/O: yields engine request batches, receives their results, returns the scores.

        ``score`` drives it with a blocking engine; the Triton entry model drives it with async BLS calls.
        """
        pairs = [_Pair(p, list(p.input_ids)) for p in prompts]
        for round_index in range(options.rethink + 1):
            if round_index > 0:
                self._prepare_rethink(pairs)
            thinking = [pair for pair in pairs if pair.thinking]
            if not thinking:
                break
            results = yield [self._thinking_request(p, options) for p in thinking]
            for pair, result in zip(thinking, results, strict=True):
                self._finish_thinking(pair, result)
            pending = [p for p in thinking if p.answer_input is not None]
            if pending:
                self._record_answers(pending, (yield [self._answer_request(p) for p in pending]))
        return [
            DocumentScore(p.score, p.reasoning, p.reasoning_tokens, p.forced, p.prompt.truncated) for p in pairs
        ]

    def _thinking_request(self, pair: _Pair, options: ScoringOptions) -> GenerationRequest:
        fused = self.engine.capabilities.fused_answer_step
        return GenerationRequest(
            input_ids=pair.input_ids,
            request_output_len=self._round_budget(pair, options),
            end_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id,
            stop_words=[self.tokenizer.think_end_ids],
            answer_token_ids=self.tokenizer.answer_ids if fused else (),
        )

    def _round_budget(self, pair: _Pair, options: ScoringOptions) -> int:
        room = self.max_context_tokens - len(pair.input_ids) - ANSWER_RESERVE_TOKENS
        return min(options.max_reasoning_tokens, room)

    def _finish_thinking(self, pair: _Pair, result: GenerationResult) -> None:
        """Record a thinking phase; score it now (fused answer) or queue its one-token answer request."""
        generated = strip_end_id(result.output_ids, self.tokenizer.eos_id)
        pair.reasoning_tokens += len(generated)
        if thinking_ending(generated, self.tokenizer.think_end_ids) is Ending.NATURAL:
            pair.reasoning += self.tokenizer.decode(generated)
            pair.forced = False
            if result.answer_logits is not None:
                pair.score = relevance_score(float(result.answer_logits[0]), float(result.answer_logits[1]))
                pair.answer_input = None
            else:
                pair.answer_input = pair.input_ids + generated
            return
        pair.reasoning += "\n" + trim_to_last_sentence(self.tokenizer.decode(generated)) + "\n" + THINK_END
        pair.forced = True
        pair.answer_input = self.tokenizer.encode([*pair.prompt.segments, trusted(pair.reasoning)])

    def _answer_request(self, pair: _Pair) -> GenerationRequest:
        """A one-token request whose generation logits hold the answer logits."""
        return GenerationRequest(
            input_ids=pair.answer_input or [],
            request_output_len=1,
            end_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id,
            return_generation_logits=True,
        )

    def _record_answers(self, pairs: Sequence[_Pair], results: Sequence[GenerationResult]) -> None:
        true_id, false_id = self.tokenizer.answer_ids
        for pair, result in zip(pairs, results, strict=True):
            if result.generation_logits is None:
                raise RuntimeError("the engine returned no generation_logits for an answer request")
            first_step = result.generation_logits[0]
            pair.score = relevance_score(float(first_step[true_id]), float(first_step[false_id]))
            pair.answer_input = None

    def _prepare_rethink(self, pairs: Sequence[_Pair]) -> None:
        """Cut each reasoning at its final ``</think>`` and append ``\\nWait``; pairs out of context stop."""
        for pair in pairs:
            if not pair.thinking:
                continue
            reasoning = pair.reasoning[: -len(THINK_END)] + RETHINK_TEXT
            input_ids = self.tokenizer.encode([*pair.prompt.segments, trusted(reasoning)])
            if self.max_context_tokens - len(input_ids) - ANSWER_RESERVE_TOKENS < 1:
                pair.thinking = False  # no room to think again: the last answer stands
                continue
            pair.reasoning, pair.input_ids = reasoning, input_ids
