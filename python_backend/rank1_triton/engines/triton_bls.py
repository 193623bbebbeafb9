"""The engine model called over BLS from inside Triton (works for the PyTorch and TensorRT-LLM engines)."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from ..contract import ENGINE_OUTPUTS, FUSED_ANSWER_OUTPUTS, names
from ..errors import EngineCallError
from .base import EngineCapabilities, GenerationRequest, GenerationResult
from .tensors import ENGINE_OUTPUT_NAMES, named_tensors, parse_result, request_tensors

# Errors after which the same request may succeed later, so callers get UNAVAILABLE and retry:
# Triton's queue policy ("Exceeds maximum queue size", "Request timeout expired"), TensorRT-LLM's executor queue
# ("Maximum queue size of N has been reached, please try again later", tensorrt_llm/executor), a model that is
# unloading or reloading ("is not ready", "unavailable", "unknown model"), and a Python-backend stub that died
# and is being replaced ("Stub process ... is not healthy").
UNAVAILABLE_MARKERS = (
    "Exceeds maximum queue size", "Request timeout expired", "has been reached, please try again later",
    "is not ready", "unavailable", "is not healthy", "unknown model",
)
_BASE_OUTPUTS = names(ENGINE_OUTPUTS[:2])  # output_ids, sequence_length
_LOGITS_OUTPUT = ENGINE_OUTPUTS[2].name
_ANSWER_OUTPUT = FUSED_ANSWER_OUTPUTS[0].name


def is_unavailable(message: str) -> bool:
    """Whether an engine error message means "overloaded or temporarily gone" rather than "failed"."""
    lowered = message.lower()
    return any(marker.lower() in lowered for marker in UNAVAILABLE_MARKERS)


class TritonBLSEngine:
    """Sends each generation request to the engine model with ``pb_utils.InferenceRequest.async_exec``.

    The requests of one call go out together, so the engine model's batcher (or TensorRT-LLM's in-flight
    batcher) runs them in shared batches with those of concurrent calls.
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

    async def agenerate_one(self, request: GenerationRequest) -> GenerationResult:
        """One request, awaited on its own (the entry model sends each document's next step as soon as it can)."""
        return self._read(await self._request(request).async_exec())

    def _request(self, request: GenerationRequest):  # -> pb_utils.InferenceRequest
        outputs = list(_BASE_OUTPUTS)
        if request.return_generation_logits:
            outputs.append(_LOGITS_OUTPUT)
        if request.answer_token_ids:
            outputs.append(_ANSWER_OUTPUT)
        tensors = [self._pb.Tensor(name, value) for name, value in request_tensors(request).items()]
        return self._pb.InferenceRequest(
            model_name=self.model_name, inputs=tensors, requested_output_names=outputs
        )

    def _read(self, response) -> GenerationResult:
        if response.has_error():
            message = response.error().message()
            raise EngineCallError(f"engine model {self.model_name!r}: {message}", unavailable=is_unavailable(message))
        return parse_result(named_tensors(self._pb.get_output_tensor_by_name, response, ENGINE_OUTPUT_NAMES))
