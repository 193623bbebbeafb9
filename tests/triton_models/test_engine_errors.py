"""Which engine errors the entry model passes on as UNAVAILABLE (retried by clients), and which mean a dead engine."""

import pytest

from rank1_triton.engines.triton_bls import is_unavailable
from rank1_triton.triton_models.engine_watchdog import engine_is_dead, lock_path

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
