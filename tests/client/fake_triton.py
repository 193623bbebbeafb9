"""An in-process fake of Triton's gRPC inference service, for client tests that need no tritonserver.

It speaks the real protocol (tritonclient's ``service_pb2``), answers ``ModelInfer`` for the ``rank1`` model with
deterministic scores (``1 / (1 + len(text))``), and lets a test script failures, slow answers and readiness,
and see what each request carried (request id, priority, metadata, deadline, peer) and whether it was cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

MODEL = "rank1"


def fake_score(text: str) -> float:
    """The fake model's score of a passage: shorter is better."""
    return 1.0 / (1.0 + len(text))


@dataclass
class Seen:
    """One ``ModelInfer`` call as the server saw it."""

    model: str
    request_id: str
    priority: int
    query: str
    documents: list[str]
    parameters: dict
    metadata: dict[str, str]
    peer: str
    time_remaining: float | None
    cancelled: bool = False
    finished: bool = False


Failure = tuple[grpc.StatusCode, str]


def _remaining(context) -> float | None:
    """Seconds to the call's deadline, ``None`` without one (gRPC reports a huge number then)."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else remaining


@dataclass
class Behaviour:
    """What the fake does; tests change it between calls."""

    delay_s: float = 0.0
    # Seconds one request takes, by request (default: delay_s for every request).
    delay: Callable[[Seen], float] | None = None
    # Called with each request; returns a failure to send, or None to answer normally.
    fail: Callable[[Seen], Failure | None] = lambda seen: None
    # Scripted failures, one per call, before normal answers.
    script: list[Failure] = field(default_factory=list)
    # What ServerReady answers; None: the call fails (a server that is going away).
    ready: bool | None = True
    served: set[str] = field(default_factory=lambda: {MODEL})


class FakeTriton(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    # --- inference ---------------------------------------------------------------------------------------------
    def ModelInfer(self, request, context):
        inputs = {tensor.name: deserialize_bytes_tensor(raw) for tensor, raw in
                  zip(request.inputs, request.raw_input_contents, strict=True)}
        parameters = {key: getattr(value, value.WhichOneof("parameter_choice"))
                      for key, value in request.parameters.items()}
        seen = Seen(
            model=request.model_name, request_id=request.id, priority=int(parameters.pop("priority", 0)),
            query=inputs["query"][0].decode(), documents=[d.decode() for d in inputs["documents"]],
            parameters=parameters, metadata=dict(context.invocation_metadata()), peer=context.peer(),
            time_remaining=_remaining(context),
        )
        with self._lock:
            self.seen.append(seen)
            scripted = self.behaviour.script.pop(0) if self.behaviour.script else None
        if not context.add_callback(lambda: setattr(seen, "cancelled", not seen.finished)):
            seen.cancelled = True  # the call ended before the callback could be added
        if request.model_name not in self.behaviour.served:
            seen.finished = True
            context.abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{request.model_name}' is not found")
        delay = self.behaviour.delay(seen) if self.behaviour.delay is not None else self.behaviour.delay_s
        end = time.monotonic() + delay
        while time.monotonic() < end:
            if not context.is_active():
                seen.cancelled = True
                return service_pb2.ModelInferResponse()
            time.sleep(0.005)
        failure = scripted or self.behaviour.fail(seen)
        if failure is not None:
            seen.finished = True
            context.abort(*failure)
        seen.finished = True
        return self._response(request, seen)

    def _response(self, request, seen: Seen):
        scores = np.array([fake_score(text) for text in seen.documents], dtype=np.float32)
        budget = int(seen.parameters.get("max_reasoning_tokens", 4))
        outputs = {
            "scores": ("FP32", scores),
            "reasoning_tokens": ("INT32", np.full(len(scores), budget, dtype=np.int32)),
            "forced": ("BOOL", np.ones(len(scores), dtype=np.bool_)),
            "truncated": ("BOOL", np.zeros(len(scores), dtype=np.bool_)),
            "reasoning": ("BYTES", np.array([f"thinking about {t}".encode() for t in seen.documents],
                                            dtype=np.object_)),
        }
        wanted = [output.name for output in request.outputs] or list(outputs)
        response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
        for name in wanted:
            datatype, array = outputs[name]
            tensor = response.outputs.add()
            tensor.name, tensor.datatype = name, datatype
            tensor.shape.extend(array.shape)
            raw = serialize_byte_tensor(array).tobytes() if datatype == "BYTES" else array.tobytes()
            response.raw_output_contents.append(raw)
        return response

    # --- health --------------------------------------------------------------------------------------
    def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        time.sleep(self.behaviour.delay_s)
        if self.behaviour.ready is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        return service_pb2.ServerReadyResponse(ready=self.behaviour.ready)

    def ModelReady(self, request, context):
        time.sleep(self.behaviour.delay_s)
        return service_pb2.ModelReadyResponse(ready=request.name in self.behaviour.served)



class FakeServer:
    """A running fake on a free loopback port (plaintext, or TLS with ``certificate``/``key``)."""

    def __init__(self, certificate: Path | None = None, key: Path | None = None) -> None:
        self.service = FakeTriton()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=32))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(self.service, self._server)
        if certificate is not None and key is not None:
            credentials = grpc.ssl_server_credentials([(key.read_bytes(), certificate.read_bytes())])
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def behaviour(self) -> Behaviour:
        return self.service.behaviour

    @property
    def seen(self) -> list[Seen]:
        return self.service.seen

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def stop(self) -> None:
        self._server.stop(grace=None)
