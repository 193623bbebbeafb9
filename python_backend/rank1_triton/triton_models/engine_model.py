"""The ``tensorrt_llm`` engine model on CPU (or CUDA): NVIDIA's tensor contract over the PyTorch engine.

``execute`` parses the requests, hands them to the engine and returns without responses; each request's one
response goes out through its response sender when its sequence is done, so Triton keeps calling ``execute`` as
requests arrive (the model is not decoupled, like the GPU config). With the in-flight scheduler (default) requests
come one by one (no dynamic batching) and join the running batch at the next step; with ``rank1_scheduler:
static`` each batch from the dynamic batcher runs to completion inside ``execute`` (kept to compare against).
A request with ``stop`` true cancels the in-flight request with the same request id, as on TensorRT-LLM.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

import torch

from ..contract import (
    DEFAULT_MAX_NUM_TOKENS,
    FUSED_ANSWER_STEP_PARAMETER,
    MAX_CONTEXT_PARAMETER,
    SCHEDULER_PARAMETER,
    SCHEDULERS,
)
from ..engines.base import GenerationRequest, GenerationResult
from ..engines.inflight import InflightScheduler, SchedulerLimits, Ticket
from ..engines.tensors import ENGINE_INPUT_NAMES, is_stop_request, named_tensors, parse_request, result_tensors
from ..engines.torch_engine import TorchEngine
from ..errors import EngineQueueFullError, RequestCancelledError, RequestError
from ..scoring import ThinkEndFinder
from ..tokenization import Rank1Tokenizer
from ..tokenizer_loading import load_tokenizer
from .metrics import EngineMetrics
from .model_config import parameters_of
from .responses import send_final

LOGGER = logging.getLogger("rank1_triton.engine")
METRICS_INTERVAL_S = 0.5  # each metric update is an IPC call to the server: not once per engine step
# A stop request may overtake the request it stops (they travel on different threads): the ids of stops that
# found nothing are kept, this many at most, so the request is cancelled when it arrives.
EARLY_STOPS_KEPT = 4096


class InFlightRequests:
    """The engine's tickets by request id, for stop requests, which may overtake the request they stop (they
    travel on other threads): a stop that finds nothing is remembered, and the request is cancelled on arrival."""

    def __init__(self, kept: int = EARLY_STOPS_KEPT) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._early_stops: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._kept = kept
        self._lock = threading.Lock()

    def add(self, request_id: str, ticket: Ticket) -> None:
        """Track a submitted request (no id: nothing can stop it); cancel it if its stop came first."""
        if not request_id:
            return
        with self._lock:
            self._tickets[request_id] = ticket
            stopped = request_id in self._early_stops
            if stopped:
                del self._early_stops[request_id]
        if stopped:
            ticket.cancel()

    def remove(self, request_id: str) -> None:
        """Forget a request that is done."""
        with self._lock:
            self._tickets.pop(request_id, None)

    def stop(self, request_id: str) -> None:
        """Cancel the request with this id, now or when it arrives."""
        if not request_id:
            return
        with self._lock:
            ticket = self._tickets.get(request_id)
            if ticket is None:
                self._early_stops[request_id] = None
                while len(self._early_stops) > self._kept:
                    self._early_stops.popitem(last=False)
        if ticket is not None:
            ticket.cancel()


class TorchEngineModel:
    """Implements ``TritonPythonModel`` for the PyTorch engine (responses through the response senders)."""

    def __init__(self, pb_utils: ModuleType) -> None:
        self._pb = pb_utils

    def initialize(self, args: dict[str, str]) -> None:
        """Load the checkpoint named by the config's ``model_dir`` parameter and start the scheduler."""
        config = json.loads(args["model_config"])
        parameters = parameters_of(config)
        threads = int(parameters.get("num_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
        max_batch_size = max(int(config.get("max_batch_size", 64)), 1)
        fused = parameters.get(FUSED_ANSWER_STEP_PARAMETER, "true").lower() == "true"
        # Rank1's extensions of the contract come together: with the fused answer step the engine also stops where
        # the text ends with </think> (any tokenization); without, it behaves as TensorRT-LLM's (token stop words).
        think_end = None
        if fused:
            tokenizer = Rank1Tokenizer(load_tokenizer(parameters.get("tokenizer_dir", parameters["model_dir"])))
            think_end = ThinkEndFinder(tokenizer.decode)
        self.engine = TorchEngine(
            parameters["model_dir"],
            dtype=parameters.get("dtype", "float32"),
            device=parameters.get("device", "cpu"),
            max_batch_size=max_batch_size,
            max_context_tokens=int(parameters[MAX_CONTEXT_PARAMETER]),
            fused_answer_step=fused,
            think_end=think_end,
        )
        self.default_end_id = int(parameters.get("default_end_id", "-1"))
        scheduler = parameters.get(SCHEDULER_PARAMETER, SCHEDULERS[0])
        if scheduler not in SCHEDULERS:
            raise ValueError(f"parameter {SCHEDULER_PARAMETER} must be one of {SCHEDULERS}, got {scheduler!r}")
        self.scheduler: InflightScheduler | None = None
        if scheduler == "inflight":
            queue = int(parameters.get("max_queue_size", "0"))
            limits = SchedulerLimits(max_batch_size=max_batch_size, max_queue_size=queue,
                                     max_num_tokens=int(parameters.get("max_num_tokens", DEFAULT_MAX_NUM_TOKENS)))
            self.scheduler = InflightScheduler(self.engine, limits)
            self._metrics = EngineMetrics(self._pb, args["model_name"])
            self._stop_metrics = threading.Event()
            threading.Thread(target=self._publish_metrics, name="rank1-engine-metrics", daemon=True).start()
        self._in_flight = InFlightRequests()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rank1-engine-send")
        LOGGER.info("engine model ready: %s scheduler", scheduler)

    def _publish_metrics(self) -> None:
        assert self.scheduler is not None
        while not self._stop_metrics.wait(METRICS_INTERVAL_S):
            try:
                self._metrics.update(self.scheduler.stats, self.scheduler.load)
            except Exception:  # metrics must never take the engine down
                LOGGER.debug("engine metrics update failed", exc_info=True)

    def finalize(self) -> None:
        """Stop the engine thread (unfinished requests get CANCELLED) and the response sender."""
        if self.scheduler is not None:
            self._stop_metrics.set()
            self.scheduler.close()
        self._sender.shutdown(wait=True)

    def execute(self, requests: list) -> None:
        """Parse each request on its own (a bad one gets INVALID_ARG at once) and hand the valid ones over."""
        valid: list[tuple[object, object, GenerationRequest]] = []  # (request, its response sender, parsed)
        for request in requests:
            sender = request.get_response_sender()
            try:
                tensors = named_tensors(self._pb.get_input_tensor_by_name, request, ENGINE_INPUT_NAMES)
                if is_stop_request(tensors):
                    self._stop(request, sender)
                    continue
                parsed = parse_request(tensors, default_end_id=self.default_end_id, default_pad_id=self.default_end_id)
                self.engine.check(parsed)
                valid.append((request, sender, parsed))
            except RequestError as error:
                self._send_error(sender, str(error), self._pb.TritonError.INVALID_ARG)
        if self.scheduler is None:
            self._run_static(valid)
        else:
            for request, sender, parsed in valid:
                self._submit(request, sender, parsed)
        return None

    def _submit(self, request, sender, parsed: GenerationRequest) -> None:
        assert self.scheduler is not None
        try:
            ticket = self.scheduler.submit(parsed, is_cancelled=request.is_cancelled)
        except EngineQueueFullError as error:
            self._send_error(sender, str(error), self._pb.TritonError.UNAVAILABLE)
            return
        request_id = request.request_id()
        self._in_flight.add(request_id, ticket)

        def done(future: Future[GenerationResult]) -> None:
            self._in_flight.remove(request_id)
            self._sender.submit(self._send_outcome, sender, future)

        ticket.future.add_done_callback(done)

    def _stop(self, request, sender) -> None:
        """A stop request: cancel the in-flight request with its id (if any) and answer with no outputs."""
        self._in_flight.stop(request.request_id())
        send_final(self._pb, sender, self._pb.InferenceResponse(output_tensors=[]))

    def _run_static(self, valid: list[tuple[object, object, GenerationRequest]]) -> None:
        if not valid:
            return
        try:
            results = self.engine.generate([parsed for _, _, parsed in valid])
        except Exception as error:
            LOGGER.exception("engine batch failed")
            for _, sender, _ in valid:
                self._send_error(sender, f"engine failure: {error}", self._pb.TritonError.INTERNAL)
            return
        for (_, sender, _), result in zip(valid, results, strict=True):
            self._send_result(sender, result)

    def _send_outcome(self, sender, future: Future[GenerationResult]) -> None:
        error = future.exception()
        if error is None:
            self._send_result(sender, future.result())
        elif isinstance(error, RequestCancelledError):
            self._send_error(sender, str(error), self._pb.TritonError.CANCELLED)
        else:
            LOGGER.error("engine request failed: %s", error)
            self._send_error(sender, f"engine failure: {error}", self._pb.TritonError.INTERNAL)

    def _send_result(self, sender, result: GenerationResult) -> None:
        tensors = [self._pb.Tensor(name, value) for name, value in result_tensors(result).items()]
        send_final(self._pb, sender, self._pb.InferenceResponse(output_tensors=tensors))

    def _send_error(self, sender, message: str, code: int) -> None:
        send_final(self._pb, sender, self._pb.InferenceResponse(error=self._pb.TritonError(message, code)))
