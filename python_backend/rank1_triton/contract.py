"""The tensor contracts of the two Triton models, and the limits every layer shares (no numpy: build/ imports it).

Engine model (``tensorrt_llm``): names, dtypes and dims of NVIDIA's TensorRT-LLM 1.2.x model
(``triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt``), restricted to the tensors the
entry model uses, plus the PyTorch engine's fused-answer extension. Entry model (``rank1``): the public API
(docs/api.md). Tests check both model configs, the build tool and the client against these tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a Triton model config (dims exclude the batch dimension)."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    optional: bool = False


def names(specs: tuple[TensorSpec, ...]) -> tuple[str, ...]:
    """The tensor names of a table, in order."""
    return tuple(spec.name for spec in specs)


# --- shared limits ---------------------------------------------------------------------------------------------
DEFAULT_MAX_REASONING_TOKENS = 8192
# Room kept after prompt + budget for the forced "\n</think>" suffix and the answer position.
ANSWER_RESERVE_TOKENS = 8
# Documents one rerank request may carry (the client splits longer lists), and engine requests waiting at most.
DEFAULT_MAX_DOCUMENTS = 256
DEFAULT_ENGINE_QUEUE_SIZE = 4096
# The entry model's limits per instance: rerank requests at once, engine (BLS) calls in flight, and threads for the
# stop requests that cancel engine calls (their own, so a stop never waits behind the calls it cancels).
DEFAULT_MAX_CONCURRENT_REQUESTS = 64
DEFAULT_BLS_CONCURRENCY = 128
STOP_REQUEST_CONCURRENCY = 16
# Triton's Python backend runs every BLS call and every response sent through a response sender on a thread of a
# pool per model instance, 32 threads unless `--backend-config=python,thread-pool-size=N` (python_backend
# src/python_be.cc, r24.10 and r26.05: `thread_pool_size = 32`, ExecuteBLSRequest blocks its thread until the
# engine answers). The pool must hold all of one entry instance's calls, stops and responses at once, or the
# 33rd document (and every stop request) waits for a running document to finish.
PYTHON_BACKEND_THREAD_POOL_SIZE = 256
PYTHON_BACKEND_THREAD_POOL_FLAG = f"--backend-config=python,thread-pool-size={PYTHON_BACKEND_THREAD_POOL_SIZE}"
# Tokens one step of the PyTorch engine's in-flight scheduler feeds through the model (TensorRT-LLM: max_num_tokens).
DEFAULT_MAX_NUM_TOKENS = 1024
# The official rank1.py serves with max_model_len=16000; 16384 keeps the default reasoning budget within half the
# context, where the entry model caps its default budget.
DEFAULT_MAX_CONTEXT_TOKENS = 16384

# --- engine model ----------------------------------------------------------------------------------------------
ENGINE_MODEL_NAME = "tensorrt_llm"
ENGINE_INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("input_ids", "TYPE_INT32", (-1,), optional=True),
    TensorSpec("input_lengths", "TYPE_INT32", (1,)),
    TensorSpec("request_output_len", "TYPE_INT32", (1,)),
    TensorSpec("end_id", "TYPE_INT32", (1,), optional=True),
    TensorSpec("pad_id", "TYPE_INT32", (1,), optional=True),
    TensorSpec("stop_words_list", "TYPE_INT32", (2, -1), optional=True),
    TensorSpec("runtime_top_k", "TYPE_INT32", (1,), optional=True),
    TensorSpec("return_generation_logits", "TYPE_BOOL", (1,), optional=True),
    TensorSpec("exclude_input_in_output", "TYPE_BOOL", (1,), optional=True),
    # True cancels the in-flight request with the same request id (NVIDIA's tensorrt_llm_bls sends it from
    # lib/triton_decoder.py send_cancellation_request, with empty input_ids and request_output_len 0).
    TensorSpec("stop", "TYPE_BOOL", (1,), optional=True),
)
ENGINE_OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("output_ids", "TYPE_INT32", (-1, -1)),
    TensorSpec("sequence_length", "TYPE_INT32", (-1,)),
    TensorSpec("generation_logits", "TYPE_FP32", (-1, -1, -1)),
)
# Extension of the PyTorch engine, advertised by the config parameter FUSED_ANSWER_STEP_PARAMETER.
FUSED_ANSWER_INPUTS: tuple[TensorSpec, ...] = (TensorSpec("answer_token_ids", "TYPE_INT32", (-1,), optional=True),)
FUSED_ANSWER_OUTPUTS: tuple[TensorSpec, ...] = (TensorSpec("answer_logits", "TYPE_FP32", (-1,)),)
FUSED_ANSWER_STEP_PARAMETER = "rank1_fused_answer_step"
MAX_CONTEXT_PARAMETER = "rank1_max_context_tokens"
# The PyTorch engine model's batching: "inflight" (token-level, the default) or "static" (kept for comparison).
SCHEDULER_PARAMETER = "rank1_scheduler"
SCHEDULERS = ("inflight", "static")
# Values of the PyTorch engine model's ``dtype`` parameter.
TORCH_DTYPES = ("float32", "bfloat16", "float16")

# --- entry model -----------------------------------------------------------------------------------------------
ENTRY_MODEL_NAME = "rank1"
ENTRY_INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("query", "TYPE_STRING", (1,)),
    TensorSpec("documents", "TYPE_STRING", (-1,)),
    TensorSpec("instruction", "TYPE_STRING", (1,), optional=True),
    TensorSpec("prompt", "TYPE_STRING", (1,), optional=True),
)
ENTRY_OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("scores", "TYPE_FP32", (-1,)),
    TensorSpec("ranking", "TYPE_INT32", (-1,)),
    TensorSpec("reasoning", "TYPE_STRING", (-1,)),
    TensorSpec("reasoning_tokens", "TYPE_INT32", (-1,)),
    TensorSpec("forced", "TYPE_BOOL", (-1,)),
    TensorSpec("truncated", "TYPE_BOOL", (-1,)),
)
# Request parameters of the entry model (KServe v2 "parameters").
ENTRY_PARAMETERS = ("max_reasoning_tokens", "rethink", "return_reasoning", "top_n", "truncate")
TRUNCATE_MODES = ("END", "NONE")
MAX_RETHINK = 8
