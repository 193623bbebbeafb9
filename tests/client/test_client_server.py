"""Rank1Client and AsyncRank1Client against real servers; expectations come from raw tritonclient calls."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from rank1_client import (
    AsyncRank1Client,
    AuthenticationError,
    Health,
    InvalidRequestError,
    KeepAlive,
    ModelNotFoundError,
    Rank1Client,
    Rank1ConnectionError,
    Rank1TimeoutError,
    ServerOverloadedError,
)

pytestmark = pytest.mark.server
MODES = ["sync", "async"]
QUERY = "which passage is about cats?"
DOCUMENTS = [
    "Cats sleep for most of the day.",
    {"title": "Rivers", "text": "The Rhine flows into the North Sea."},
    "A recipe for lentil soup.",
    {"text": "Kittens learn to hunt by playing."},
    {"title": "Cats", "text": "Domestic cats descend from the African wildcat."},
    "Stock prices fell on Tuesday.",
    "The cat sat on the mat.",
]
# What the server scores, written out by hand: "title text" when a title is given.
RENDERED = [
    "Cats sleep for most of the day.", "Rivers The Rhine flows into the North Sea.", "A recipe for lentil soup.",
    "Kittens learn to hunt by playing.", "Cats Domestic cats descend from the African wildcat.",
    "Stock prices fell on Tuesday.", "The cat sat on the mat.",
]


def raw_infer(url: str, query: str, texts: list[str], parameters: dict, headers: dict | None = None,
              **connection) -> dict[str, np.ndarray]:
    """One request with tritonclient only: the reference the client's results are checked against."""
    tensors = []
    for name, values in (("query", [query]), ("documents", texts)):
        tensor = grpcclient.InferInput(name, [len(values)], "BYTES")
        tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=np.object_))
        tensors.append(tensor)
    with grpcclient.InferenceServerClient(url, **connection) as client:
        result = client.infer("rank1", tensors, parameters=parameters, headers=headers)
    names = ["scores", "ranking", "reasoning_tokens", "forced", "truncated"]
    outputs = {name: result.as_numpy(name) for name in names}
    if parameters.get("return_reasoning"):
        outputs["reasoning"] = np.array([r.decode() for r in result.as_numpy("reasoning")])
    return outputs


def call(mode: str, url: str, method: str, *args, options: dict | None = None, **kwargs):
    """``method`` of a fresh Rank1Client or AsyncRank1Client (iterators are collected into lists)."""
    if mode == "sync":
        with Rank1Client(url, **(options or {})) as client:
            result = getattr(client, method)(*args, **kwargs)
            return list(result) if method == "rerank_as_completed" else result

    async def run():
        async with AsyncRank1Client(url, **(options or {})) as client:
            if method == "rerank_as_completed":
                return [item async for item in client.rerank_as_completed(*args, **kwargs)]
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(run())


def assert_matches_raw(response, raw: dict[str, np.ndarray], top_n: int | None = None) -> None:
    ranking = raw["ranking"].tolist()[:top_n]
    assert [r.index for r in response.results] == ranking
    np.testing.assert_allclose([r.score for r in response.results], raw["scores"][ranking], atol=1e-6)
    assert [r.reasoning_tokens for r in response.results] == raw["reasoning_tokens"][ranking].tolist()
    assert [r.forced for r in response.results] == raw["forced"][ranking].tolist()
    assert [r.truncated for r in response.results] == raw["truncated"][ranking].tolist()
    assert response.usage.documents == len(raw["scores"])
    assert response.usage.reasoning_tokens == int(raw["reasoning_tokens"].sum())


@pytest.mark.parametrize("mode", MODES)
def test_rerank_in_chunks_equals_one_raw_request(plain_server, mode):
    raw = raw_infer(plain_server.grpc_url, QUERY, RENDERED, {"max_reasoning_tokens": 4, "return_reasoning": True})
    response = call(mode, plain_server.grpc_url, "rerank", QUERY, DOCUMENTS, top_n=5, max_reasoning_tokens=4,
                    return_reasoning=True, return_documents=True, options={"chunk_size": 3})
    assert_matches_raw(response, raw, top_n=5)
    assert [r.reasoning for r in response.results] == raw["reasoning"][raw["ranking"][:5]].tolist()
    assert [r.document for r in response.results] == [DOCUMENTS[r.index] for r in response.results]
    assert all(r.forced for r in response.results), "the random model never ends its reasoning itself"


@pytest.mark.parametrize("mode", MODES)
def test_rerank_many_and_as_completed_cover_every_query(plain_server, mode):
    pairs = [("cats", RENDERED[:5]), ("empty candidate list", []), ("rivers", RENDERED[2:])]
    options = {"chunk_size": 2, "max_concurrency": 3}
    many = call(mode, plain_server.grpc_url, "rerank_many", pairs, max_reasoning_tokens=3, options=options)
    completed = call(mode, plain_server.grpc_url, "rerank_as_completed", pairs, max_reasoning_tokens=3,
                     options=options)
    assert sorted(position for position, _ in completed) == [0, 1, 2]
    for position, response in completed:
        assert [r.index for r in response.results] == [r.index for r in many[position].results]
        assert [r.score for r in response.results] == pytest.approx([r.score for r in many[position].results],
                                                                    abs=1e-6)
    assert many[1].results == [] and many[1].usage.documents == 0
    for (query, texts), response in zip(pairs, many, strict=True):
        if texts:
            assert_matches_raw(response, raw_infer(plain_server.grpc_url, query, texts, {"max_reasoning_tokens": 3}))


@pytest.mark.parametrize("mode", MODES)
def test_health_and_ready(plain_server, mode):
    assert call(mode, plain_server.grpc_url, "health") == Health(live=True, ready=True, model_ready=True)
    assert call(mode, plain_server.grpc_url, "ready") is True


@pytest.mark.parametrize("mode", MODES)
def test_an_invalid_field_raises_with_the_server_message(plain_server, mode):
    with pytest.raises(InvalidRequestError) as error:
        call(mode, plain_server.grpc_url, "rerank", QUERY, DOCUMENTS, prompt="NoSuchDataset")
    assert error.value.field == "prompt"
    assert error.value.message.startswith("prompt: unknown dataset prompt 'NoSuchDataset'")


def test_a_chunk_size_above_the_server_limit_is_refused_by_the_server(plain_server):
    with Rank1Client(plain_server.grpc_url, chunk_size=1001) as client, pytest.raises(InvalidRequestError) as error:
        client.rerank(QUERY, ["tiny"] * 1001)
    assert "1001 documents exceed this server's limit of 1000" in error.value.message


@pytest.mark.parametrize("mode", MODES)
def test_a_passed_deadline_raises_the_timeout_error_without_retrying(plain_server, mode):
    started = time.monotonic()
    with pytest.raises(Rank1TimeoutError):
        call(mode, plain_server.grpc_url, "rerank", QUERY, RENDERED[:4], max_reasoning_tokens=32, timeout=0.001,
             options={"initial_retry_delay": 5.0})
    assert time.monotonic() - started < 3.0


def test_cancelling_the_task_cancels_the_call(plain_server):
    async def scenario() -> float:
        async with AsyncRank1Client(plain_server.grpc_url) as client:
            task = asyncio.create_task(client.rerank(QUERY, RENDERED, max_reasoning_tokens=24))
            await asyncio.sleep(0.3)
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            waited = time.monotonic() - cancelled_at
            response = await client.rerank(QUERY, RENDERED[:2], max_reasoning_tokens=2)  # the client still works
            assert response.usage.documents == 2
            return waited

    assert asyncio.run(scenario()) < 0.5


@pytest.mark.parametrize("mode", MODES)
def test_close_then_reuse(plain_server, mode):
    async def scenario_async():
        client = AsyncRank1Client(plain_server.grpc_url)
        first = await client.rerank(QUERY, RENDERED[:2], max_reasoning_tokens=2)
        await client.close()
        second = await client.rerank(QUERY, RENDERED[:2], max_reasoning_tokens=2)
        await client.close()
        return first, second

    if mode == "sync":
        client = Rank1Client(plain_server.grpc_url)
        first = client.rerank(QUERY, RENDERED[:2], max_reasoning_tokens=2)
        client.close()
        second = client.rerank(QUERY, RENDERED[:2], max_reasoning_tokens=2)
        client.close()
    else:
        first, second = asyncio.run(scenario_async())
    # The engine batches the two calls' documents differently, so scores agree to float noise, not bit for bit.
    assert [(r.index, r.reasoning_tokens, r.forced) for r in first.results] == [
        (r.index, r.reasoning_tokens, r.forced) for r in second.results]
    assert [r.score for r in first.results] == pytest.approx([r.score for r in second.results], abs=1e-6)
    assert first.usage == second.usage
    assert first.request_id != second.request_id, "every call gets its own request id"


@pytest.mark.parametrize("mode", MODES)
def test_channel_options_compression_keepalive_and_headers(plain_server, mode):
    options = {"compression": "gzip", "keepalive": KeepAlive(time_s=300, permit_without_calls=False),
               "headers": {"X-Request-Source": "client-tests"}}
    response = call(mode, plain_server.grpc_url, "rerank", QUERY, RENDERED[:3], max_reasoning_tokens=2,
                    options=options)
    assert_matches_raw(response, raw_infer(plain_server.grpc_url, QUERY, RENDERED[:3], {"max_reasoning_tokens": 2}))


@pytest.mark.parametrize("mode", MODES)
def test_rerank_many_raises_the_first_error(plain_server, mode):
    pairs = [(QUERY, RENDERED[:2]), ("   ", RENDERED[:2])]  # a blank query is refused by the server
    with pytest.raises(InvalidRequestError, match="query: must not be empty"):
        call(mode, plain_server.grpc_url, "rerank_many", pairs, max_reasoning_tokens=2)


@pytest.mark.parametrize("mode", MODES)
def test_rerank_many_with_return_exceptions_finishes_around_a_refused_query(plain_server, mode):
    pairs = [(QUERY, RENDERED[:2]), ("   ", RENDERED[:2]), ("rivers", RENDERED[2:4])]
    outcomes = call(mode, plain_server.grpc_url, "rerank_many", pairs, max_reasoning_tokens=2,
                    return_exceptions=True, request_id="many")
    assert isinstance(outcomes[1], InvalidRequestError) and outcomes[1].field == "query"
    assert (outcomes[1].position, outcomes[1].query, outcomes[1].request_id) == (1, "   ", "many-1")
    for position in (0, 2):
        assert_matches_raw(outcomes[position], raw_infer(plain_server.grpc_url, pairs[position][0],
                                                         pairs[position][1], {"max_reasoning_tokens": 2}))
        assert outcomes[position].request_id == f"many-{position}"


@pytest.mark.parametrize("mode", MODES)
def test_request_id_priority_and_extra_headers_on_a_real_server(plain_server, mode):
    response = call(mode, plain_server.grpc_url, "rerank", QUERY, RENDERED[:3], max_reasoning_tokens=2,
                    request_id="trace-me", priority=1,
                    extra_headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert response.request_id == "trace-me"
    assert_matches_raw(response, raw_infer(plain_server.grpc_url, QUERY, RENDERED[:3], {"max_reasoning_tokens": 2}))
    with pytest.raises(InvalidRequestError) as error:
        call(mode, plain_server.grpc_url, "rerank", QUERY, RENDERED[:1], max_reasoning_tokens=0, request_id="bad")
    assert (error.value.field, error.value.request_id, error.value.query) == ("max_reasoning_tokens", "bad", QUERY)


@pytest.mark.parametrize("mode", MODES)
def test_a_mistyped_model_name_is_not_found_without_retries(plain_server, mode, caplog):
    with caplog.at_level(logging.INFO, logger="rank1_client"), pytest.raises(ModelNotFoundError) as error:
        call(mode, plain_server.grpc_url, "rerank", QUERY, RENDERED[:1],
             options={"model_name": "rank_1", "max_retries": 5, "initial_retry_delay": 2.0})
    assert "ready but serves no model named 'rank_1'" in error.value.message
    assert not [r for r in caplog.records if r.getMessage().startswith("retry")]


@pytest.mark.slow
def test_a_thousand_documents_in_chunks_rank_like_one_request(plain_server):
    texts = [f"passage {i}: {' '.join(RENDERED[i % 7].split()[: 2 + i % 5])}" for i in range(1000)]
    raw = raw_infer(plain_server.grpc_url, QUERY, texts, {"max_reasoning_tokens": 1})
    with Rank1Client(plain_server.grpc_url) as client:  # default chunk size: 63 requests
        response = client.rerank(QUERY, texts, max_reasoning_tokens=1)
    assert sorted(r.index for r in response.results) == list(range(1000))
    # Chunks run in other engine batches than the single request, so scores may differ in the last bits and
    # near-ties may swap places: compare each document's score, and check the merged ranking is sorted by it.
    by_index = {r.index: r.score for r in response.results}
    np.testing.assert_allclose([by_index[i] for i in range(1000)], raw["scores"], atol=1e-6)
    ranked = [r.score for r in response.results]
    assert all(a >= b for a, b in itertools.pairwise(ranked))


def tls_options(certificates, key, **extra) -> dict:
    return {"root_certificates": certificates.ca, "api_key": key.value, "api_key_name": key.name, **extra}


@pytest.mark.parametrize("mode", MODES)
def test_tls_with_an_api_key(guarded_server, certificates, api_key, mode):
    url = guarded_server.grpc_url
    documents = RENDERED[:2]  # this server's engine runs 1 sequence and queues 2: a fourth document could overflow
    raw = raw_infer(url, QUERY, documents, {}, headers=api_key.metadata, ssl=True,
                    root_certificates=str(certificates.ca))
    assert_matches_raw(call(mode, url, "rerank", QUERY, documents, options=tls_options(certificates, api_key)), raw)
    # Health is not restricted on this server: no key needed.
    assert call(mode, url, "ready", options={"root_certificates": certificates.ca}) is True


@pytest.mark.parametrize("mode", MODES)
def test_missing_or_wrong_api_key_raises_authentication_error_without_retrying(guarded_server, certificates,
                                                                               api_key, mode, caplog):
    for key in (None, "wrong key"):
        options = tls_options(certificates, api_key, api_key=key, max_retries=5, initial_retry_delay=2.0)
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="rank1_client"), pytest.raises(AuthenticationError) as error:
            call(mode, guarded_server.grpc_url, "rerank", QUERY, RENDERED[:2], options=options)
        assert "triton-grpc-protocol-rank1-api-key" in error.value.message
        assert time.monotonic() - started < 1.5
    assert not [r for r in caplog.records if r.getMessage().startswith("retry")]


def test_an_untrusted_server_certificate_is_an_authentication_error(guarded_server, api_key):
    # ssl=True without root_certificates: the system roots do not know the test CA.
    with Rank1Client(guarded_server.grpc_url, ssl=True, api_key=api_key.value, initial_retry_delay=5.0) as client, \
            pytest.raises(AuthenticationError, match=r"(?i)handshake failed"):
        client.rerank(QUERY, RENDERED[:1])


@contextmanager
def engine_flood(server, certificates, api_key, threads: int = 6) -> Iterator[None]:
    """Keep the engine model's queue full with direct requests, like other tenants' traffic would.

    The entry model runs one request at a time, so only traffic that reaches the engine from elsewhere can
    fill its queue between a request's engine calls.
    """
    stop = threading.Event()

    def tensor(name: str, value: np.ndarray) -> grpcclient.InferInput:
        item = grpcclient.InferInput(name, list(value.shape), "INT32")
        item.set_data_from_numpy(value)
        return item

    def flood() -> None:
        inputs = [tensor("input_ids", np.arange(100, 132, dtype=np.int32)[np.newaxis]),
                  tensor("input_lengths", np.array([[32]], dtype=np.int32)),
                  tensor("request_output_len", np.array([[24]], dtype=np.int32))]
        with grpcclient.InferenceServerClient(server.grpc_url, ssl=True,
                                              root_certificates=str(certificates.ca)) as client:
            while not stop.is_set():
                try:
                    client.infer("tensorrt_llm", inputs, headers=api_key.metadata)
                except InferenceServerException:
                    stop.wait(0.005)

    workers = [threading.Thread(target=flood) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def test_queue_full_is_retried_until_every_call_succeeds(guarded_server, certificates, api_key, caplog):
    caplog.set_level(logging.INFO, logger="rank1_client")
    documents = RENDERED[:2]  # no more than the queue holds, so a request alone always fits
    impatient = Rank1Client(guarded_server.grpc_url, **tls_options(certificates, api_key, max_retries=0))
    patient = Rank1Client(guarded_server.grpc_url, **tls_options(
        certificates, api_key, max_retries=12, initial_retry_delay=0.2, max_retry_delay=1.0))
    overloaded = []
    with ThreadPoolExecutor(4) as pool:
        with engine_flood(guarded_server, certificates, api_key):
            for _ in range(5):
                try:
                    impatient.rerank(QUERY, documents)
                except ServerOverloadedError as error:
                    overloaded.append(error)
            futures = [pool.submit(patient.rerank, f"{QUERY} ({i})", documents) for i in range(4)]
            time.sleep(2.0)
        responses = [future.result(timeout=120) for future in futures]
    impatient.close()
    patient.close()
    assert overloaded, "without retries the full queue surfaces as ServerOverloadedError"
    assert "Exceeds maximum queue size" in overloaded[0].message
    assert all(response.usage.documents == 2 for response in responses)
    retried = [r for r in caplog.records if r.getMessage().startswith("retry") and "Exceeds maximum queue size"
               in r.getMessage()]
    assert retried, "the calls made during the flood were retried"


@pytest.mark.parametrize("mode", MODES)
def test_mutual_tls(mtls_server, certificates, mode):
    options = {"root_certificates": certificates.ca, "client_certificate": certificates.client_cert,
               "client_key": certificates.client_key}
    response = call(mode, mtls_server.grpc_url, "rerank", QUERY, RENDERED[:3], options=options)
    assert sorted(r.index for r in response.results) == [0, 1, 2]
    assert call(mode, mtls_server.grpc_url, "ready", options=options) is True
    # Without a client certificate the server closes the connection during the handshake.
    with pytest.raises(Rank1ConnectionError):
        call(mode, mtls_server.grpc_url, "rerank", QUERY, RENDERED[:3],
             options={"root_certificates": certificates.ca, "max_retries": 0})
