"""Validation of rank1 requests: every bad field is named; outputs and ranking."""

import numpy as np
import pytest

from rank1_triton.errors import RequestError
from rank1_triton.reranker import DocumentScore
from rank1_triton.triton_models.entry_request import parse_parameters, parse_rerank_request, response_tensors


def texts(*items):
    return np.array([i if isinstance(i, bytes) else i.encode() for i in items], dtype=object)


def parse(tensors=None, parameters=None, max_documents=4):
    base = {"query": texts("q"), "documents": texts("a", "b")}
    base.update(tensors or {})
    return parse_rerank_request(
        base, parameters or {}, max_documents=max_documents, max_reasoning_tokens_limit=100,
        default_max_reasoning_tokens=50,
    )


def test_defaults():
    request = parse()
    assert request.query == "q" and request.documents == ["a", "b"]
    assert request.options.max_reasoning_tokens == 50 and request.options.rethink == 0 and request.options.truncate
    assert request.top_n == 2 and not request.return_reasoning and request.instruction is None


def test_parameters_are_read():
    request = parse({"instruction": texts("i"), "prompt": texts("SciFact")},
                    {"max_reasoning_tokens": 7, "rethink": 2, "return_reasoning": True, "top_n": 1,
                     "truncate": "NONE"})
    assert (request.options.max_reasoning_tokens, request.options.rethink, request.options.truncate) == (7, 2, False)
    assert request.return_reasoning and request.top_n == 1
    assert request.instruction == "i" and request.prompt == "SciFact"


@pytest.mark.parametrize(
    ("tensors", "parameters", "field"),
    [
        ({"query": texts("  ")}, {}, "query"),
        ({"query": texts("a", "b")}, {}, "query"),
        ({"documents": texts()}, {}, "documents"),
        ({"documents": texts("a", "b", "c", "d", "e")}, {}, "documents"),
        ({"documents": texts(b"ok", b"\xff\xfe bad")}, {}, "documents"),
        ({"query": texts(b"\xc3")}, {}, "query"),
        ({}, {"max_reasoning_tokens": -1}, "max_reasoning_tokens"),
        ({}, {"max_reasoning_tokens": 10**6}, "max_reasoning_tokens"),
        ({}, {"max_reasoning_tokens": "12"}, "max_reasoning_tokens"),
        ({}, {"rethink": 99}, "rethink"),
        ({}, {"top_n": 0}, "top_n"),
        ({}, {"truncate": "START"}, "truncate"),
        ({}, {"return_reasoning": "yes"}, "return_reasoning"),
        ({}, {"temperature": 0.5}, "temperature"),
    ],
)
def test_each_bad_field_is_named(tensors, parameters, field):
    with pytest.raises(RequestError) as error:
        parse(tensors, parameters)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")


def test_parameters_json():
    assert parse_parameters('{"top_n": 3}') == {"top_n": 3}
    assert parse_parameters("") == {} and parse_parameters(None) == {}


def test_ranking_is_best_first_stable_and_cut():
    results = [DocumentScore(s, "", 1, False, False) for s in (0.2, 0.9, 0.2, 0.5)]
    request = parse({"documents": texts("a", "b", "c", "d")}, {"top_n": 3})
    assert response_tensors(request, results)["ranking"].tolist() == [1, 3, 0]


def test_response_tensors_types_and_optional_reasoning():
    results = [DocumentScore(0.25, "r1</think>", 3, False, True), DocumentScore(0.75, "r2", 5, True, False)]
    request = parse(parameters={"top_n": 1})
    out = response_tensors(request, results)
    assert out["scores"].dtype == np.float32 and out["ranking"].tolist() == [1]
    assert out["reasoning_tokens"].tolist() == [3, 5] and out["forced"].tolist() == [False, True]
    assert out["truncated"].tolist() == [True, False] and "reasoning" not in out
    with_reasoning = response_tensors(parse(parameters={"return_reasoning": True}), results)
    assert with_reasoning["reasoning"].tolist() == [b"r1</think>", b"r2"]
