"""Request and response bodies of the three routes, in their anchors' shapes, with Rank1's optional extensions.

Field sources (docs/gateway.md has the full table): Cohere's SDK (``cohere`` 5.x ``v1/rerank``, ``v2/rerank``),
Jina's rerank API (same route and fields as Cohere v1, ``return_documents`` defaulting to true there), vLLM's
``RerankRequest`` / ``RerankResponse`` (``top_n`` 0 = all, ``id``/``model``/``usage`` in the response) and TEI's
router (``RerankRequest`` and ``Rank``). Fields no anchor has are Rank1's and optional: clients that do not know
them never send them and ignore them in responses. Unknown request fields are ignored; known ones are type-checked
strictly (``"3"`` is not an integer).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentIn = str | dict[str, Any]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class Rank1Options(_Request):
    """Rank1's own request fields (optional on every route; the server's defaults apply when left out)."""

    max_reasoning_tokens: int | None = Field(
        default=None, ge=1, description="Rank1: thinking budget per document; the answer is forced when spent.")
    return_reasoning: bool = Field(default=False, description="Rank1: add each document's reasoning text.")
    instruction: str | None = Field(default=None, description="Rank1: relevance instruction appended to the query.")
    prompt: str | None = Field(
        default=None, description="Rank1: a dataset prompt name (e.g. `SciFact`) or a prompt with FILL_QUERY_HERE.")
    rethink: int | None = Field(default=None, ge=0, le=8, description="Rank1: extra thinking rounds after answering.")


class _CohereRequest(Rank1Options):
    model: str | None = Field(default=None, description="Accepted and ignored: this gateway serves one model.")
    query: str = Field(description="The search query.")
    documents: list[DocumentIn] = Field(
        description="Strings, or objects with `text` (and optional `title`, scored as `title text`).")
    top_n: int | None = Field(default=None, ge=0, description="Return the best `top_n` (0 or absent: all).")
    return_documents: bool | None = Field(
        default=None, description="Add each document as given to its result (default false, as Cohere).")


class CohereV2Request(_CohereRequest):
    """``POST /v2/rerank``: Cohere v2 (and vLLM's ``/v2/rerank``)."""

    max_tokens_per_doc: int | None = Field(
        default=None, ge=1, description="Cut each document to this many tokens (needs the gateway's --tokenizer).")
    priority: int | None = Field(default=None, description="Cohere v2: accepted and ignored.")


class CohereV1Request(_CohereRequest):
    """``POST /v1/rerank``: Cohere v1, Jina and vLLM's ``/v1/rerank``."""

    rank_fields: list[str] | None = Field(
        default=None, description="Object fields scored, in this order, joined by spaces (Cohere v1).")
    max_chunks_per_doc: int | None = Field(default=None, description="Cohere v1: accepted and ignored (no chunking).")
    max_tokens_per_doc: int | None = Field(
        default=None, ge=1, description="As v2 (vLLM and Jina clients may send it here).")


class TeiRerankRequest(Rank1Options):
    """``POST /rerank``: TEI's request (``texts``); with ``documents`` instead, vLLM's ``/rerank`` (Cohere shape)."""

    query: str = Field(description="The search query.")
    texts: list[str] | None = Field(default=None, description="TEI: the passages.")
    documents: list[DocumentIn] | None = Field(
        default=None, description="vLLM's /rerank: passages in the Cohere shape; the response is then Cohere's.")
    truncate: bool | None = Field(
        default=None, description="TEI: true cuts over-long passages, false refuses them (absent: cut).")
    truncation_direction: Literal["Left", "Right", "left", "right"] = Field(
        default="Right", description="TEI: only Right (cut the end) is supported.")
    raw_scores: bool = Field(default=False, description="TEI: the log-odds ln(p/(1-p)) instead of p.")
    return_text: bool = Field(default=False, description="TEI: add each passage to its result.")
    # vLLM's /rerank fields, used when `documents` is given.
    model: str | None = None
    top_n: int | None = Field(default=None, ge=0)
    return_documents: bool | None = None
    max_tokens_per_doc: int | None = Field(default=None, ge=1)


# --- responses (for the OpenAPI document; the handlers build plain dicts) -----------------------------------------


class Rank1ResultFields(BaseModel):
    reasoning: str | None = Field(default=None, description="Rank1: the reasoning text (with return_reasoning).")
    reasoning_tokens: int = Field(description="Rank1: tokens spent thinking about this document.")
    forced: bool = Field(description="Rank1: the budget ran out and the answer was forced.")
    truncated: bool = Field(description="Rank1: the passage was cut (to fit the context or max_tokens_per_doc).")


class CohereResult(Rank1ResultFields):
    index: int
    relevance_score: float = Field(description="p(relevant) in [0, 1].")
    document: dict[str, Any] | None = Field(default=None, description="With return_documents: `{text}` or the object.")


class ApiVersion(BaseModel):
    version: str


class MetaTokens(BaseModel):
    output_tokens: int = Field(description="Reasoning tokens generated for all documents.")


class Meta(BaseModel):
    api_version: ApiVersion
    tokens: MetaTokens
    warnings: list[str] | None = None


class Usage(BaseModel):
    documents: int
    reasoning_tokens: int
    total_tokens: int = Field(description="Generated (reasoning) tokens; prompt tokens are not counted.")


class CohereRerankResponse(BaseModel):
    id: str
    model: str
    results: list[CohereResult] = Field(description="Best first.")
    meta: Meta
    usage: Usage


class TeiRank(Rank1ResultFields):
    index: int
    score: float
    text: str | None = None


class ErrorBody(BaseModel):
    message: str = Field(description="What went wrong (Cohere's and OpenAI-style clients read this).")
    error: str = Field(description="The same text (TEI's field).")
    error_type: str = Field(description="validation, empty, authentication, payload_too_large, overloaded, ...")
    field: str | None = Field(default=None, description="The request field at fault, when one is.")


class Health(BaseModel):
    status: Literal["ready", "not_ready"]
    live: bool
    ready: bool
    model_ready: bool
    message: str | None = None
