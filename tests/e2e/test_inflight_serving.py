"""The engine model's in-flight scheduler seen from a client: no request waits behind another, abandoned work stops.

Ordering and the engine's own metrics are asserted, not durations: the small request must come back while the large
one is still running, and after a deadline the engine must hold no sequence of the abandoned request.
"""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import tritonclient.grpc as grpcclient
from e2e_helpers import rerank_inputs
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.server
QUERY = "what do cats eat"
LARGE = [f"passage {i}: cats eat fish and mice, dogs eat meat" for i in range(16)]


def engine_metrics(server) -> dict[str, float]:
    """The engine model's metrics by sample name (counters keep their ``_total``)."""
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("rank1_engine") and sample.labels.get("model") == "tensorrt_llm"}


def rerank(server, documents, budget: int, timeout_s: float | None = None):
    client = grpcclient.InferenceServerClient(server.grpc_url)
    return client.infer("rank1", rerank_inputs(QUERY, documents), parameters={"max_reasoning_tokens": budget},
                        client_timeout=timeout_s)


def idle(metrics: dict[str, float]) -> dict[str, float] | None:
    """The metrics if the engine holds no sequence and no queued request, else None."""
    busy = metrics["rank1_engine_sequences"] or metrics["rank1_engine_queued_requests"]
    return None if busy else metrics


def wait_for(condition, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return value


def test_a_small_request_comes_back_while_a_large_one_runs(random_server):
    with ThreadPoolExecutor(1) as pool:
        large = pool.submit(rerank, random_server, LARGE, 512)
        wait_for(lambda: engine_metrics(random_server).get("rank1_engine_sequences", 0) >= len(LARGE))
        small = rerank(random_server, LARGE[:1], 4)
        assert not large.done(), "the small request should not have waited for the large one's batch"
        assert small.as_numpy("reasoning_tokens").tolist() == [4]
        assert large.result(timeout=300).as_numpy("reasoning_tokens").tolist() == [512] * len(LARGE)


@pytest.mark.parametrize("mode", ["random_server", "random_trtllm_server"])
def test_a_request_past_its_deadline_leaves_the_engine(mode, request):
    server = request.getfixturevalue(mode)
    before = engine_metrics(server)
    with pytest.raises(InferenceServerException) as error:
        rerank(server, LARGE, 2000, timeout_s=1.5)
    assert "Deadline" in str(error.value) or "DEADLINE" in str(error.value.status())
    # The entry model sees the cancellation, stops every document and sends the engine a stop per request.
    after = wait_for(lambda: idle(engine_metrics(server)), timeout_s=10)

    def gained(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    assert gained("rank1_engine_cancelled_total") == len(LARGE)
    # Each stopped sequence left within a step or two of its stop request.
    assert gained("rank1_engine_steps_after_cancel_total") <= 2 * len(LARGE)
    assert rerank(server, LARGE[:2], 3).as_numpy("reasoning_tokens").tolist() == [3, 3]



def test_more_documents_than_the_python_backends_default_pool_all_stop_at_the_deadline(random_server):
    """Triton's Python backend carries each BLS call on a thread of a pool per instance (32 unless the server's
    --backend-config=python,thread-pool-size says more). With 96 documents on 2 entry instances and 32 threads
    each, the calls beyond 32 and every stop request waited for a running document to finish its whole budget."""
    requests = [[f"passage {16 * r + i}: cats eat fish and mice" for i in range(len(LARGE))] for r in range(6)]
    before = engine_metrics(random_server)

    def abandoned(documents: list[str]) -> str:
        with pytest.raises(InferenceServerException) as error:
            rerank(random_server, documents, 2000, timeout_s=2.0)
        return str(error.value.status())

    with ThreadPoolExecutor(len(requests)) as pool:
        assert set(pool.map(abandoned, requests)) == {"StatusCode.DEADLINE_EXCEEDED"}
    after = wait_for(lambda: idle(engine_metrics(random_server)), timeout_s=20)

    def gained(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    documents = sum(map(len, requests))
    # Nearly all were stopped (a random model may end a document early), and none ran out its budget.
    assert gained("rank1_engine_cancelled_total") >= 0.9 * documents
    assert gained("rank1_engine_decode_tokens_total") < 0.1 * documents * 2000
    assert rerank(random_server, LARGE[:1], 3).as_numpy("reasoning_tokens").tolist() == [3]
