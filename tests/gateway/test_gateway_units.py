"""The gateway without a tritonserver: settings, keys, error statuses for each client exception, limits, shapes.

The gateway runs for real (uvicorn on loopback) over a stand-in for ``AsyncRank1Client``; the unreachable-server
cases use the real client against a closed port.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import subprocess
import sys
import threading

import cohere
import httpx
import pytest
from gateway_helpers import API_KEY, AUTH, StubClient
from rank1_gateway import GatewaySettings, settings_from
from rank1_gateway.middleware import KeyChecker
from rank1_gateway.reranking import passage_text, raw_score
from rank1_gateway.server import free_port

from rank1_client import Health
from rank1_client.errors import (
    AuthenticationError,
    InvalidRequestError,
    Rank1ConnectionError,
    Rank1TimeoutError,
    ServerError,
    ServerOverloadedError,
)

BODY = {"model": "rank1", "query": "q", "documents": ["a", "b", "c"]}


def keyed(**changes) -> GatewaySettings:
    return GatewaySettings(api_keys=(API_KEY,), **changes)


# --- settings ----------------------------------------------------------------------------------------------------


def test_flags_win_over_environment_and_keys_come_from_env_and_file(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# callers\nfile-key-1\n\n  file-key-2  \n")
    grpc_key = tmp_path / "grpc-key"
    grpc_key.write_text("server-secret\n")
    environ = {"RANK1_GATEWAY_PORT": "9000", "RANK1_GATEWAY_MAX_DOCUMENTS": "50", "RANK1_GATEWAY_API_KEYS": "a, b,,",
               "RANK1_GATEWAY_GRPC_SSL": "true", "RANK1_GATEWAY_API_KEYS_FILE": str(keys)}
    settings = settings_from(["--port", "9100", "--grpc-url", "triton:8001", "--grpc-api-key-file", str(grpc_key)],
                             environ)
    assert (settings.port, settings.max_documents, settings.grpc_url, settings.grpc_ssl) == (9100, 50, "triton:8001",
                                                                                              True)
    assert settings.api_keys == ("a", "b", "file-key-1", "file-key-2")
    assert settings.client_arguments()["api_key"] == "server-secret"
    assert "server-secret" not in repr(settings) and "file-key-1" not in repr(settings)
    assert settings_from(["--grpc-ssl"], {}).grpc_ssl is True
    assert settings_from([], {"RANK1_GATEWAY_GRPC_API_KEY": "k2"}).grpc_api_key == "k2"


@pytest.mark.parametrize("argv", [["--max-documents", "0"], ["--port", "eighty"], ["--grpc-ssl", "maybe"]])
def test_bad_settings_exit_with_a_message(argv):
    with pytest.raises(SystemExit) as raised:
        settings_from(argv, {})
    assert "rank1-gateway" in str(raised.value)


def test_command_line_entry_points():
    for command in (["rank1-gateway", "--help"], [sys.executable, "-m", "rank1_gateway", "--help"]):
        run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0 and "RANK1_GATEWAY_MAX_BODY_BYTES" in run.stdout, run.stderr


# --- keys --------------------------------------------------------------------------------------------------------


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    calls, compare = [], hmac.compare_digest

    def counting(a, b):
        calls.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr("rank1_gateway.middleware.hmac.compare_digest", counting)
    checker = KeyChecker(["first", "second-longer-key", "third"])
    checker.check("Bearer first")  # matches the first key, and still compares with all three
    assert calls == [(32, 32)] * 3  # SHA-256 digests: the same length whatever the keys' lengths
    for header in (None, "", "Bearer", "Token first", "Bearer firs"):
        with pytest.raises(Exception) as raised:
            checker.check(header)
        assert raised.value.status == 401
    KeyChecker([]).check(None)  # no keys: open


def test_no_keys_configured_accepts_every_caller(gateway_with):
    with gateway_with(GatewaySettings(), client=StubClient()) as gateway:
        assert httpx.post(gateway.url + "/v2/rerank", json=BODY, timeout=30).status_code == 200


# --- the server's errors as HTTP answers -------------------------------------------------------------------------

CLIENT_ERRORS = {
    "queue full": (ServerOverloadedError("Exceeds maximum queue size", status="UNAVAILABLE"), 429, "overloaded", True),
    "unreachable": (Rank1ConnectionError("connection refused", status="UNAVAILABLE"), 503, "unhealthy", True),
    "deadline": (Rank1TimeoutError("Deadline Exceeded", status="DEADLINE_EXCEEDED"), 504, "timeout", False),
    "gateway credentials refused": (AuthenticationError("This protocol is restricted", status="UNAVAILABLE"), 502,
                                    "backend", False),
    "server fault": (ServerError("engine crashed at /secret/path", status="INTERNAL"), 502, "backend", False),
    "invalid argument": (InvalidRequestError("prompt: unknown dataset prompt 'X'", status="INVALID_ARGUMENT",
                                             field="prompt"), 400, "validation", False),
}


@pytest.mark.parametrize("case", CLIENT_ERRORS)
def test_client_errors_map_to_statuses_a_caller_can_act_on(gateway_with, case):
    error, status, error_type, retry_after = CLIENT_ERRORS[case]
    with gateway_with(keyed(retry_after_s=7), client=StubClient(error)) as gateway:
        for route, body in (("/v2/rerank", BODY), ("/rerank", {"query": "q", "texts": ["a"]})):
            response = httpx.post(gateway.url + route, json=body, headers=AUTH, timeout=30)
            assert response.status_code == status
            payload = response.json()
            assert payload["error_type"] == error_type
            assert ("Retry-After" in response.headers) is retry_after
            if retry_after:
                assert response.headers["Retry-After"] == "7"
            assert "/secret/path" not in response.text and "Traceback" not in response.text
    if case == "invalid argument":
        assert payload["field"] == "prompt" and payload["message"] == "prompt: unknown dataset prompt 'X'"


def test_cohere_sdk_raises_its_own_errors_for_429_and_503(gateway_with):
    for error, expected in ((ServerOverloadedError("full"), cohere.TooManyRequestsError),
                            (Rank1ConnectionError("down"), cohere.ServiceUnavailableError)):
        with gateway_with(keyed(retry_after_s=0), client=StubClient(error)) as gateway:
            co = cohere.ClientV2(api_key=API_KEY, base_url=gateway.url)
            with pytest.raises(expected):
                co.rerank(model="rank1", query="q", documents=["a"], request_options={"max_retries": 0})


def test_an_unexpected_failure_is_a_plain_500(gateway_with):
    class Broken(StubClient):
        async def rerank(self, query, documents, **options):
            raise RuntimeError("bug at /internal/file.py line 3")

    with gateway_with(keyed(), client=Broken()) as gateway:
        response = httpx.post(gateway.url + "/v2/rerank", json=BODY, headers=AUTH, timeout=30)
        assert response.status_code == 500
        assert response.json() == {"message": "internal error of the gateway (logged)",
                                   "error": "internal error of the gateway (logged)", "error_type": "internal",
                                   "field": None}
        assert httpx.post(gateway.url + "/v2/rerank", json=BODY, headers=AUTH, timeout=30).status_code == 500


def test_concurrent_request_limit_answers_429(gateway_with):
    release = threading.Event()

    class Slow(StubClient):
        async def rerank(self, query, documents, **options):
            while not release.is_set():
                await asyncio.sleep(0.01)
            return await super().rerank(query, documents, **options)

    with gateway_with(keyed(max_concurrent_requests=1, retry_after_s=3), client=Slow()) as gateway:
        first: dict = {}
        thread = threading.Thread(target=lambda: first.update(response=httpx.post(
            gateway.url + "/v2/rerank", json=BODY, headers=AUTH, timeout=30)))
        thread.start()
        for _ in range(500):  # until the first request is in flight
            metrics = httpx.get(gateway.url + "/metrics", timeout=30).text
            if "rank1_gateway_rerank_requests_in_flight 1.0" in metrics:
                break
            threading.Event().wait(0.01)
        second = httpx.post(gateway.url + "/v2/rerank", json=BODY, headers=AUTH, timeout=30)
        release.set()
        thread.join(30)
    assert second.status_code == 429 and second.headers["Retry-After"] == "3"
    assert "limit of 1 concurrent requests" in second.json()["message"]
    assert first["response"].status_code == 200


# --- health --------------------------------------------------------------------------------------------------------


def test_health_follows_the_server(gateway_with):
    with gateway_with(keyed(), client=StubClient(health=Health(True, True, False))) as gateway:
        response = httpx.get(gateway.url + "/health", timeout=30)
        assert response.status_code == 503
        assert response.json()["model_ready"] is False and response.json()["error_type"] == "unhealthy"
        assert httpx.get(gateway.url + "/health/live", timeout=30).status_code == 200


def test_unreachable_server_health_503_and_rerank_503_with_retry_after(gateway_with):
    settings = keyed(grpc_url=f"localhost:{free_port()}", grpc_max_retries=0, health_timeout=2)
    with gateway_with(settings) as gateway:
        health = httpx.get(gateway.url + "/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "not_ready"
        response = httpx.post(gateway.url + "/v2/rerank", json=BODY, headers=AUTH, timeout=30)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json()["message"] == "the Rank1 server is unreachable or not ready; retry later"


# --- what reaches the client ---------------------------------------------------------------------------------------


def test_options_reach_the_client(gateway_with):
    stub = StubClient()
    rank1 = {"max_reasoning_tokens": 64, "return_reasoning": True, "instruction": "i", "prompt": "SciFact",
             "rethink": 1}
    with gateway_with(keyed(), client=stub) as gateway:
        cohere_v1 = httpx.post(gateway.url + "/v1/rerank", headers=AUTH, timeout=30, json={
            "query": "q", "documents": [{"title": "T", "text": "x"}, "y"], "top_n": 1, **rank1}).json()
        tei = httpx.post(gateway.url + "/rerank", headers=AUTH, timeout=30,
                         json={"query": "q", "texts": ["a"], "truncate": False}).json()
    (query, documents, options), (_, _, tei_options) = stub.calls
    assert (query, documents) == ("q", ["T x", "y"])
    assert options == {"top_n": 1, "truncate": None, **rank1}
    assert tei_options["truncate"] == "NONE" and tei_options["top_n"] is None
    assert cohere_v1["results"][0]["reasoning"] == "because" and "reasoning" not in tei[0]


def test_max_tokens_per_doc_without_a_tokenizer_is_reported_in_meta_warnings(gateway_with):
    with gateway_with(keyed(), client=StubClient()) as gateway:
        co = cohere.ClientV2(api_key=API_KEY, base_url=gateway.url)
        response = co.rerank(model="rank1", query="q", documents=["a"], max_tokens_per_doc=10)
    (warning,) = response.meta.warnings
    assert "max_tokens_per_doc was ignored" in warning


def test_passage_text_and_raw_score():
    assert passage_text("plain", 0) == "plain"
    assert passage_text({"title": "T", "text": "x", "other": 1}, 0) == "T x"
    assert passage_text({"a": "1", "b": 2, "c": "3"}, 0, ["c", "a", "missing"]) == "3 1"
    assert raw_score(0.5) == 0.0
    assert math.isfinite(raw_score(1.0)) and math.isfinite(raw_score(0.0)) and raw_score(1.0) > 20
    assert raw_score(0.9) == pytest.approx(math.log(9))
