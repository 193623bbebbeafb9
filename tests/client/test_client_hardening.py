"""Production behaviour of the client against an in-process fake Triton (no tritonserver, no torch): cancellation
of work in flight, ``return_exceptions``, error classes, reconnects, deadlines, per-call options, credentials and
input checks."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import warnings

import grpc
import pytest
from fake_triton import MODEL, fake_score

from rank1_client import (
    NOT_GIVEN,
    AsyncRank1Client,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InsecureTransportWarning,
    InvalidRequestError,
    ModelNotFoundError,
    Rank1Client,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    RerankResponse,
    ServerOverloadedError,
)
from rank1_client._chunks import plan_query
from rank1_client._protocol import RerankOptions
from rank1_client._transport import TransportConfig

MODES = ["sync", "async"]
FAST = {"initial_retry_delay": 0.01, "max_retry_delay": 0.02}
DOCUMENTS = ["a cat", "the river Rhine", "soup", "kittens play", "a dog"]
BLANK = (grpc.StatusCode.INVALID_ARGUMENT, "query: must not be empty")


def run(mode: str, url: str, method: str, *args, options: dict | None = None, **kwargs):
    """``method`` of a fresh Rank1Client or AsyncRank1Client (iterators are collected into lists)."""
    if mode == "sync":
        with Rank1Client(url, **(options or {})) as client:
            result = getattr(client, method)(*args, **kwargs)
            return list(result) if method == "rerank_as_completed" else result

    async def scenario():
        async with AsyncRank1Client(url, **(options or {})) as client:
            if method == "rerank_as_completed":
                return [item async for item in client.rerank_as_completed(*args, **kwargs)]
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(scenario())


def refuse_blank(seen):
    return BLANK if not seen.query.strip() else None


# --- partial failure: cancel what is in flight, return_exceptions -------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_failed_request_cancels_the_other_requests_in_flight(fake_server, mode):
    fake_server.behaviour.fail = refuse_blank
    fake_server.behaviour.delay = lambda seen: 0.3 if not seen.query.strip() else 30.0
    pairs = [("cats", DOCUMENTS), ("   ", DOCUMENTS[:1]), ("rivers", DOCUMENTS)]
    started = time.monotonic()
    with pytest.raises(InvalidRequestError, match="query: must not be empty") as error:
        run(mode, fake_server.url, "rerank_many", pairs, options={"chunk_size": 2, "max_concurrency": 8})
    assert time.monotonic() - started < 5
    assert (error.value.position, error.value.query, error.value.document_indices) == (1, "   ", range(0, 1))
    slow = [seen for seen in fake_server.seen if seen.query.strip()]
    assert len(slow) == 6  # every chunk of the other two queries was in flight
    assert fake_server.wait_for(lambda: all(seen.cancelled for seen in slow)), "the server saw every call cancelled"


@pytest.mark.parametrize("mode", MODES)
def test_leaving_rerank_as_completed_early_cancels_the_rest(fake_server, mode):
    fake_server.behaviour.delay = lambda seen: 0.3 if seen.query == "fast" else 30.0
    pairs = [("fast", DOCUMENTS[:2]), ("slow 1", DOCUMENTS), ("slow 2", DOCUMENTS)]

    if mode == "sync":
        with Rank1Client(fake_server.url) as client:
            for position, response in client.rerank_as_completed(pairs):
                assert position == 0 and isinstance(response, RerankResponse)
                break
    else:
        async def scenario():
            async with AsyncRank1Client(fake_server.url) as client:
                completed = client.rerank_as_completed(pairs)
                async for position, _ in completed:
                    assert position == 0
                    break
                await completed.aclose()

        asyncio.run(scenario())
    slow = [seen for seen in fake_server.seen if seen.query != "fast"]
    assert slow, "at least one slow query was in flight"
    assert fake_server.wait_for(lambda: all(seen.cancelled for seen in slow))


@pytest.mark.parametrize("mode", MODES)
def test_return_exceptions_puts_each_failure_in_its_place(fake_server, mode):
    fake_server.behaviour.fail = refuse_blank
    pairs = [("cats", DOCUMENTS), ("   ", DOCUMENTS), ("no text", ["fine", {"text": None}]), ("dogs", DOCUMENTS[:2])]
    outcomes = run(mode, fake_server.url, "rerank_many", pairs, return_exceptions=True, request_id="batch-7",
                   options={"chunk_size": 2})
    assert [type(outcome) for outcome in outcomes] == [RerankResponse, InvalidRequestError, InvalidRequestError,
                                                       RerankResponse]
    refused, bad_document = outcomes[1], outcomes[2]
    assert (refused.position, refused.query, refused.request_id, refused.status) == (1, "   ", "batch-7-1",
                                                                                   "INVALID_ARGUMENT")
    assert (bad_document.position, bad_document.document_index, bad_document.field) == (2, 1, "documents")
    assert bad_document.status is None, "refused by the client: nothing was sent"
    assert [r.index for r in outcomes[0].results] == [2, 0, 4, 3, 1]  # the fake prefers short passages
    assert outcomes[3].request_id == "batch-7-3"
    completed = dict(run(mode, fake_server.url, "rerank_as_completed", pairs, return_exceptions=True))
    assert sorted(completed) == [0, 1, 2, 3] and isinstance(completed[1], InvalidRequestError)


# --- error classes -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_mistyped_model_name_is_model_not_found_at_once(fake_server, mode):
    options = {"model_name": "rank2", "max_retries": 5, "initial_retry_delay": 5.0}
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"ready but serves no model named 'rank2'") as error:
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], options=options)
    assert time.monotonic() - started < 3
    assert len(fake_server.seen) == 1, "not retried"
    assert not isinstance(error.value, Rank1ConnectionError)


@pytest.mark.parametrize("mode", MODES)
def test_a_draining_server_is_retried_on_a_new_connection(fake_server, mode):
    # Triton 2.51 answers "unknown model" for every model while it drains, and reports itself not ready.
    unknown = (grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{MODEL}' is not found")
    fake_server.behaviour.script = [unknown, unknown]
    fake_server.behaviour.ready = False
    response = run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:2], options=FAST)
    assert response.usage.documents == 2
    peers = [seen.peer for seen in fake_server.seen]
    assert len(peers) == 3 and len(set(peers)) == 3, "each retry after a connection failure opens a new connection"


@pytest.mark.parametrize("mode", MODES)
def test_unknown_model_with_an_unreadable_readiness_is_retried_a_little_then_not_found(fake_server, mode):
    fake_server.behaviour.served = set()
    fake_server.behaviour.ready = None  # the readiness call fails too
    with pytest.raises(ModelNotFoundError, match="tell a mistyped model_name from a draining server") as error:
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], options={**FAST, "max_retries": 8})
    assert len(fake_server.seen) == 3  # two retries, not eight
    assert error.value.query == "q" and error.value.status == "NOT_FOUND"


@pytest.mark.parametrize("mode", MODES)
def test_resource_exhausted_is_retried_on_the_same_connection(fake_server, mode, caplog):
    fake_server.behaviour.script = [(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")]
    with caplog.at_level(logging.INFO, logger="rank1_client"):
        response = run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:2], options=FAST)
    assert response.usage.documents == 2
    assert len({seen.peer for seen in fake_server.seen}) == 1, "a busy server is not a broken connection"
    assert any("rate limit exceeded" in record.getMessage() for record in caplog.records)
    fake_server.behaviour.script = [(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")] * 3
    with pytest.raises(ServerOverloadedError):
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:2], options={**FAST, "max_retries": 2})


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_certificate_file_is_a_configuration_error(fake_server, tmp_path, mode):
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(ConfigurationError, match="root_certificates: cannot read") as error:
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], options={"root_certificates": missing})
    assert error.value.field == "root_certificates" and isinstance(error.value, Rank1Error)
    with pytest.raises(ConfigurationError, match="client_key"):
        run(mode, fake_server.url, "health", options={"client_certificate": missing,
                                                      "client_key": tmp_path / "key.pem"})


def test_closing_the_client_from_another_thread_fails_the_call_with_a_client_error(fake_server):
    fake_server.behaviour.delay_s = 30.0
    client = Rank1Client(fake_server.url, max_retries=3)
    errors: list[BaseException] = []

    def call():
        try:
            client.rerank("q", DOCUMENTS[:2])
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    assert fake_server.wait_for(lambda: len(fake_server.seen) == 1)
    client.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ClientClosedError), errors
    assert len(fake_server.seen) == 1, "not retried"
    fake_server.behaviour.delay_s = 0.0
    assert client.rerank("q", DOCUMENTS[:2]).usage.documents == 2  # a later call opens a new channel
    client.close()


def test_closing_an_async_client_during_a_call_fails_it_with_a_client_error(fake_server):
    fake_server.behaviour.delay_s = 30.0

    async def scenario():
        client = AsyncRank1Client(fake_server.url)
        task = asyncio.create_task(client.rerank("q", DOCUMENTS[:2]))
        while not fake_server.seen:
            await asyncio.sleep(0.01)
        await client.close()
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


# --- transport: channel options, deadlines ------------------------------------------------------------------------

def test_channel_options_reach_the_channel(fake_tls_server, certificates):
    url = fake_tls_server.url  # 127.0.0.1; the certificate also names localhost
    with Rank1Client(url, root_certificates=certificates.ca, max_retries=0, channel_options={
            "grpc.ssl_target_name_override": "not-the-server.example"}) as client, \
            pytest.raises(AuthenticationError, match=r"(?i)hostname verification"):
        client.rerank("q", DOCUMENTS[:1])
    with Rank1Client(url, root_certificates=certificates.ca, channel_options=[
            ("grpc.ssl_target_name_override", "localhost"), ("grpc.lb_policy_name", "round_robin")]) as client:
        assert client.rerank("q", DOCUMENTS[:1]).usage.documents == 1


def test_channel_options_override_the_clients_own():
    config = TransportConfig("h:1", channel_options={"grpc.max_receive_message_length": 1024,
                                                     "grpc.lb_policy_name": "round_robin"})
    args = dict(config.channel_args())
    assert args["grpc.max_receive_message_length"] == 1024
    assert args["grpc.lb_policy_name"] == "round_robin"
    assert args["grpc.use_local_subchannel_pool"] == 1
    assert len(config.channel_args()) == len(args), "no option twice"
    with pytest.raises(ValueError, match="channel_options"):
        TransportConfig("h:1", channel_options=[("only-a-name",)])


@pytest.mark.parametrize("mode", MODES)
def test_the_whole_call_deadline_bounds_every_chunk_and_retry(fake_server, mode):
    fake_server.behaviour.delay_s = 0.4
    started = time.monotonic()
    with pytest.raises(Rank1TimeoutError):
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS * 2, deadline=1.0,
            options={"chunk_size": 1, "max_concurrency": 1, "timeout": 30})
    assert time.monotonic() - started < 1.6, "not 10 chunks × 0.4 s"
    assert len(fake_server.seen) <= 3
    assert all(seen.time_remaining is not None and seen.time_remaining <= 1.0 for seen in fake_server.seen)


@pytest.mark.parametrize("mode", MODES)
def test_timeout_none_means_no_deadline_and_not_given_the_clients(fake_server, mode):
    run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], timeout=None, options={"timeout": 30})
    run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], timeout=NOT_GIVEN, options={"timeout": 30})
    run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], options={"timeout": None})
    no_deadline, client_default, none_by_default = (seen.time_remaining for seen in fake_server.seen)
    assert no_deadline is None and none_by_default is None
    assert 25 < client_default <= 31


@pytest.mark.parametrize("mode", MODES)
def test_health_timeout_bounds_the_whole_check(fake_server, mode):
    fake_server.behaviour.delay_s = 0.4  # ServerReady and ModelReady take 0.4 s each
    started = time.monotonic()
    with pytest.raises(Rank1TimeoutError):
        run(mode, fake_server.url, "health", timeout=0.6)
    assert time.monotonic() - started < 1.0
    assert run(mode, fake_server.url, "ready", timeout=None) is True


# --- per-call options --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_request_id_headers_priority_and_retries_per_call(fake_server, mode):
    options = {**FAST, "headers": {"X-Tenant": "search"}, "chunk_size": 2}
    response = run(mode, fake_server.url, "rerank", "q", DOCUMENTS, request_id="call-1", priority=1,
                   extra_headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                   options=options)
    assert response.request_id == "call-1"
    assert [seen.request_id for seen in fake_server.seen] == ["call-1"] * 3
    assert {seen.priority for seen in fake_server.seen} == {1}
    metadata = fake_server.seen[0].metadata
    assert metadata["traceparent"].startswith("00-0af7") and metadata["x-tenant"] == "search"
    assert [r.score for r in response.results] == pytest.approx(sorted((fake_score(d) for d in DOCUMENTS),
                                                                       reverse=True))
    fake_server.seen.clear()
    generated = run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], options=options)
    assert len(generated.request_id) == 32 and fake_server.seen[0].request_id == generated.request_id
    assert fake_server.seen[0].priority == 0 and "traceparent" not in fake_server.seen[0].metadata
    fake_server.seen.clear()
    many = run(mode, fake_server.url, "rerank_many", [("a", DOCUMENTS[:1]), ("b", DOCUMENTS[:1])], request_id="m")
    assert [r.request_id for r in many] == ["m-0", "m-1"]
    fake_server.seen.clear()
    fake_server.behaviour.script = [(grpc.StatusCode.UNAVAILABLE, "Socket closed")] * 5
    with pytest.raises(Rank1ConnectionError) as error:
        run(mode, fake_server.url, "rerank", "q", DOCUMENTS[:1], max_retries=1, request_id="r",
            options={**FAST, "max_retries": 4})
    assert len(fake_server.seen) == 2 and error.value.request_id == "r"


def test_call_options_are_checked_before_sending(fake_server):
    with Rank1Client(fake_server.url) as client:
        for options, field in [({"priority": -1}, "priority"), ({"priority": 1.5}, "priority"),
                               ({"max_retries": True}, "max_retries"), ({"request_id": "\ud800"}, "request_id")]:
            with pytest.raises(InvalidRequestError) as error:
                client.rerank("q", DOCUMENTS, **options)
            assert error.value.field == field
        with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
            client.rerank("q", DOCUMENTS, colour="blue")
        with pytest.raises(ValueError, match="timeout"):
            client.rerank("q", DOCUMENTS, timeout=-1)
    assert fake_server.seen == []


# --- credentials -------------------------------------------------------------------------------------------------

def test_an_api_key_over_plaintext_to_another_host_warns_once_per_client():
    with pytest.warns(InsecureTransportWarning, match="without TLS"):
        Rank1Client("rank1.example.com:8001", api_key="secret")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Rank1Client("rank1.example.com:8001", api_key="secret", ssl=True)
        Rank1Client("localhost:8001", api_key="secret")  # never leaves the machine
        Rank1Client("127.0.0.1:8001", api_key="secret")
        Rank1Client("rank1.example.com:8001")  # no key to leak


def test_the_api_key_and_header_values_stay_out_of_reprs():
    client = Rank1Client("rank1.example.com:8001", api_key="s3cret", ssl=True,
                         headers={"authorization": "Bearer t0ken"})
    for text in (repr(client), repr(client._transport), str(client._transport)):
        assert "s3cret" not in text and "t0ken" not in text
    assert "api_key='***'" in repr(client)
    assert "authorization" in repr(client._transport)


# --- inputs ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "reason"), [
    ({"text": None}, "'text' that is not a string"),
    ({"text": 7}, "'text' that is not a string"),
    ({"title": 3, "text": "body"}, "'title' that is not a string"),
    ("lone \ud83d surrogate", "not valid text"),
    ({"title": "ok", "text": "bad \udc80"}, "not valid text"),
])
def test_documents_that_cannot_be_sent_faithfully_are_rejected(document, reason):
    with pytest.raises(InvalidRequestError, match=reason) as error:
        plan_query(0, "q", ["fine", document], RerankOptions(), chunk_size=4)
    assert (error.value.field, error.value.document_index) == ("documents", 1)


@pytest.mark.parametrize(("query", "options", "field"), [
    ("bad \ud800 query", {}, "query"),
    (None, {}, "query"),
    ("q", {"instruction": "\udfff"}, "instruction"),
    ("q", {"top_n": 2.5}, "top_n"),
    ("q", {"top_n": True}, "top_n"),
    ("q", {"top_n": "3"}, "top_n"),
    ("q", {"max_reasoning_tokens": 10.0}, "max_reasoning_tokens"),
    ("q", {"rethink": False}, "rethink"),
])
def test_queries_and_options_are_checked_before_sending(fake_server, query, options, field):
    with Rank1Client(fake_server.url) as client, pytest.raises(InvalidRequestError) as error:
        client.rerank(query, DOCUMENTS, **options)
    assert error.value.field == field
    assert fake_server.seen == []


def test_numpy_integers_count_as_integers(fake_server):
    np = pytest.importorskip("numpy")
    with Rank1Client(fake_server.url) as client:
        response = client.rerank("q", DOCUMENTS, top_n=np.int64(2), max_reasoning_tokens=np.int32(3))
    assert len(response.results) == 2 and fake_server.seen[0].parameters["max_reasoning_tokens"] == 3


def test_the_command_has_a_version(capsys):
    from rank1_client import __version__
    from rank1_client.cli import main

    with pytest.raises(SystemExit) as exit_status:
        main(["--version"])
    assert exit_status.value.code == 0
    assert capsys.readouterr().out.strip() == f"rank1 {__version__} (rank1-client)"
