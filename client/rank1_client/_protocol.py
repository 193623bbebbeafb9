"""The ``rank1`` entry model's tensor contract: one request's inputs and parameters, one response's outputs,
and the checks every option gets before anything is sent."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict

import numpy as np
import tritonclient.grpc as grpcclient

from .errors import InvalidRequestError
from .types import Document

TRUNCATE_MODES = ("END", "NONE")
PER_DOCUMENT_OUTPUTS = ("scores", "reasoning_tokens", "forced", "truncated")


def check_text(name: str, value: object, *, document_index: int | None = None) -> str:
    """``value`` if it is a string that UTF-8 can encode (no lone surrogates), else :class:`InvalidRequestError`."""
    where = f"{name}: element {document_index}" if document_index is not None else name
    field = "documents" if document_index is not None else name
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a string, got {type(value).__name__}", field=field,
                                  document_index=document_index)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequestError(
            f"{where} is not valid text: {error.reason} at character {error.start} "
            f"({value[error.start:error.end]!r}); strings sent to the server must be encodable as UTF-8",
            field=field, document_index=document_index,
        ) from None
    return value


def check_int(name: str, value: object, minimum: int | None = None) -> int | None:
    """``value`` as an ``int`` (``None`` passes); floats, bools and strings are rejected, not rounded."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequestError(f"{name}: must be an integer, got {value!r}", field=name)
    if minimum is not None and value < minimum:
        raise InvalidRequestError(f"{name}: must be at least {minimum}, got {value}", field=name)
    return int(value)


def render_document(document: Document, index: int) -> str:
    """The passage text the server scores: ``f"{title} {text}"`` when a title is given, else the text.

    ``text`` (and ``title``, when not ``None``) must be strings: ``{"text": None}`` is rejected rather than sent as
    the string ``"None"``.
    """
    if isinstance(document, str):
        return check_text("documents", document, document_index=index)
    try:
        text = document["text"]
    except (KeyError, TypeError, IndexError):
        raise InvalidRequestError(
            f"documents: element {index} must be a string or a mapping with a 'text' field", field="documents",
            document_index=index,
        ) from None
    if not isinstance(text, str):
        raise InvalidRequestError(f"documents: element {index} has a 'text' that is not a string ({text!r})",
                                  field="documents", document_index=index)
    check_text("documents", text, document_index=index)
    title = document.get("title")
    if title is None:
        return text
    if not isinstance(title, str):
        raise InvalidRequestError(f"documents: element {index} has a 'title' that is not a string ({title!r})",
                                  field="documents", document_index=index)
    check_text("documents", title, document_index=index)
    return f"{title} {text}"


class RerankKwargs(TypedDict, total=False):
    """The per-call keywords every rerank method takes (see :meth:`Rank1Client.rerank`): scoring options, then
    call options. ``timeout`` is a keyword of its own (its default, ``NOT_GIVEN``, differs from ``None``)."""

    top_n: int | None
    instruction: str | None
    prompt: str | None
    max_reasoning_tokens: int | None
    rethink: int | None
    return_reasoning: bool
    return_documents: bool
    truncate: str | None
    deadline: float | None
    request_id: str | None
    extra_headers: Mapping[str, str] | None
    max_retries: int | None
    priority: int | None


@dataclass(frozen=True, kw_only=True)
class RerankOptions:
    """The scoring options of one rerank call (``None`` leaves the server's default)."""

    top_n: int | None = None
    instruction: str | None = None
    prompt: str | None = None
    max_reasoning_tokens: int | None = None
    rethink: int | None = None
    return_reasoning: bool = False
    return_documents: bool = False
    truncate: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_n", check_int("top_n", self.top_n, minimum=1))
        object.__setattr__(self, "max_reasoning_tokens", check_int("max_reasoning_tokens", self.max_reasoning_tokens))
        object.__setattr__(self, "rethink", check_int("rethink", self.rethink))
        for name in ("instruction", "prompt"):
            if getattr(self, name) is not None:
                check_text(name, getattr(self, name))
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


SCORING_OPTIONS = frozenset(field.name for field in fields(RerankOptions))


def split_options(options: Mapping[str, Any]) -> tuple[RerankOptions, dict[str, Any]]:
    """The scoring options of :class:`RerankKwargs`, and the rest (the call options)."""
    scoring = {name: value for name, value in options.items() if name in SCORING_OPTIONS}
    return RerankOptions(**scoring), {name: value for name, value in options.items() if name not in SCORING_OPTIONS}


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
    request_id: str = ""

    @property
    def document_indices(self) -> range:
        """Indices of this request's documents in the query's list."""
        return range(self.offset, self.offset + len(self.texts))

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
