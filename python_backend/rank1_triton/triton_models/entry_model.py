"""The ``rank1`` entry model: validation, templating, BLS calls to the engine model, true/false scores."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType

from ..contract import (
    DEFAULT_BLS_CONCURRENCY,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_DOCUMENTS,
    DEFAULT_MAX_REASONING_TOKENS,
    ENGINE_MODEL_NAME,
    ENTRY_INPUTS,
    names,
)
from ..engines.base import GenerationRequest
from ..engines.tensors import named_tensors
from ..engines.triton_bls import TritonBLSEngine
from ..errors import EngineCallError, RequestCancelledError, RequestError
from ..reranker import Rank1Reranker
from ..tokenization import Rank1Tokenizer
from ..tokenizer_loading import load_tokenizer
from .engine_watchdog import EngineWatchdog, engine_is_dead, lock_path
from .entry_request import RerankRequest, parse_parameters, parse_rerank_request, response_tensors
from .metrics import Rank1Metrics
from .model_config import engine_capabilities, is_decoupled, parameters_of
from .responses import send_final

LOGGER = logging.getLogger("rank1_triton.entry")
INPUT_NAMES = names(ENTRY_INPUTS)


class Rank1EntryModel:
    """Implements Triton's ``TritonPythonModel`` interface.

    Triton would run an ``async def execute`` of a non-decoupled model to its end before calling the instance
    again (measured on 2.51: with 2 instances, 8 concurrent requests ran two at a time), so a small request would
    wait behind large ones. Instead ``execute`` hands each request to this instance's own event loop and returns;
    the response goes out through the request's response sender when it is ready. Up to
    ``max_concurrent_requests`` run at once per instance; beyond that a request gets UNAVAILABLE (retry).
    """

    def __init__(self, pb_utils: ModuleType) -> None:
        self._pb = pb_utils

    def initialize(self, args: dict[str, str]) -> None:
        """Load the tokenizer, read the engine model's capabilities, create the metrics."""
        config = json.loads(args["model_config"])
        parameters = parameters_of(config)
        engine_name = parameters.get("engine_model_name", ENGINE_MODEL_NAME)
        repository = Path(args["model_repository"]).parent
        engine_config = repository / engine_name / "config.pbtxt"
        capabilities = engine_capabilities(engine_config)
        tokenizer = Rank1Tokenizer(load_tokenizer(parameters["tokenizer_dir"]))
        if is_decoupled(engine_config):
            raise ValueError(f"{engine_config}: the engine model must not be decoupled (decoupled_mode false)")
        concurrency = int(parameters.get("bls_concurrency", DEFAULT_BLS_CONCURRENCY))
        self.engine = TritonBLSEngine(self._pb, engine_name, capabilities, concurrency=concurrency)
        self.reranker = Rank1Reranker(self.engine, tokenizer)
        self.max_documents = int(parameters.get("max_documents", DEFAULT_MAX_DOCUMENTS))
        self.default_budget = min(
            int(parameters.get("default_max_reasoning_tokens", DEFAULT_MAX_REASONING_TOKENS)),
            capabilities.max_context_tokens // 2,
        )
        self.metrics = Rank1Metrics(self._pb, args["model_name"])
        self.max_concurrent_requests = int(parameters.get("max_concurrent_requests", DEFAULT_MAX_CONCURRENT_REQUESTS))
        self._active = 0
        self._active_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="rank1-requests", daemon=True)
        self._loop_thread.start()
        self._watchdog = self._start_watchdog(parameters, args["model_repository"], tokenizer)
        LOGGER.info("rank1 ready: engine %s (fused answer step: %s, context %d)", engine_name,
                    capabilities.fused_answer_step, capabilities.max_context_tokens)

    def _start_watchdog(self, parameters: dict[str, str], repository: str,
                        tokenizer: Rank1Tokenizer) -> EngineWatchdog | None:
        interval = float(parameters.get("engine_watchdog_interval_s", "5"))
        if interval <= 0:
            return None
        canary = GenerationRequest(input_ids=[tokenizer.pad_id], request_output_len=1, end_id=tokenizer.eos_id,
                                   pad_id=tokenizer.pad_id)
        watchdog = EngineWatchdog(self._pb, self.engine, canary, interval_s=interval, lock_file=lock_path(repository))
        watchdog.start()
        return watchdog

    def finalize(self) -> None:
        """Stop the engine watchdog and the request loop."""
        if self._watchdog is not None:
            self._watchdog.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=10)
        self.engine.close()

    def execute(self, requests: list) -> None:
        """Start each request on the request loop; a bad request gets INVALID_ARG and never affects the others."""
        pb = self._pb
        for request in requests:
            sender = request.get_response_sender()
            with self._active_lock:
                admitted = self._active < self.max_concurrent_requests
                self._active += admitted
            if not admitted:
                message = (f"Exceeds maximum queue size: {self.max_concurrent_requests} rerank requests are in "
                           "progress on this instance, try again later")
                send_final(pb, sender, pb.InferenceResponse(error=pb.TritonError(message, pb.TritonError.UNAVAILABLE)))
                continue
            future = asyncio.run_coroutine_threadsafe(self._respond(request), self._loop)
            future.add_done_callback(functools.partial(self._finish, sender))
        return None

    def _finish(self, sender, future: Future) -> None:
        with self._active_lock:
            self._active -= 1
        pb = self._pb
        try:
            response = future.result()
        except BaseException as error:  # _respond answers every error itself; this is the last line of defence
            LOGGER.exception("rank1 request failed")
            response = pb.InferenceResponse(error=pb.TritonError(f"internal error: {error}", pb.TritonError.INTERNAL))
        send_final(pb, sender, response)

    async def _respond(self, request):
        pb = self._pb
        try:
            rerank = self._parse(request)
            prompts = self.reranker.encode(rerank.query, rerank.documents, instruction=rerank.instruction,
                                           prompt=rerank.prompt, options=rerank.options)
            results = await self.reranker.ascore(prompts, rerank.options, self.engine.agenerate_one,
                                                 cancelled=request.is_cancelled)
        except RequestError as error:
            return pb.InferenceResponse(error=pb.TritonError(str(error), pb.TritonError.INVALID_ARG))
        except RequestCancelledError as error:
            LOGGER.info("rank1 request cancelled by the caller")
            return pb.InferenceResponse(error=pb.TritonError(str(error), pb.TritonError.CANCELLED))
        except EngineCallError as error:
            if self._watchdog is not None and engine_is_dead(str(error)):
                self._watchdog.poke()
            code = pb.TritonError.UNAVAILABLE if error.unavailable else pb.TritonError.INTERNAL
            LOGGER.warning("%s", error)
            return pb.InferenceResponse(error=pb.TritonError(str(error), code))
        except Exception as error:
            LOGGER.exception("rank1 request failed")
            return pb.InferenceResponse(error=pb.TritonError(f"internal error: {error}", pb.TritonError.INTERNAL))
        self.metrics.record(results)
        outputs = response_tensors(rerank, results)
        return pb.InferenceResponse(output_tensors=[pb.Tensor(name, value) for name, value in outputs.items()])

    def _parse(self, request) -> RerankRequest:
        tensors = named_tensors(self._pb.get_input_tensor_by_name, request, INPUT_NAMES)
        try:
            parameters = parse_parameters(request.parameters())
        except ValueError as error:
            raise RequestError("parameters", f"not valid JSON: {error}") from None
        return parse_rerank_request(
            tensors, parameters, max_documents=self.max_documents,
            max_reasoning_tokens_limit=self.reranker.max_reasoning_tokens_limit,
            default_max_reasoning_tokens=self.default_budget,
        )
