"""From an HTTP request to one ``AsyncRank1Client.rerank`` call, and from its response to each route's shape."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rank1_client import RerankResponse
from rank1_client.errors import Rank1Error

from .errors import GatewayError, from_client_error, invalid
from .metrics import GatewayMetrics
from .schemas import DocumentIn, Rank1Options
from .settings import GatewaySettings

LOGGER = logging.getLogger("rank1_gateway")
# TEI's raw_scores: the log-odds of p; p is clipped so that p = 0 or 1 (float32 saturation) stays finite.
RAW_SCORE_EPSILON = 1e-12


class RerankClient(Protocol):
    """What the gateway needs of ``AsyncRank1Client`` (tests pass stand-ins)."""

    async def rerank(self, query: str, documents: Sequence[Any], **options: Any) -> RerankResponse: ...


class Tokenizer(Protocol):
    def encode_batch(self, inputs: list[str], add_special_tokens: bool = ...) -> list[Any]: ...


def load_tokenizer(path: Path) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json`` or the folder holding it (for ``max_tokens_per_doc``)."""
    from tokenizers import Tokenizer as HFTokenizer  # optional: pip install 'rank1-gateway[tokenizer]'

    file = path / "tokenizer.json" if path.is_dir() else path
    return HFTokenizer.from_file(str(file))


@dataclass
class Passages:
    """The documents of one request: as given (for ``return_documents``) and as scored."""

    originals: Sequence[DocumentIn]
    texts: list[str]
    cut: set[int] = field(default_factory=set)  # indices cut to max_tokens_per_doc here
    warnings: list[str] = field(default_factory=list)


def passage_text(document: DocumentIn, index: int, rank_fields: Sequence[str] | None = None) -> str:
    """The text scored for one document: a string as is; an object's ``rank_fields`` values joined by spaces, else
    ``"{title} {text}"`` (``text`` alone without a title), as the gRPC client renders mappings."""
    where = f"documents[{index}]"
    if isinstance(document, str):
        return document
    if rank_fields:
        values = [document[name] for name in rank_fields if document.get(name) is not None]
        if not values:
            raise invalid("documents", f"{where}: has none of the rank_fields {list(rank_fields)}")
        if not all(isinstance(value, (str, int, float)) for value in values):
            raise invalid("documents", f"{where}: rank_fields values must be strings or numbers")
        return " ".join(str(value) for value in values)
    text = document.get("text")
    if not isinstance(text, str):
        raise invalid("documents", f"{where}: an object needs a string 'text' field")
    title = document.get("title")
    if title is not None and not isinstance(title, str):
        raise invalid("documents", f"{where}: 'title' must be a string")
    return f"{title} {text}" if title is not None else text


def raw_score(probability: float) -> float:
    """ln(p / (1 - p)): the difference of the ``true`` and ``false`` logits that p is the softmax of."""
    p = min(max(probability, RAW_SCORE_EPSILON), 1.0 - RAW_SCORE_EPSILON)
    return math.log(p / (1.0 - p))


class Reranker:
    """Checks a request against the gateway's limits, calls the server, and shapes the answer."""

    def __init__(self, client: RerankClient, settings: GatewaySettings, metrics: GatewayMetrics,
                 tokenizer: Tokenizer | None = None) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.tokenizer = tokenizer
        self._in_flight = 0

    # --- input --------------------------------------------------------------------------------------------------

    def _check_text(self, name: str, value: str | None) -> None:
        if value is not None and len(value) > self.settings.max_text_chars:
            raise invalid(name.split("[")[0],
                          f"{name}: {len(value)} characters, over this gateway's limit of "
                          f"{self.settings.max_text_chars}")

    def passages(self, query: str, documents: Sequence[DocumentIn], options: Rank1Options, *,
                 rank_fields: Sequence[str] | None = None, max_tokens_per_doc: int | None = None) -> Passages:
        """Validate the request's texts and render its documents; cut them to ``max_tokens_per_doc`` tokens."""
        if not documents:
            raise GatewayError(400, "documents: must not be empty", error_type="empty", field="documents")
        if len(documents) > self.settings.max_documents:
            raise invalid("documents", f"documents: {len(documents)} documents, over this gateway's limit of "
                                       f"{self.settings.max_documents} per request")
        self._check_text("query", query)
        self._check_text("instruction", options.instruction)
        self._check_text("prompt", options.prompt)
        texts = [passage_text(document, index, rank_fields) for index, document in enumerate(documents)]
        for index, text in enumerate(texts):
            self._check_text(f"documents[{index}]", text)
        passages = Passages(originals=documents, texts=texts)
        if max_tokens_per_doc is not None:
            self._cut(passages, max_tokens_per_doc)
        return passages

    def _cut(self, passages: Passages, max_tokens: int) -> None:
        if self.tokenizer is None:
            passages.warnings.append("max_tokens_per_doc was ignored: this gateway has no tokenizer (--tokenizer); "
                                     "the server still cuts passages that do not fit the model's context")
            return
        encodings = self.tokenizer.encode_batch(passages.texts, add_special_tokens=False)
        for index, encoding in enumerate(encodings):
            if len(encoding.ids) > max_tokens:
                passages.texts[index] = passages.texts[index][: encoding.offsets[max_tokens - 1][1]]
                passages.cut.add(index)

    # --- the call -----------------------------------------------------------------------------------------------

    async def rerank(self, route: str, query: str, passages: Passages, options: Rank1Options, *,
                     top_n: int | None, truncate: str | None = None) -> RerankResponse:
        """Score the passages with the Rank1 server; client errors become GatewayErrors with HTTP statuses."""
        limit = self.settings.max_concurrent_requests
        if limit and self._in_flight >= limit:
            raise GatewayError(429, f"the gateway is at its limit of {limit} concurrent requests; retry later",
                               error_type="overloaded", headers={"Retry-After": str(self.settings.retry_after_s)})
        self._in_flight += 1
        self.metrics.in_flight.inc()
        self.metrics.documents.labels(route=route).inc(len(passages.texts))
        try:
            return await asyncio.wait_for(
                self.client.rerank(
                    query, passages.texts, top_n=top_n or None, instruction=options.instruction,
                    prompt=options.prompt, max_reasoning_tokens=options.max_reasoning_tokens,
                    rethink=options.rethink, return_reasoning=options.return_reasoning, truncate=truncate),
                timeout=self.settings.timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11 on
            self.metrics.upstream_errors.labels(kind="timeout").inc()
            raise GatewayError(
                504, f"the request did not finish within the gateway's deadline of {self.settings.timeout:g} s",
                error_type="timeout") from None
        except Rank1Error as error:
            answer = from_client_error(error, self.settings.retry_after_s)
            self.metrics.upstream_errors.labels(kind=type(error).__name__).inc()
            if answer.status >= 500:
                LOGGER.warning("%s answered %d: %s", route, answer.status, error)
            raise answer from None
        finally:
            self._in_flight -= 1
            self.metrics.in_flight.dec()

    # --- output -------------------------------------------------------------------------------------------------

    @staticmethod
    def _extensions(result: Any, passages: Passages, return_reasoning: bool) -> dict[str, Any]:
        fields_ = {"reasoning_tokens": result.reasoning_tokens, "forced": result.forced,
                   "truncated": result.truncated or result.index in passages.cut}
        if return_reasoning:
            fields_["reasoning"] = result.reasoning
        return fields_

    def cohere_body(self, response: RerankResponse, passages: Passages, *, version: str, return_documents: bool,
                    return_reasoning: bool) -> dict[str, Any]:
        """Cohere's response (``id``, ``results``, ``meta``) with vLLM's/Jina's ``model`` and ``usage``."""
        results = []
        for result in response.results:
            item: dict[str, Any] = {"index": result.index, "relevance_score": result.score}
            if return_documents:
                original = passages.originals[result.index]
                item["document"] = {"text": original} if isinstance(original, str) else original
            item.update(self._extensions(result, passages, return_reasoning))
            results.append(item)
        meta: dict[str, Any] = {"api_version": {"version": version},
                                "tokens": {"output_tokens": response.usage.reasoning_tokens}}
        if passages.warnings:
            meta["warnings"] = passages.warnings
        return {
            "id": str(uuid.uuid4()),
            "model": self.settings.served_model_name,
            "results": results,
            "meta": meta,
            "usage": {"documents": response.usage.documents, "reasoning_tokens": response.usage.reasoning_tokens,
                      "total_tokens": response.usage.reasoning_tokens},
        }

    def tei_body(self, response: RerankResponse, passages: Passages, *, raw_scores: bool, return_text: bool,
                 return_reasoning: bool) -> list[dict[str, Any]]:
        """TEI's response: ``[{index, score, text?}]`` best first."""
        ranks = []
        for result in response.results:
            item: dict[str, Any] = {"index": result.index,
                                    "score": raw_score(result.score) if raw_scores else result.score}
            if return_text:
                item["text"] = passages.originals[result.index]
            item.update(self._extensions(result, passages, return_reasoning))
            ranks.append(item)
        return ranks
