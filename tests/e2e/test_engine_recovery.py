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
import urllib.request
from pathlib import Path

import pytest

from rank1_client import Rank1Client
from rank1_client.errors import Rank1ConnectionError
from rank1_triton.contract import ENGINE_MODEL_NAME
from rank1_triton.launch.local import torch_server
from rank1_triton.launch.values import TorchServingOptions

pytestmark = pytest.mark.server
QUERY, DOCUMENTS = 'find "cat"', ["cat dog sun", "red blue moon"]
RECOVERY_BOUND_S = 90.0  # watchdog interval (5 s) + engine reload; measured ~12 s with the toy model here
REQUEST_BOUND_S = 30.0  # no request may wait for the dead engine longer than this


def engine_stub_pid(server) -> int:
    """The PID of this server's engine-model stub (its command line holds the assembled repository path)."""
    marker = str(server.repository / ENGINE_MODEL_NAME)
    stubs = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        if args and args[0].endswith("triton_python_backend_stub") and any(marker in arg for arg in args):
            stubs.append(int(cmdline.parent.name))
    assert len(stubs) == 1, f"expected one engine stub under {marker}, found {stubs}"
    return stubs[0]


def is_ready(server) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{server.ports.http}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def crash_server(toy_model_dir, tmp_path):
    server = torch_server(toy_model_dir, tmp_path, TorchServingOptions(entry_instances=2))
    server.start(timeout_s=300)
    yield server
    server.stop()


def test_killed_engine_stub_is_reloaded_and_no_request_hangs(crash_server):
    client = Rank1Client(crash_server.grpc_url, timeout=REQUEST_BOUND_S, max_retries=0)
    before = [r.score for r in client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=16).results]
    old_pid = engine_stub_pid(crash_server)
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
        ready = is_ready(crash_server)
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
    assert engine_stub_pid(crash_server) != old_pid
    after = [r.score for r in client.rerank(QUERY, DOCUMENTS, max_reasoning_tokens=16).results]
    assert after == pytest.approx(before, abs=1e-6)
