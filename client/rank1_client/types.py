"""Typed inputs and results of the client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


class NotGiven:
    """The type of :data:`NOT_GIVEN`: an argument left out, as opposed to ``None`` (e.g. "no deadline")."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""Default of ``timeout=`` on every call: the client's setting. Pass ``None`` for no deadline at all."""

Document = str | Mapping[str, Any]
"""A passage: a plain string or a mapping with ``text`` and an optional ``title`` (other keys are ignored)."""


@dataclass(frozen=True)
class RerankResult:
    """One scored document.

    Attributes:
        index: Position of the document in the list that was passed in.
        score: Probability that the document is relevant (the model's "true" answer), in ``[0, 1]``.
        reasoning_tokens: Tokens the model spent thinking about this document.
        forced: The reasoning budget ran out, so the answer was forced (``</think>`` appended).
        truncated: The passage was cut to fit the model's context.
        document: The document as given, when ``return_documents=True``.
        reasoning: The model's reasoning text, when ``return_reasoning=True``.
    """

    index: int
    score: float
    reasoning_tokens: int
    forced: bool
    truncated: bool
    document: Document | None = None
    reasoning: str | None = None


@dataclass(frozen=True)
class Usage:
    """What a call consumed: documents scored and reasoning tokens generated (over all documents, not only top_n)."""

    documents: int
    reasoning_tokens: int


@dataclass(frozen=True)
class RerankResponse:
    """The result of one rerank call.

    Attributes:
        results: The documents best first (highest score; equal scores keep input order), ``top_n`` long.
        usage: Documents scored and reasoning tokens spent.
        request_id: The request id the server saw for this query (also on its log lines and on errors).
    """

    results: list[RerankResult] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    request_id: str | None = None


@dataclass(frozen=True)
class Health:
    """What the server reports about itself and the Rank1 model.

    Attributes:
        live: The server process answers.
        ready: The server is ready for inference (all models loaded).
        model_ready: The Rank1 entry model is loaded and ready.
    """

    live: bool
    ready: bool
    model_ready: bool
