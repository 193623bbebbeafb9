"""The ``rank1`` entry model's tensor contract: one request's inputs and parameters, one response's outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import tritonclient.grpc as grpcclient

from .errors import InvalidRequestError
from .types import Document

TRUNCATE_MODES = ("END", "NONE")
PER_DOCUMENT_OUTPUTS = ("scores", "reasoning_tokens", "forced", "truncated")


def render_document(document: Document, index: int) -> str:
    """The passage text the server scores: ``f"{title} {text}"`` when a title is given, else the text."""
    if isinstance(document, str):
        return document
    try:
        text = document["text"]
    except (KeyError, TypeError):
        raise InvalidRequestError(
            f"documents: element {index} must be a string or a mapping with a 'text' field", field="documents"
        ) from None
    title = document.get("title")
    return f"{title} {text}" if title is not None else str(text)


class RerankKwargs(TypedDict, total=False):
    """The per-call options every rerank method takes as keywords (see :meth:`Rank1Client.rerank`)."""

    top_n: int | None
    instruction: str | None
    prompt: str | None
    max_reasoning_tokens: int | None
    rethink: int | None
    return_reasoning: bool
    return_documents: bool
    truncate: str | None


@dataclass(frozen=True, kw_only=True)
class RerankOptions:
    """The options of one rerank call (``None`` leaves the server's default); built from :class:`RerankKwargs`."""

    top_n: int | None = None
    instruction: str | None = None
    prompt: str | None = None
    max_reasoning_tokens: int | None = None
    rethink: int | None = None
    return_reasoning: bool = False
    return_documents: bool = False
    truncate: str | None = None

    def __post_init__(self) -> None:
        if self.top_n is not None and self.top_n < 1:
            raise InvalidRequestError(f"top_n: must be at least 1, got {self.top_n}", field="top_n")
        if self.truncate is not None and self.truncate not in TRUNCATE_MODES:
            raise InvalidRequestError(
                f"truncate: must be one of {', '.join(TRUNCATE_MODES)}, got {self.truncate!r}", field="truncate"
            )

    def parameters(self) -> dict[str, int | bool | str]:
        """Request parameters for the server (``top_n`` is applied by the client after merging chunks)."""
        parameters: dict[str, int | bool | str] = {}
        if self.max_reasoning_tokens is not None:
            parameters["max_reasoning_tokens"] = self.max_reasoning_tokens
        if self.rethink is not None:
            parameters["rethink"] = self.rethink
        if self.return_reasoning:
            parameters["return_reasoning"] = True
        if self.truncate is not None:
            parameters["truncate"] = self.truncate
        return parameters


def _bytes_input(name: str, values: Sequence[str]) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode("utf-8") for value in values], dtype=np.object_))
    return tensor


@dataclass(frozen=True)
class ChunkRequest:
    """One request to the server: a query and a slice of the documents starting at ``offset``."""

    query: str
    texts: list[str]
    offset: int
    options: RerankOptions

    def inputs(self) -> list[grpcclient.InferInput]:
        """The input tensors (the same objects serve the sync and the asyncio client)."""
        tensors = [_bytes_input("query", [self.query]), _bytes_input("documents", self.texts)]
        if self.options.instruction is not None:
            tensors.append(_bytes_input("instruction", [self.options.instruction]))
        if self.options.prompt is not None:
            tensors.append(_bytes_input("prompt", [self.options.prompt]))
        return tensors

    def outputs(self) -> list[grpcclient.InferRequestedOutput]:
        """The outputs to send back (``ranking`` is left out: the client ranks after merging)."""
        names = [*PER_DOCUMENT_OUTPUTS, "reasoning"] if self.options.return_reasoning else PER_DOCUMENT_OUTPUTS
        return [grpcclient.InferRequestedOutput(name) for name in names]


@dataclass(frozen=True)
class ScoredChunk:
    """The per-document outputs of one chunk, in the chunk's document order."""

    offset: int
    scores: list[float]
    reasoning_tokens: list[int]
    forced: list[bool]
    truncated: list[bool]
    reasoning: list[str] | None


def read_result(request: ChunkRequest, result: grpcclient.InferResult) -> ScoredChunk:
    """Decode one response; ``result`` comes from the sync or the asyncio client."""
    reasoning = None
    if request.options.return_reasoning:
        reasoning = [item.decode("utf-8", errors="replace") for item in result.as_numpy("reasoning").reshape(-1)]
    return ScoredChunk(
        offset=request.offset,
        scores=[float(x) for x in result.as_numpy("scores").reshape(-1)],
        reasoning_tokens=[int(x) for x in result.as_numpy("reasoning_tokens").reshape(-1)],
        forced=[bool(x) for x in result.as_numpy("forced").reshape(-1)],
        truncated=[bool(x) for x in result.as_numpy("truncated").reshape(-1)],
        reasoning=reasoning,
    )
