"""A greedy-decoding engine on PyTorch/transformers for any Rank1 checkpoint.

``TorchEngine`` loads the model and owns the decode step (``forward`` + ``advance``). Its ``generate`` is the
static batcher: requests sorted by length run in batches (left padding, one prefill, then decoding with a KV
cache) until the batch's slowest sequence is done; a sequence leaves the batch as soon as it is done, so the
rest run faster. ``inflight.InflightScheduler`` runs the same step with sequences joining and leaving between
steps (what the engine model serves by default). When a request asks for ``answer_token_ids``, a sequence that
ends on a stop word stays for one more step: the stop word is fed through the cache and the logits of those ids
at the answer position are returned — the answer step costs one decode step, not a second prefill. Given a
``ThinkEndFinder``, a sequence also stops where its decoded text ends with ``</think>``, whatever its tokens.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from ..contract import TORCH_DTYPES
from ..errors import RequestError
from ..scoring import ThinkEndFinder, ends_with
from .base import EngineCapabilities, GenerationRequest, GenerationResult

LOGGER = logging.getLogger(__name__)

DTYPES = dict(zip(TORCH_DTYPES, (torch.float32, torch.bfloat16, torch.float16), strict=True))


@dataclass
class SequenceState:
    """Decoding state of one request inside a batch."""

    request: GenerationRequest
    output_ids: list[int] = field(default_factory=list)
    generation_logits: list[np.ndarray] = field(default_factory=list)
    answer_logits: np.ndarray | None = None
    awaiting_answer: bool = False  # ended on a stop word; the next step reads the answer logits

    def result(self) -> GenerationResult:
        logits = np.stack(self.generation_logits) if self.request.return_generation_logits else None
        return GenerationResult(list(self.output_ids), logits, self.answer_logits)


class TorchEngine:
    """Greedy generation for Qwen2 / Llama / Mistral causal LMs (local folder or hub id)."""

    def __init__(
        self,
        model_name_or_path: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        max_batch_size: int = 64,
        max_context_tokens: int | None = None,
        attn_implementation: str = "sdpa",
        fused_answer_step: bool = True,
        think_end: ThinkEndFinder | None = None,
    ) -> None:
        """Load a checkpoint; ``fused_answer_step=False`` makes the engine behave as TensorRT-LLM's (no
        ``answer_token_ids``: the caller sends a one-token answer request instead). With ``think_end`` a
        sequence also stops where its text ends with ``</think>`` (any tokenization), as the official stop string
        does; TensorRT-LLM stops on the token-level stop words only."""
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.device = torch.device(device)
        self.think_end = think_end
        self.model = AutoModelForCausalLM.from_pretrained(
            str(model_name_or_path), dtype=DTYPES[dtype], attn_implementation=attn_implementation
        ).to(self.device)
        self.model.eval()
        # transformers renamed `past_key_values` to `cache` in 5.x; accept both generations of the API.
        forward_parameters = inspect.signature(self.model.forward).parameters
        self._cache_argument = "cache" if "cache" in forward_parameters else "past_key_values"
        model_context = int(getattr(self.model.config, "max_position_embeddings", 32768))
        self._capabilities = EngineCapabilities(
            fused_answer_step=fused_answer_step,
            max_context_tokens=min(max_context_tokens or model_context, model_context),
            max_batch_size=max_batch_size,
        )
        LOGGER.info("loaded %s (%s, %s, context %d)", model_name_or_path, dtype, device,
                    self._capabilities.max_context_tokens)

    @property
    def capabilities(self) -> EngineCapabilities:
        """Fused answer step and the context length this engine serves."""
        return self._capabilities

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Run all requests; results come back in request order."""
        for request in requests:
            self.check(request)
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].input_ids))
        results: dict[int, GenerationResult] = {}
        batch_size = self._capabilities.max_batch_size
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            results.update(zip(chunk, self._generate_batch([requests[i] for i in chunk]), strict=True))
        assert len(results) == len(requests), "every request gets exactly one result"
        return [results[index] for index in range(len(requests))]

    def check(self, request: GenerationRequest) -> None:
        """Raise RequestError (naming the tensor) if this engine cannot run ``request``."""
        length = len(request.input_ids)
        if length == 0:
            raise RequestError("input_ids", "is empty")
        if request.request_output_len < 1:
            raise RequestError("request_output_len", f"must be at least 1, got {request.request_output_len}")
        vocab = self.model.config.vocab_size
        if any(not 0 <= t < vocab for t in request.input_ids):
            raise RequestError("input_ids", f"token ids must be in [0, {vocab})")
        extra = 1 if request.answer_token_ids else 0
        if request.answer_token_ids and not self._capabilities.fused_answer_step:
            raise RequestError("answer_token_ids", "this engine has no fused answer step (rank1_fused_answer_step is "
                               "false, as on TensorRT-LLM): send a one-token request with return_generation_logits")
        if any(not 0 <= t < vocab for t in request.answer_token_ids):
            raise RequestError("answer_token_ids", f"token ids must be in [0, {vocab})")
        context = self._capabilities.max_context_tokens
        if length + request.request_output_len + extra > context:
            raise RequestError(
                "request_output_len",
                f"{length} input tokens + {request.request_output_len} output tokens exceed the engine's context "
                f"of {context} tokens",
            )

    def _generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        sequences = [SequenceState(r) for r in requests]
        width = max(len(r.input_ids) for r in requests)
        input_ids = torch.zeros((len(requests), width), dtype=torch.long)
        attention_mask = torch.zeros((len(requests), width), dtype=torch.long)
        for row, request in enumerate(requests):
            padding = width - len(request.input_ids)
            input_ids[row, :padding] = request.pad_id
            input_ids[row, padding:] = torch.tensor(request.input_ids, dtype=torch.long)
            attention_mask[row, padding:] = 1
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)

        cache = DynamicCache()
        active = list(range(len(sequences)))  # batch row -> index into `sequences`
        logits = self.forward(input_ids, attention_mask, positions, cache)
        positions = positions[:, -1:]
        while True:
            next_ids = logits.argmax(-1).tolist()
            keep_rows: list[int] = []
            for row, index in enumerate(active):
                if advance(sequences[index], logits[row], next_ids[row], self.think_end):
                    keep_rows.append(row)
            if not keep_rows:
                break
            if len(keep_rows) < len(active):
                rows = torch.tensor(keep_rows, device=self.device)
                cache.batch_select_indices(rows)
                attention_mask, positions = attention_mask[rows], positions[rows]
                active = [active[row] for row in keep_rows]
            step_ids = torch.tensor([[next_ids[row]] for row in keep_rows], device=self.device)
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=-1)
            positions = positions + 1
            logits = self.forward(step_ids, attention_mask, positions, cache)
        return [s.result() for s in sequences]

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor, cache: DynamicCache
    ) -> torch.Tensor:
        """One forward over new tokens with the cache; the float32 logits of each row's last position."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_argument: cache},
        )
        return out.logits[:, -1, :].float()


def advance(sequence: SequenceState, logits: torch.Tensor, next_id: int,
            think_end: ThinkEndFinder | None = None) -> bool:
    """Apply one step's logits to a sequence; True while it still needs the batch.

    A sequence ends on the end id, at its budget, or on a stop word: token ids, or (with ``think_end``) text that
    ends with ``</think>``. A stop with ``answer_token_ids`` keeps it one more step for the answer logits.
    """
    request = sequence.request
    if sequence.awaiting_answer:
        sequence.answer_logits = logits[list(request.answer_token_ids)].cpu().numpy()
        return False
    if request.return_generation_logits:
        sequence.generation_logits.append(logits.cpu().numpy())
    if next_id == request.end_id:
        return False
    sequence.output_ids.append(next_id)
    stopped = any(ends_with(sequence.output_ids, word) for word in request.stop_words)
    if stopped or (think_end is not None and think_end.ends_thinking(sequence.output_ids)):
        sequence.awaiting_answer = bool(request.answer_token_ids)
        return sequence.awaiting_answer
    return len(sequence.output_ids) < request.request_output_len
