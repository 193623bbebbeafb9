"""Engine limits derived from Rank1's request shapes, and GPU memory estimates.

One Rank1 judgment is two engine requests on the same prefix: the reasoning phase (prompt in, up to the
reasoning budget out, stopped at ``</think>``) and the answer step (prompt + reasoning + the closing tag in,
one token out, with its generation logits). The answer step's input is the longest input the engine sees, so
``max_seq_len`` is the context of one judgment (prompt + reasoning + answer reserve) and
``max_input_len = max_seq_len - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rank1_triton.contract import ANSWER_RESERVE_TOKENS, DEFAULT_MAX_CONTEXT_TOKENS, DEFAULT_MAX_REASONING_TOKENS

from .formats import AWQ_GROUP_SIZE, FORMATS, KV_BYTES, KVCache, Quant
from .model import ModelSpec

# KV-cache block size passed to trtllm-build: the answer step reuses every full block of the reasoning phase's
# sequence, so at most TOKENS_PER_BLOCK - 1 prefix tokens are recomputed.
TOKENS_PER_BLOCK = 32

DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_NUM_TOKENS = 8192

GIB = 1024**3
BF16_BYTES = 2
AWQ_SCALE_BYTES = 2


@dataclass(frozen=True)
class EngineShape:
    """The ``trtllm-build`` size limits for a Rank1 engine."""

    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS
    max_reasoning_tokens: int = DEFAULT_MAX_REASONING_TOKENS
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS

    @property
    def max_seq_len(self) -> int:
        """The whole context of one judgment: prompt + reasoning + answer reserve."""
        return self.max_context_tokens

    @property
    def max_input_len(self) -> int:
        """The answer step's input: everything but the one answer token."""
        return self.max_context_tokens - 1

    @property
    def max_prompt_tokens(self) -> int:
        """The prompt room next to a full reasoning budget (the entry model truncates passages to fit it)."""
        return self.max_context_tokens - self.max_reasoning_tokens - ANSWER_RESERVE_TOKENS


def weight_bytes(spec: ModelSpec, quant: Quant, tp_size: int = 1) -> float:
    """Weight bytes per GPU of an engine.

    The decoder layers' projections take the format's bytes per weight (plus one FP16 scale per AWQ group of 128);
    the embedding table, ``lm_head``, norms and biases stay in BF16 (ModelOpt and ``convert_checkpoint.py`` leave
    ``lm_head`` unquantized). The engine stores ``lm_head`` even when the checkpoint ties it to the embedding.
    Projections and ``lm_head`` are split across TP ranks; the embedding table is replicated (no
    ``--use_parallel_embedding``).
    """
    counts = spec.parameter_counts()
    linear = counts.linear * FORMATS[quant].weight_bytes
    if quant is Quant.INT4_AWQ:
        linear += counts.linear / AWQ_GROUP_SIZE * AWQ_SCALE_BYTES
    lm_head = spec.vocab_size * spec.hidden_size * BF16_BYTES
    replicated = (counts.embedding + counts.other) * BF16_BYTES
    return (linear + lm_head) / tp_size + replicated


def kv_bytes_per_token(spec: ModelSpec, kv_cache: KVCache | None, tp_size: int = 1) -> int:
    """KV-cache bytes per token per GPU: 2 (K and V) x layers x KV heads x head dim x bytes per element."""
    return 2 * spec.num_layers * (spec.num_kv_heads // tp_size) * spec.head_dim * KV_BYTES[kv_cache]
