"""Which engine errors the entry model passes on as UNAVAILABLE (retried by clients), and which mean a dead engine."""

import pytest

from rank1_triton.engines.triton_bls import is_unavailable
from rank1_triton.errors import EngineCallError
from rank1_triton.triton_models.engine_watchdog import EngineWatchdog, engine_is_dead, lock_path

# Messages as the servers produce them: Triton 2.51 (Python backend and queue policy) and TensorRT-LLM's executor.
TRITON_QUEUE_FULL = ("Model tensorrt_llm - Error when running inference: [request id: <id_unknown>] Exceeds maximum "
                     "queue size")
# The executor's text (cpp/tensorrt_llm/executor/executorImpl.cpp); the C++ backend forwards it as INTERNAL.
TRTLLM_QUEUE_FULL = "Maximum queue size of 4 has been reached, please try again later"
DEAD_STUB = "Stub process 'tensorrt_llm_0_0' is not healthy."
UNLOADED = "Request for unknown model: 'tensorrt_llm' is not found"
BAD_INPUT = "input_ids: token ids must be in [0, 151936)"
CRASH = "engine failure: CUDA error: an illegal memory access was encountered"


@pytest.mark.parametrize(("message", "unavailable", "dead"), [
    (TRITON_QUEUE_FULL, True, False),
    (TRTLLM_QUEUE_FULL, True, False),
    (DEAD_STUB, True, True),
    (UNLOADED, True, False),
    (BAD_INPUT, False, False),
    (CRASH, False, False),
])
def test_engine_errors_are_classified(message, unavailable, dead):
    assert is_unavailable(message) is unavailable
    assert engine_is_dead(message) is dead


def test_watchdog_lock_is_per_repository(tmp_path):
    assert lock_path(str(tmp_path / "a" / "rank1")) == lock_path(str(tmp_path / "a" / "rank1"))
    assert lock_path(str(tmp_path / "a" / "rank1")) != lock_path(str(tmp_path / "b" / "rank1"))


class FakeServer:
    """pb_utils' model-loading API and an engine whose canary answers as scripted."""

    def __init__(self, canary_errors, load_failures=0):
        self.canary_errors = list(canary_errors)  # one entry per probe: an error message, or None for an answer
        self.load_failures = load_failures
        self.ready = True
        self.calls = []
        self.model_name = "tensorrt_llm"

    def generate(self, requests):
        message = self.canary_errors.pop(0)
        if message is not None:
            raise EngineCallError(message, unavailable=True)
        return [None]

    def unload_model(self, name):
        self.calls.append("unload")
        self.ready = False

    def is_model_ready(self, name):
        return self.ready

    def load_model(self, name):
        self.calls.append("load")
        if self.load_failures:
            self.load_failures -= 1
            raise RuntimeError("load failed")
        self.ready = True


def test_watchdog_reloads_a_dead_engine_and_retries_a_failed_load(tmp_path):
    server = FakeServer([DEAD_STUB, UNLOADED, None, TRITON_QUEUE_FULL], load_failures=1)
    watchdog = EngineWatchdog(server, server, canary=None, interval_s=60, lock_file=tmp_path / "lock")
    assert not watchdog.check() and server.calls == ["unload", "load"] and not server.ready  # the load failed
    assert not watchdog.check() and server.calls == ["unload", "load", "load"] and server.ready  # retried
    assert watchdog.check()
    assert not watchdog.check() and server.calls == ["unload", "load", "load"], "a busy engine is left alone"
