"""The ``rank1`` entry model: validation, templating, BLS calls to the engine model, true/false scores."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

from ..contract import DEFAULT_MAX_DOCUMENTS, DEFAULT_MAX_REASONING_TOKENS, ENGINE_MODEL_NAME, ENTRY_INPUTS, names
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
from .model_config import engine_capabilities, parameters_of

LOGGER = logging.getLogger("rank1_triton.entry")
INPUT_NAMES = names(ENTRY_INPUTS)


class Rank1EntryModel:
    """Implements Triton's ``TritonPythonModel`` interface.

    Triton runs a non-decoupled model's ``execute`` to completion before the next call on the same instance, so
    concurrency comes from the instance count (``rank1_instance_count``); within one call the requests Triton
    hands over and all their documents go to the engine together.
    """

    def __init__(self, pb_utils: ModuleType) -> None:
        self._pb = pb_utils

    def initialize(self, args: dict[str, str]) -> None:
        """Load the tokenizer, read the engine model's capabilities, create the metrics."""
        config = json.loads(args["model_config"])
        parameters = parameters_of(config)
        engine_name = parameters.get("engine_model_name", ENGINE_MODEL_NAME)
        repository = Path(args["model_repository"]).parent
        capabilities = engine_capabilities(repository / engine_name / "config.pbtxt")
        tokenizer = Rank1Tokenizer(load_tokenizer(parameters["tokenizer_dir"]))
        self.engine = TritonBLSEngine(self._pb, engine_name, capabilities)
        self.reranker = Rank1Reranker(self.engine, tokenizer)
        self.max_documents = int(parameters.get("max_documents", DEFAULT_MAX_DOCUMENTS))
        self.default_budget = min(
            int(parameters.get("default_max_reasoning_tokens", DEFAULT_MAX_REASONING_TOKENS)),
            capabilities.max_context_tokens // 2,
        )
        self.metrics = Rank1Metrics(self._pb, args["model_name"])
        self._bls_executor = ThreadPoolExecutor(max_workers=int(parameters.get("bls_concurrency", "256")))
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
        """Stop the engine watchdog."""
        if self._watchdog is not None:
            self._watchdog.stop()

    async def execute(self, requests: list) -> list:
        """One response per request; a bad request gets INVALID_ARG and never affects the others."""
        # The stub runs each BLS async_exec in the running loop's default executor, whose default size
        # (cpu_count + 4) would let only a few documents reach the engine's batcher at once.
        asyncio.get_running_loop().set_default_executor(self._bls_executor)
        return list(await asyncio.gather(*(self._respond(r) for r in requests)))

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
