"""The engine model called over BLS from inside Triton (works for the PyTorch and TensorRT-LLM engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import ModuleType

from ..serving.engine_tensors import parse_result, request_tensors
from .base import EngineCapabilities, GenerationRequest, GenerationResult


class EngineCallError(RuntimeError):
    """The engine model answered with an error; ``unavailable`` when it is overloaded or going away."""

    def __init__(self, message: str, *, unavailable: bool) -> None:
        super().__init__(message)
        self.unavailable = unavailable


UNAVAILABLE_MARKERS = ("Exceeds maximum queue size", "Request timeout expired", "is not ready", "unavailable")


class TritonBLSEngine:
    """Sends each generation request to the engine model with ``pb_utils.InferenceRequest.async_exec``.

    The requests of one call go out together, so the engine model's dynamic batcher (or TensorRT-LLM's
    in-flight batcher) runs them in shared batches with those of concurrent calls.
    """

    def __init__(self, pb_utils: ModuleType, model_name: str, capabilities: EngineCapabilities) -> None:
        self._pb = pb_utils
        self.model_name = model_name
        self._capabilities = capabilities

    @property
    def capabilities(self) -> EngineCapabilities:
        """What the engine model's config advertises."""
        return self._capabilities

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Blocking variant (``exec``), for callers outside an event loop."""
        return [self._read(self._request(r).exec()) for r in requests]

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Send all requests at once and wait for every response."""
        calls = [self._request(r) for r in requests]
        responses = await asyncio.gather(*(call.async_exec() for call in calls))
        return [self._read(response) for response in responses]

    def _request(self, request: GenerationRequest):  # -> pb_utils.InferenceRequest
        outputs = ["output_ids", "sequence_length"]
        if request.return_generation_logits:
            outputs.append("generation_logits")
        if request.answer_token_ids:
            outputs.append("answer_logits")
        tensors = [self._pb.Tensor(name, value) for name, value in request_tensors(request).items()]
        return self._pb.InferenceRequest(
            model_name=self.model_name, inputs=tensors, requested_output_names=outputs
        )

    def _read(self, response) -> GenerationResult:
        if response.has_error():
            message = response.error().message()
            unavailable = any(marker.lower() in message.lower() for marker in UNAVAILABLE_MARKERS)
            raise EngineCallError(f"engine model {self.model_name!r}: {message}", unavailable=unavailable)
        names = ["output_ids", "sequence_length", "generation_logits", "answer_logits"]
        tensors = {}
        for name in names:
            tensor = self._pb.get_output_tensor_by_name(response, name)
            if tensor is not None:
                tensors[name] = tensor.as_numpy()
        return parse_result(tensors)
