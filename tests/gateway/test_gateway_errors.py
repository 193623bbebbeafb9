"""Bad input through HTTP against the gateway in front of a real tritonserver: each answer's status, field and
message, and both keep serving afterwards."""

from __future__ import annotations

import cohere
import httpx
import pytest
from gateway_helpers import API_KEY, AUTH, DOCUMENTS, LIMITS, QUERY, replace

pytestmark = pytest.mark.server
ERROR_KEYS = {"message", "error", "error_type", "field"}


def post(gateway, route: str, body=None, *, headers=AUTH, **kwargs) -> httpx.Response:
    return httpx.post(gateway.url + route, json=body, headers=headers, timeout=120, **kwargs)


def check_error(response: httpx.Response, status: int, field: str | None, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS and body["message"] == body["error"]
    assert body["field"] == field, body
    for fragment in fragments:
        assert fragment in body["message"], body
    assert "Traceback" not in response.text
    return body


VALID = {"query": QUERY, "documents": DOCUMENTS[:2]}
MAX_DOCUMENTS, MAX_CHARS = LIMITS["max_documents"], LIMITS["max_text_chars"]

# (route, body, field, message fragments)
BAD_BODIES = {
    "documents not a list": ("/v2/rerank", {"query": QUERY, "documents": "a b c"}, "documents",
                             ["documents: Input should be a valid list"]),
    "document a number": ("/v2/rerank", {"query": QUERY, "documents": ["a", 5]}, "documents",
                          ["documents[1]: must be a string or an object"]),
    "object without text": ("/v1/rerank", {"query": QUERY, "documents": [{"title": "t"}]}, "documents",
                            ["documents[0]: an object needs a string 'text' field"]),
    "query a number": ("/v2/rerank", {"query": 7, "documents": ["a"]}, "query",
                       ["query: Input should be a valid string"]),
    "query missing": ("/v2/rerank", {"documents": ["a"]}, "query", ["query: required"]),
    "top_n a string": ("/v2/rerank", {**VALID, "top_n": "3"}, "top_n", ["top_n: Input should be a valid integer"]),
    "top_n negative": ("/v1/rerank", {**VALID, "top_n": -1}, "top_n", ["top_n: Input should be greater than"]),
    "return_documents a string": ("/v1/rerank", {**VALID, "return_documents": "yes"}, "return_documents",
                                  ["return_documents: Input should be a valid boolean"]),
    "budget zero": ("/v2/rerank", {**VALID, "max_reasoning_tokens": 0}, "max_reasoning_tokens",
                    ["max_reasoning_tokens: Input should be greater than or equal to 1"]),
    "rethink too many": ("/v2/rerank", {**VALID, "rethink": 9}, "rethink", ["rethink: "]),
    "empty documents": ("/v2/rerank", {"query": QUERY, "documents": []}, "documents", ["documents: must not be empty"]),
    "too many documents": ("/v2/rerank", {"query": QUERY, "documents": ["cat"] * (MAX_DOCUMENTS + 1)}, "documents",
                           [f"{MAX_DOCUMENTS + 1} documents, over this gateway's limit of {MAX_DOCUMENTS}"]),
    "document too long": ("/v1/rerank", {"query": QUERY, "documents": ["cat", "x" * (MAX_CHARS + 1)]}, "documents",
                          [f"documents[1]: {MAX_CHARS + 1} characters, over this gateway's limit of {MAX_CHARS}"]),
    "query too long": ("/rerank", {"query": "q" * (MAX_CHARS + 1), "texts": ["cat"]}, "query", ["query: "]),
    "tei texts empty": ("/rerank", {"query": QUERY, "texts": []}, "documents", ["must not be empty"]),
    "tei texts and documents": ("/rerank", {"query": QUERY, "texts": ["a"], "documents": ["a"]}, "texts",
                                ["either `texts` (TEI) or `documents` (vLLM)"]),
    "tei left truncation": ("/rerank", {"query": QUERY, "texts": ["a"], "truncation_direction": "left"},
                            "truncation_direction", ["only Right"]),
    "tei raw_scores a string": ("/rerank", {"query": QUERY, "texts": ["a"], "raw_scores": "true"}, "raw_scores", []),
    # What the server's INVALID_ARGUMENT says, passed on with its field.
    "empty query (server)": ("/v2/rerank", {"query": "   ", "documents": ["cat"]}, "query",
                             ["query: must not be empty"]),
    "unknown prompt (server)": ("/v2/rerank", {**VALID, "prompt": "NoSuchDataset"}, "prompt",
                                ["unknown dataset prompt 'NoSuchDataset'"]),
    "budget over the model's limit (server)": ("/rerank", {"query": QUERY, "texts": ["cat"],
                                                           "max_reasoning_tokens": 10**8}, "max_reasoning_tokens",
                                               ["max_reasoning_tokens: must be between 1 and"]),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_bodies_answer_400_naming_the_field(toy_gateway, case):
    route, body, field, fragments = BAD_BODIES[case]
    check_error(post(toy_gateway, route, body), 400, field, *fragments)


def test_malformed_json_and_non_object_bodies(toy_gateway):
    malformed = httpx.post(toy_gateway.url + "/v2/rerank", content=b'{"query": "q", "documents": [',
                           headers={**AUTH, "Content-Type": "application/json"}, timeout=30)
    check_error(malformed, 400, None, "body: not valid JSON")
    check_error(post(toy_gateway, "/v2/rerank", ["not", "an", "object"]), 400, None, "body: must be a JSON object")


def test_keys(toy_gateway):
    missing = check_error(post(toy_gateway, "/v2/rerank", VALID, headers={}), 401, "Authorization", "missing API key")
    assert missing["error_type"] == "authentication"
    wrong = post(toy_gateway, "/v2/rerank", VALID, headers={"Authorization": "Bearer not-the-key"})
    check_error(wrong, 401, "Authorization", "API key not accepted")
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    basic = post(toy_gateway, "/rerank", {"query": QUERY, "texts": ["a"]},
                 headers={"Authorization": f"Basic {API_KEY}"})
    check_error(basic, 401, "Authorization", "missing API key")
    # The key is checked before the body is read: a bad key with a bad body is still a 401.
    assert post(toy_gateway, "/v2/rerank", {"bad": 1}, headers={}).status_code == 401
    # Health, metrics and docs stay open for probes and Prometheus.
    assert httpx.get(toy_gateway.url + "/health", timeout=30).status_code == 200
    assert httpx.get(toy_gateway.url + "/metrics", timeout=30).status_code == 200

    with pytest.raises(cohere.UnauthorizedError) as raised:
        cohere.ClientV2(api_key="wrong", base_url=toy_gateway.url).rerank(model="rank1", query=QUERY,
                                                                           documents=["a"])
    assert raised.value.body["field"] == "Authorization"


def test_oversized_bodies_answer_413(toy_gateway):
    big = {"query": QUERY, "documents": ["cat " * 400] * 90}  # about 144 KB, over the 128 KiB limit
    check_error(post(toy_gateway, "/v2/rerank", big), 413, "body", "larger than this gateway's limit of 131072 bytes")

    def chunks():  # no Content-Length: the limit holds while the body streams in
        yield b'{"query": "q", "documents": ["'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"]}'

    streamed = httpx.post(toy_gateway.url + "/rerank", content=chunks(),
                          headers={**AUTH, "Content-Type": "application/json"}, timeout=30)
    check_error(streamed, 413, "body", "larger than this gateway's limit")


def test_cohere_sdk_sees_the_server_field_in_bad_request_error(toy_gateway):
    co = cohere.ClientV2(api_key=API_KEY, base_url=toy_gateway.url)
    with pytest.raises(cohere.BadRequestError) as raised:
        co.rerank(model="rank1", query="", documents=["cat"])
    assert raised.value.status_code == 400
    assert raised.value.body["field"] == "query" and "must not be empty" in raised.value.body["message"]


def test_deadline_answers_504(gateway_with, gateway_settings):
    with gateway_with(replace(gateway_settings, timeout=0.001)) as gateway:
        body = check_error(post(gateway, "/v2/rerank", VALID), 504, None, "deadline")
    assert body["error_type"] == "timeout"


def test_unknown_routes_and_methods_answer_json(toy_gateway):
    check_error(httpx.post(toy_gateway.url + "/v3/rerank", json=VALID, headers=AUTH, timeout=30), 404, None)
    check_error(httpx.get(toy_gateway.url + "/v2/rerank", headers=AUTH, timeout=30), 405, None)


def test_gateway_and_server_keep_serving_and_nothing_answered_500(toy_gateway):
    for case in ("document a number", "empty query (server)", "unknown prompt (server)"):
        route, body, _, _ = BAD_BODIES[case]
        assert post(toy_gateway, route, body).status_code == 400
    good = post(toy_gateway, "/v2/rerank", {"query": QUERY, "documents": DOCUMENTS})
    assert good.status_code == 200 and len(good.json()["results"]) == len(DOCUMENTS)
    assert httpx.get(toy_gateway.url + "/health", timeout=30).json()["status"] == "ready"
    metrics = httpx.get(toy_gateway.url + "/metrics", timeout=30).text
    assert 'code="500"' not in metrics
    assert 'rank1_gateway_requests_total{code="400",route="/v2/rerank"}' in metrics
