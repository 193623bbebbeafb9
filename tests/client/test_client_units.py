"""Client parts that need no server: error translation, retry policy, chunk merging, documents, run files."""

from __future__ import annotations

import logging
import time

import pytest
from tritonclient.utils import InferenceServerException

from rank1_client import (
    AuthenticationError,
    ClientClosedError,
    InvalidRequestError,
    Rank1Client,
    Rank1ConnectionError,
    Rank1TimeoutError,
    ServerError,
    ServerOverloadedError,
)
from rank1_client._chunks import merge, plan_query
from rank1_client._files import ResumableRun, read_documents, read_run, trec_lines
from rank1_client._protocol import RerankOptions, ScoredChunk, render_document
from rank1_client._retry import RetryPolicy, call_with_retries, is_transient
from rank1_client._transport import TransportConfig, translate_error

# Messages as a 2.51 server sends them (seen on the servers of test_client_server.py).
QUEUE_FULL = ("StatusCode.UNAVAILABLE", "engine model 'tensorrt_llm': Model tensorrt_llm - Error when running "
              "inference: [request id: <id_unknown>] Exceeds maximum queue size")
RESTRICTED = ("StatusCode.UNAVAILABLE",
              "This protocol is restricted, expecting header 'triton-grpc-protocol-rank1-api-key'")
REFUSED = ("StatusCode.UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: "
           "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused")
DRAINING = ("StatusCode.NOT_FOUND", "Request for unknown model: 'rank1' is not found")
UNTRUSTED = ("StatusCode.UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:5: "
             "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED")
# TensorRT-LLM's executor queue (tensorrt_llm executor), as the C++ backend returns it when called directly.
TRTLLM_QUEUE_FULL = ("StatusCode.INTERNAL", "Maximum queue size of 4 has been reached, please try again later")
# The entry model's answer while the watchdog reloads a dead engine stub.
ENGINE_RELOADING = ("StatusCode.UNAVAILABLE", "engine model 'tensorrt_llm': Stub process 'tensorrt_llm_0_0' is not "
                    "healthy.")
INVALID = ("StatusCode.INVALID_ARGUMENT", "max_reasoning_tokens: must be between 1 and 4087, got 0")
# Triton core's own checks prefix the request id and name the input in quotes.
CORE_INVALID = ("StatusCode.INVALID_ARGUMENT", "[request id: <id_unknown>] unexpected shape for input 'query' for "
                "model 'rank1'. Expected [1], got [2]. ")
PREFIXED_INVALID = ("StatusCode.INVALID_ARGUMENT", "[request id: call-7] prompt: unknown dataset prompt 'X'")
UNFIELDED_INVALID = ("StatusCode.INVALID_ARGUMENT", "[request id: <id_unknown>] inference request batch-size must be "
                     "<= 8 for 'rank1'")
# What a gateway (Envoy, an API gateway) sends when it rate-limits.
RATE_LIMITED = ("StatusCode.RESOURCE_EXHAUSTED", "rate limit exceeded")
# The certificate is trusted but names another host (or grpc.ssl_target_name_override names another).
WRONG_HOST = ("StatusCode.UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:5: "
              "Custom verification check failed with error: UNAUTHENTICATED: Hostname Verification Check failed.")
CLOSED = ("StatusCode.CANCELLED", "Channel closed!")


def server_error(status: str, message: str):
    return translate_error(InferenceServerException(message, status), "localhost:1")


@pytest.mark.parametrize(("raw", "kind", "transient"), [
    (QUEUE_FULL, ServerOverloadedError, True),
    (TRTLLM_QUEUE_FULL, ServerOverloadedError, True),
    (ENGINE_RELOADING, Rank1ConnectionError, True),
    (RESTRICTED, AuthenticationError, False),
    (REFUSED, Rank1ConnectionError, True),
    (DRAINING, Rank1ConnectionError, True),
    (UNTRUSTED, AuthenticationError, False),
    (WRONG_HOST, AuthenticationError, False),
    (RATE_LIMITED, ServerOverloadedError, True),
    (CLOSED, ClientClosedError, False),
    (INVALID, InvalidRequestError, False),
    (CORE_INVALID, InvalidRequestError, False),
    (("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded"), Rank1TimeoutError, False),
    (("StatusCode.INTERNAL", "internal error: boom"), ServerError, False),
])
def test_server_errors_become_client_errors(raw, kind, transient):
    error = server_error(*raw)
    assert type(error) is kind
    assert raw[1] in error.message
    assert error.status == raw[0].removeprefix("StatusCode.")
    assert is_transient(error) is transient


def test_invalid_request_keeps_the_server_message_and_names_the_field():
    error = server_error(*INVALID)
    assert error.message == INVALID[1]
    assert error.field == "max_reasoning_tokens"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(("raw", "field"), [
    (INVALID, "max_reasoning_tokens"), (CORE_INVALID, "query"), (PREFIXED_INVALID, "prompt"),
    (UNFIELDED_INVALID, None), (("StatusCode.INVALID_ARGUMENT", "in ensemble 'x': no"), None),
])
def test_the_field_is_parsed_past_tritons_request_id_prefix(raw, field):
    assert server_error(*raw).field == field


def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens():
    policy = RetryPolicy(max_retries=9, initial_delay=0.5, max_delay=4.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(1, 0.999) == pytest.approx(1.0 * (1 - 0.5 * 0.999))


def failing(errors: list[Exception]):
    calls = []

    def call() -> str:
        calls.append(time.monotonic())
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "scored"

    return call, calls


def test_transient_errors_are_retried_until_success(caplog):
    call, calls = failing([server_error(*QUEUE_FULL), server_error(*DRAINING)])
    with caplog.at_level(logging.INFO, logger="rank1_client"):
        assert call_with_retries(RetryPolicy(max_retries=3, initial_delay=0.01), call) == "scored"
    assert len(calls) == 3
    assert [r.getMessage().split(" after ")[0].split(" in ")[0] for r in caplog.records] == [
        "retry 1 of 3", "retry 2 of 3"]


@pytest.mark.parametrize("raw", [RESTRICTED, INVALID, UNTRUSTED])
def test_permanent_errors_are_raised_at_once(raw):
    call, calls = failing([server_error(*raw)])
    with pytest.raises(type(server_error(*raw))):
        call_with_retries(RetryPolicy(max_retries=5, initial_delay=10.0), call)
    assert len(calls) == 1


def test_retries_stop_after_max_retries():
    call, calls = failing([server_error(*QUEUE_FULL)] * 10)
    with pytest.raises(ServerOverloadedError):
        call_with_retries(RetryPolicy(max_retries=2, initial_delay=0.01), call)
    assert len(calls) == 3


def test_connection_refused_is_retried_then_raised(caplog):
    client = Rank1Client("127.0.0.1:1", max_retries=2, initial_retry_delay=0.01)
    with caplog.at_level(logging.INFO, logger="rank1_client"), pytest.raises(Rank1ConnectionError) as error:
        client.rerank("query", ["document"])
    client.close()
    assert "127.0.0.1:1" in str(error.value)
    assert len([r for r in caplog.records if "Connection refused" in r.getMessage()]) == 2


def test_health_of_an_unreachable_server_raises_a_connection_error():
    with Rank1Client("127.0.0.1:1") as client, pytest.raises(Rank1ConnectionError):
        client.health(timeout=2)


def test_api_key_and_headers_become_lower_case_metadata():
    config = TransportConfig("h:1", api_key="k", api_key_name="Rank1-Api-Key", headers={"X-Tenant": "a"})
    assert config.metadata() == {"x-tenant": "a", "triton-grpc-protocol-rank1-api-key": "k"}
    assert not config.uses_tls
    assert TransportConfig("h:1", root_certificates="ca.pem").uses_tls
    with pytest.raises(ValueError, match="client_key"):
        TransportConfig("h:1", client_certificate="c.pem")


@pytest.mark.parametrize("document", [
    "plain passage", {"text": "body"}, {"title": "Title", "text": "body"}, {"title": None, "text": "body"},
    {"title": "", "text": "body"},
])
def test_documents_render_like_the_server_library(document):
    prompts = pytest.importorskip("rank1_triton.prompts", reason="compares with the server library")
    assert render_document(document, 0) == prompts.passage_from(document).render()


def test_a_document_without_text_is_rejected_before_sending():
    with pytest.raises(InvalidRequestError, match="element 1"):
        plan_query(0, "q", ["ok", {"title": "no text"}], RerankOptions(), chunk_size=4)


def test_top_n_below_one_is_rejected_before_sending():
    with pytest.raises(InvalidRequestError) as error:
        RerankOptions(top_n=0)
    assert error.value.field == "top_n"


def test_chunks_merge_into_one_ranking_whatever_their_order():
    documents = [f"d{i}" for i in range(7)]
    plan = plan_query(0, "q", documents, RerankOptions(top_n=5, return_documents=True), chunk_size=3)
    assert [(r.offset, r.texts) for r in plan.requests] == [(0, ["d0", "d1", "d2"]), (3, ["d3", "d4", "d5"]),
                                                            (6, ["d6"])]
    scores = [0.2, 0.9, 0.5, 0.9, 0.1, 0.7, 0.5]
    for request in reversed(plan.requests):  # completion order must not matter
        part = scores[request.offset:request.offset + len(request.texts)]
        plan.scored.append(ScoredChunk(request.offset, part, [3] * len(part), [True] * len(part),
                                       [False] * len(part), None))
    response = merge(plan)
    assert [r.index for r in response.results] == [1, 3, 5, 2, 6]  # ties keep input order
    assert [r.document for r in response.results] == ["d1", "d3", "d5", "d2", "d6"]
    assert response.usage.documents == 7 and response.usage.reasoning_tokens == 21


def test_read_run_takes_the_top_k_of_trec_and_json_runs(tmp_path):
    trec = tmp_path / "run.trec"
    trec.write_text("q1 Q0 a 1 9.0 bm25\nq1 Q0 b 2 7.5 bm25\nq1 Q0 c 3 8.0 bm25\nq2 Q0 a 1 1.0 bm25\n"
                    "q1 Q0 b 4 7.0 bm25\n")  # b twice: counts once
    json_run = tmp_path / "run.json"
    json_run.write_text('{"q1": {"a": 9.0, "b": 7.5, "c": 8.0}, "q2": {"a": 1.0}}')
    assert read_run(trec, 2) == read_run(json_run, 2) == {"q1": ["a", "c"], "q2": ["a"]}
    assert read_run(trec, 3) == read_run(json_run, 3) == {"q1": ["a", "c", "b"], "q2": ["a"]}


def test_read_documents_accepts_strings_and_objects(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('"plain"\n{"id": 7, "title": "T", "text": "body"}\n\n{"_id": "x", "text": "t"}\n')
    documents = read_documents(path)
    assert [(d.id, d.document) for d in documents] == [
        (None, "plain"), ("7", {"title": "T", "text": "body"}), ("x", {"text": "t"})]


def test_resumable_run_keeps_complete_queries_and_drops_a_torn_one(tmp_path):
    path = tmp_path / "out.trec"
    complete = trec_lines("q1", [("a", 0.9), ("b", 0.1)], "rank1")
    torn = trec_lines("q2", [("c", 0.8), ("d", 0.2)], "rank1")[:-9]  # the crash cut the last line
    path.write_text(complete + torn)
    with ResumableRun(path, {"q1": 2, "q2": 2}) as run:
        assert run.complete == {"q1"}
        assert run.dropped_lines == 2
        run.write("q2", [("d", 0.7), ("c", 0.6)], "rank1")
    assert path.read_text() == complete + trec_lines("q2", [("d", 0.7), ("c", 0.6)], "rank1")
