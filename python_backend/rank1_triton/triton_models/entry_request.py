"""The public ``rank1`` model's request and response, independent of Triton's Python API.

Inputs (BYTES, UTF-8): ``query`` [1], ``documents`` [N], optional ``instruction`` [1], ``prompt`` [1].
Request parameters: ``max_reasoning_tokens``, ``rethink``, ``return_reasoning``, ``top_n``, ``truncate``
(``END`` or ``NONE``). Outputs, per document in input order unless noted: ``scores`` FP32, ``ranking`` INT32
(document indices best first, ``top_n`` long), ``reasoning`` BYTES (only when asked), ``reasoning_tokens``
INT32, ``forced`` BOOL, ``truncated`` BOOL. docs/api.md is the user-facing copy of this table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..contract import DEFAULT_MAX_REASONING_TOKENS, ENTRY_PARAMETERS, MAX_RETHINK, TRUNCATE_MODES
from ..errors import RequestError
from ..ranking_metrics import ranking
from ..reranker import DocumentScore, ScoringOptions


@dataclass(frozen=True)
class RerankRequest:
    """A validated request to the ``rank1`` model."""

    query: str
    documents: list[str]
    instruction: str | None
    prompt: str | None
    options: ScoringOptions
    return_reasoning: bool
    top_n: int


def _texts(field: str, value: np.ndarray) -> list[str]:
    texts = []
    for index, item in enumerate(np.asarray(value, dtype=object).reshape(-1)):
        raw = item if isinstance(item, bytes) else str(item).encode()
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            reason = f"{error.reason} at byte {error.start}"
            raise RequestError(field, f"element {index} is not valid UTF-8 ({reason})") from None
    return texts


def _single_text(field: str, tensors: Mapping[str, np.ndarray], *, required: bool) -> str | None:
    if field not in tensors:
        if required:
            raise RequestError(field, "is required")
        return None
    texts = _texts(field, tensors[field])
    if len(texts) != 1:
        raise RequestError(field, f"must hold exactly one string, got {len(texts)}")
    return texts[0]


def _int_parameter(parameters: Mapping[str, object], name: str, default: int, low: int, high: int) -> int:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise RequestError(name, f"must be between {low} and {high}, got {value}")
    return value


def _bool_parameter(parameters: Mapping[str, object], name: str) -> bool:
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(name, f"must be true or false, got {value!r}")
    return value


def parse_parameters(raw: str | Mapping[str, object] | None) -> dict[str, object]:
    """Request parameters as a dict (Triton's Python backend hands them over as a JSON string)."""
    if raw is None or raw == "":
        return {}
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def parse_rerank_request(
    tensors: Mapping[str, np.ndarray],
    parameters: Mapping[str, object],
    *,
    max_documents: int,
    max_reasoning_tokens_limit: int,
    default_max_reasoning_tokens: int = DEFAULT_MAX_REASONING_TOKENS,
) -> RerankRequest:
    """Validate a request; every RequestError names the offending input or parameter."""
    unknown = sorted(set(parameters) - set(ENTRY_PARAMETERS))
    if unknown:
        raise RequestError(unknown[0], f"unknown parameter; known parameters are {', '.join(sorted(ENTRY_PARAMETERS))}")
    query = _single_text("query", tensors, required=True) or ""
    if not query.strip():
        raise RequestError("query", "must not be empty")
    if "documents" not in tensors:
        raise RequestError("documents", "is required")
    documents = _texts("documents", tensors["documents"])
    if not documents:
        raise RequestError("documents", "at least one document is required")
    if len(documents) > max_documents:
        raise RequestError(
            "documents", f"{len(documents)} documents exceed this server's limit of {max_documents} per request; "
            "split the list (the rank1 client does it for you)"
        )
    truncate = parameters.get("truncate", "END")
    if truncate not in TRUNCATE_MODES:
        raise RequestError("truncate", f"must be one of {', '.join(TRUNCATE_MODES)}, got {truncate!r}")
    options = ScoringOptions(
        max_reasoning_tokens=_int_parameter(
            parameters, "max_reasoning_tokens", default_max_reasoning_tokens, 1, max_reasoning_tokens_limit
        ),
        rethink=_int_parameter(parameters, "rethink", 0, 0, MAX_RETHINK),
        truncate=truncate == "END",
    )
    return RerankRequest(
        query=query,
        documents=documents,
        instruction=_single_text("instruction", tensors, required=False),
        prompt=_single_text("prompt", tensors, required=False),
        options=options,
        return_reasoning=_bool_parameter(parameters, "return_reasoning"),
        top_n=_int_parameter(parameters, "top_n", len(documents), 1, max(len(documents), 1)),
    )


def response_tensors(request: RerankRequest, results: Sequence[DocumentScore]) -> dict[str, np.ndarray]:
    """The ``rank1`` model's outputs for one request."""
    scores = [r.score for r in results]
    tensors = {
        "scores": np.asarray(scores, dtype=np.float32),
        "ranking": np.asarray(ranking(scores)[: request.top_n], dtype=np.int32),
        "reasoning_tokens": np.asarray([r.reasoning_tokens for r in results], dtype=np.int32),
        "forced": np.asarray([r.forced for r in results], dtype=np.bool_),
        "truncated": np.asarray([r.truncated for r in results], dtype=np.bool_),
    }
    if request.return_reasoning:
        tensors["reasoning"] = np.asarray([r.reasoning.encode("utf-8") for r in results], dtype=np.object_)
    return tensors
