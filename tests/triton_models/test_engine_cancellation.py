"""Cancelling engine calls from the entry model: a call still waiting for a BLS thread never reaches the engine, a
call in flight gets NVIDIA's stop request, and the engine model cancels a request whose stop overtook it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import types

import numpy as np

from rank1_triton.engines.base import EngineCapabilities, GenerationRequest, GenerationResult
from rank1_triton.engines.inflight import Ticket
from rank1_triton.engines.tensors import is_stop_request, result_tensors
from rank1_triton.engines.triton_bls import TritonBLSEngine
from rank1_triton.triton_models.engine_model import InFlightRequests

REQUEST = GenerationRequest([5, 6, 7], 4, 1, 2)


class FakeTensor:
    def __init__(self, name: str, value: np.ndarray) -> None:
        self.name, self.value = name, value

    def as_numpy(self) -> np.ndarray:
        return self.value


class FakeResponse:
    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        self.tensors = tensors

    def has_error(self) -> bool:
        return False


class FakeBLS:
    """pb_utils' BLS API: generation calls block until ``release`` is set; every request is recorded."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []  # request ids of generation calls that reached the engine
        self.stopped: list[str] = []
        self.lock = threading.Lock()
        self.module = types.SimpleNamespace(
            Tensor=FakeTensor, InferenceRequest=self.request,
            get_output_tensor_by_name=lambda response, name: (
                FakeTensor(name, response.tensors[name]) if name in response.tensors else None),
        )

    def request(self, model_name, inputs, requested_output_names, request_id):
        tensors = {tensor.name: tensor.value for tensor in inputs}
        return types.SimpleNamespace(exec=lambda: self.execute(request_id, tensors))

    def execute(self, request_id: str, tensors: dict[str, np.ndarray]) -> FakeResponse:
        if is_stop_request(tensors):
            with self.lock:
                self.stopped.append(request_id)
            return FakeResponse({})
        with self.lock:
            self.started.append(request_id)
        self.release.wait(timeout=30)
        return FakeResponse(result_tensors(GenerationResult([9])))


def test_a_waiting_call_never_reaches_the_engine_and_a_running_one_is_stopped():
    bls = FakeBLS()
    engine = TritonBLSEngine(bls.module, "tensorrt_llm", EngineCapabilities(False, 64), concurrency=1)

    async def scenario() -> None:
        running = asyncio.ensure_future(engine.agenerate_one(REQUEST))
        waiting = asyncio.ensure_future(engine.agenerate_one(REQUEST))  # no thread free: it waits
        while not bls.started:
            await asyncio.sleep(0.01)
        running.cancel()
        waiting.cancel()
        for task in (running, waiting):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not bls.stopped:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    bls.release.set()
    engine.close()
    assert len(bls.started) == 1, "the waiting call must not have been sent"
    assert bls.stopped == bls.started, "the running call gets a stop request with its id"


def test_calls_return_results_and_run_up_to_the_concurrency():
    bls = FakeBLS()
    engine = TritonBLSEngine(bls.module, "tensorrt_llm", EngineCapabilities(False, 64), concurrency=2)

    async def scenario() -> list:
        tasks = [asyncio.ensure_future(engine.agenerate_one(REQUEST)) for _ in range(3)]
        while len(bls.started) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert len(bls.started) == 2, "a third call waits for a thread"
        bls.release.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    engine.close()
    assert [r.output_ids for r in results] == [[9]] * 3 and len(bls.started) == 3


def ticket() -> Ticket:
    steps = iter(range(100))
    return Ticket(REQUEST, None, wake=lambda: None, steps=lambda: next(steps))


def test_a_stop_that_overtakes_its_request_cancels_it_on_arrival():
    book = InFlightRequests()
    book.stop("7")
    early = ticket()
    book.add("7", early)
    assert early.cancelled_at_step is not None
    again = ticket()  # the remembered stop is used once
    book.add("7", again)
    assert again.cancelled_at_step is None


def test_a_stop_finds_its_running_request_and_only_that_one():
    book = InFlightRequests()
    mine, other = ticket(), ticket()
    book.add("1", mine)
    book.add("2", other)
    book.stop("1")
    assert mine.cancelled_at_step is not None and other.cancelled_at_step is None
    book.remove("2")
    book.stop("2")  # finished already: remembered, harmless
    assert other.cancelled_at_step is None


def test_remembered_stops_are_bounded():
    book = InFlightRequests(kept=2)
    for request_id in ("a", "b", "c"):
        book.stop(request_id)
    oldest, newest = ticket(), ticket()
    book.add("a", oldest)
    book.add("c", newest)
    assert oldest.cancelled_at_step is None and newest.cancelled_at_step is not None
