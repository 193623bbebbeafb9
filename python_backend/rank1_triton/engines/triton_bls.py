"""The engine model called over BLS from inside Triton (works for the PyTorch and TensorRT-LLM engines)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

from ..contract import (
    DEFAULT_BLS_CONCURRENCY,
    ENGINE_OUTPUTS,
    FUSED_ANSWER_OUTPUTS,
    STOP_REQUEST_CONCURRENCY,
    names,
)
from ..errors import EngineCallError
from .base import EngineCapabilities, GenerationRequest, GenerationResult
from .tensors import ENGINE_OUTPUT_NAMES, named_tensors, parse_result, request_tensors, stop_request_tensors

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
LOGGER = logging.getLogger(__name__)
# Request ids are decimal numbers (TensorRT-LLM maps Triton's string ids to its own numeric ones), unique per
# process: a random start keeps the entry model's instances and restarts apart.
_REQUEST_IDS = itertools.count(secrets.randbelow(2**40) * 2**20)


def is_unavailable(message: str) -> bool:
    """Whether an engine error message means "overloaded or temporarily gone" rather than "failed"."""
    lowered = message.lower()
    return any(marker.lower() in lowered for marker in UNAVAILABLE_MARKERS)


class TritonBLSEngine:
    """Sends each generation request to the engine model over BLS (``pb_utils.InferenceRequest``).

    Concurrent calls reach the engine model together, so its scheduler (the PyTorch engine's in-flight batcher or
    TensorRT-LLM's) runs them in shared batches. A BLS call blocks a thread until the engine answers, so up to
    ``concurrency`` calls are in flight; more wait here, and a waiting call that is cancelled never reaches the
    engine. The engine model is not decoupled (one response per request; the Python backend's decoupled BLS broke
    under hundreds of concurrent calls in 2.51). A call in flight whose awaiting task is cancelled sends a
    ``stop`` request with the same request id, as NVIDIA's ``tensorrt_llm_bls`` does (``lib/triton_decoder.py``
    ``send_cancellation_request``), on threads of its own, so the engine drops the sequence at its next step.
    """

    def __init__(self, pb_utils: ModuleType, model_name: str, capabilities: EngineCapabilities,
                 concurrency: int = DEFAULT_BLS_CONCURRENCY) -> None:
        self._pb = pb_utils
        self.model_name = model_name
        self._capabilities = capabilities
        self._calls = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rank1-bls")
        self._stops = ThreadPoolExecutor(max_workers=STOP_REQUEST_CONCURRENCY, thread_name_prefix="rank1-bls-stop")

    @property
    def capabilities(self) -> EngineCapabilities:
        """What the engine model's config advertises."""
        return self._capabilities

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Blocking variant, one request after another, for callers outside an event loop."""
        return [self._call(self._request(r, str(next(_REQUEST_IDS)))) for r in requests]

    async def agenerate_one(self, request: GenerationRequest) -> GenerationResult:
        """One request, awaited on its own; cancelling the awaiting task stops it in the engine."""
        request_id = str(next(_REQUEST_IDS))
        call = self._calls.submit(self._call, self._request(request, request_id))
        try:
            return await asyncio.shield(asyncio.wrap_future(call))  # a BLS call cannot be cancelled: let it end
        except asyncio.CancelledError:
            if not call.cancel():  # it has reached the engine: stop it there
                call.add_done_callback(lambda done: done.exception())  # its (cancelled) outcome is nobody's concern
                self._stops.submit(self._stop, request_id)
            raise

    def close(self) -> None:
        """Drop the calls that have not started (those in flight end on their own)."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._stops.shutdown(wait=False)

    def _call(self, inference_request) -> GenerationResult:
        return self._read(inference_request.exec())

    def _stop(self, request_id: str) -> None:
        """Cancel an in-flight engine request (the answer carries nothing; a failure is only logged)."""
        inputs = [self._pb.Tensor(name, value) for name, value in stop_request_tensors().items()]
        stop = self._pb.InferenceRequest(model_name=self.model_name, request_id=request_id, requested_output_names=[],
                                         inputs=inputs)
        try:
            response = stop.exec()
            if response.has_error():
                LOGGER.warning("stop request %s: %s", request_id, response.error().message())
        except Exception:
            LOGGER.warning("stop request %s failed", request_id, exc_info=True)

    def _request(self, request: GenerationRequest, request_id: str):  # -> pb_utils.InferenceRequest
        outputs = list(_BASE_OUTPUTS)
        if request.return_generation_logits:
            outputs.append(_LOGITS_OUTPUT)
        if request.answer_token_ids:
            outputs.append(_ANSWER_OUTPUT)
        tensors = [self._pb.Tensor(name, value) for name, value in request_tensors(request).items()]
        return self._pb.InferenceRequest(
            model_name=self.model_name, inputs=tensors, requested_output_names=outputs, request_id=request_id
        )

    def _read(self, response) -> GenerationResult:
        if response.has_error():
            message = response.error().message()
            raise EngineCallError(f"engine model {self.model_name!r}: {message}", unavailable=is_unavailable(message))
        return parse_result(named_tensors(self._pb.get_output_tensor_by_name, response, ENGINE_OUTPUT_NAMES))
