"""A crashed engine process (as the OOM killer leaves it) is detected, reported as not-ready, and reloaded.

The server gets its own work folder because the test kills its ``tensorrt_llm`` stub. Requests sent meanwhile
must end quickly with UNAVAILABLE (which clients retry), never hang, and the server must serve correct scores
again without a restart.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from triton_processes import is_ready, stub_pid

from rank1_client import Rank1Client
from rank1_client.errors import Rank1ConnectionError
from rank1_triton.contract import ENGINE_MODEL_NAME
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.values import TorchServingOptions

pytestmark = pytest.mark.server
QUERY, DOCUMENTS = 'find "cat"', ["cat dog sun", "red blue moon"]
RECOVERY_BOUND_S = 90.0  # watchdog interval (5 s) + engine reload; measured 8 s with the toy model here
REQUEST_BOUND_S = 30.0  # no request may wait for the dead engine longer than this


@pytest.fixture
def crash_server(toy_model_dir, tmp_path):
    server = torch_server(toy_model_dir, tmp_path, TorchServingOptions(entry_instances=2))
    server.start(timeout_s=300)
    yield server
    server.stop()


def test_clients_cannot_load_or_unload_models(crash_server):
    request = urllib.request.Request(f"http://localhost:{crash_server.ports.http}/v2/repository/index", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403  # explicit model control is on, its API locked with a key nobody has


def test_killed_engine_stub_is_reloaded_and_no_request_hangs(crash_server):
    client = Rank1Client(crash_server.grpc_url, timeout=REQUEST_BOUND_S, max_retries=0)
    before = [r.score for r in client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=16).results]
    old_pid = stub_pid(crash_server.repository / ENGINE_MODEL_NAME)
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()

    outcomes: list[tuple[str, float]] = []

    def traffic() -> None:
        while time.monotonic() - killed < 25:
            started = time.monotonic()
            try:
                client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=16)
                outcomes.append(("ok", time.monotonic() - started))
            except Rank1ConnectionError:  # UNAVAILABLE: the engine is gone or reloading; clients retry this
                outcomes.append(("unavailable", time.monotonic() - started))
            time.sleep(0.3)

    sender = threading.Thread(target=traffic)
    sender.start()
    not_ready_at = ready_again_at = None
    while time.monotonic() - killed < RECOVERY_BOUND_S and ready_again_at is None:
        ready = is_ready(crash_server.ports.http)
        if not ready and not_ready_at is None:
            not_ready_at = time.monotonic() - killed
        if ready and not_ready_at is not None:
            ready_again_at = time.monotonic() - killed
        time.sleep(0.2)
    sender.join()
    print(f"\nengine stub killed: not ready after {not_ready_at} s, ready again after {ready_again_at} s; "
          f"requests meanwhile: {[(kind, round(seconds, 2)) for kind, seconds in outcomes]}")
    assert not_ready_at is not None, "the server never reported the dead engine"
    assert ready_again_at is not None, f"the engine was not reloaded within {RECOVERY_BOUND_S} s"
    assert all(seconds < REQUEST_BOUND_S for _, seconds in outcomes), "a request hung on the dead engine"
    assert "ok" in {kind for kind, _ in outcomes}
    assert stub_pid(crash_server.repository / ENGINE_MODEL_NAME) != old_pid
    after = [r.score for r in client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=16).results]
    assert after == pytest.approx(before, abs=1e-6)
