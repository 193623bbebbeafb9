"""The ``rank1`` tool and the example script against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rank1_client import Rank1Client
from rank1_client.cli import main

pytestmark = pytest.mark.server
EXAMPLE = Path(__file__).parents[2] / "client" / "examples" / "rerank_example.py"
QUERY = "which passage is about cats?"
DOCUMENT_LINES = [
    '"Cats sleep for most of the day."',
    '{"id": "rhine", "title": "Rivers", "text": "The Rhine flows into the North Sea."}',
    '{"id": "soup", "text": "A recipe for lentil soup."}',
    '{"id": "kittens", "title": null, "text": "Kittens learn to hunt by playing."}',
]
DOCUMENTS = ["Cats sleep for most of the day.", {"title": "Rivers", "text": "The Rhine flows into the North Sea."},
             {"text": "A recipe for lentil soup."}, {"text": "Kittens learn to hunt by playing."}]
IDS = [None, "rhine", "soup", "kittens"]
LABELS = ["#0", "rhine", "soup", "kittens"]


@pytest.fixture
def documents_file(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(DOCUMENT_LINES) + "\n")
    return path


def expected(url: str, **options):
    with Rank1Client(url) as client:
        return client.rerank(QUERY, DOCUMENTS, **options)


def test_rerank_prints_a_table(plain_server, documents_file, capsys):
    status = main(["rerank", "--url", plain_server.grpc_url, "--query", QUERY, "--documents", str(documents_file),
                   "--top-n", "3", "--reasoning", "--max-reasoning-tokens", "3"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "score", "doc", "tokens", "reasoning"]
    reference = expected(plain_server.grpc_url, top_n=3, max_reasoning_tokens=3, return_reasoning=True)
    rows = lines[1:4]
    for rank, (row, result) in enumerate(zip(rows, reference.results, strict=True), 1):
        assert row.split()[:4] == [str(rank), f"{result.score:.4f}", LABELS[result.index], "3*"]
        assert row.endswith(result.reasoning.strip().splitlines()[0][:100].rstrip())
    assert lines[4].startswith("4 documents scored, 12 reasoning tokens")


def test_rerank_prints_json(plain_server, documents_file, capsys):
    status = main(["rerank", "--url", plain_server.grpc_url, "--query", QUERY, "--documents", str(documents_file),
                   "--json", "--max-reasoning-tokens", "2"])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    reference = expected(plain_server.grpc_url, max_reasoning_tokens=2)
    assert [r["index"] for r in printed["results"]] == [r.index for r in reference.results]
    assert [r["rank"] for r in printed["results"]] == [1, 2, 3, 4]
    assert [r["id"] for r in printed["results"]] == [IDS[r.index] for r in reference.results]
    assert [r["score"] for r in printed["results"]] == pytest.approx([r.score for r in reference.results], abs=1e-6)
    assert printed["usage"] == {"documents": 4, "reasoning_tokens": 8}
    assert "reasoning" not in printed["results"][0]


def test_rethink_truncate_priority_and_header_options(plain_server, documents_file, capsys):
    status = main(["rerank", "--url", plain_server.grpc_url, "--query", QUERY, "--documents", str(documents_file),
                   "--json", "--max-reasoning-tokens", "2", "--rethink", "1", "--truncate", "NONE",
                   "--priority", "1", "--header", "x-request-source=cli-tests"])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    reference = expected(plain_server.grpc_url, max_reasoning_tokens=2, rethink=1, truncate="NONE")
    assert [r["index"] for r in printed["results"]] == [r.index for r in reference.results]
    assert printed["usage"]["reasoning_tokens"] == reference.usage.reasoning_tokens
    without_rethink = expected(plain_server.grpc_url, max_reasoning_tokens=2)
    assert reference.usage.reasoning_tokens > without_rethink.usage.reasoning_tokens, "--rethink reached the server"
    with pytest.raises(SystemExit) as exit_status:
        main(["rerank", "--query", "q", "--documents", str(documents_file), "--header", "no-equals-sign"])
    assert exit_status.value.code == 2 and "expected NAME=VALUE" in capsys.readouterr().err


def test_health_command(plain_server, capsys):
    assert main(["health", "--url", plain_server.grpc_url]) == 0
    assert capsys.readouterr().out.splitlines() == ["live: yes", "ready: yes", "model rank1 ready: yes"]
    assert main(["health", "--url", "127.0.0.1:1", "--max-retries", "0"]) == 1
    assert "rank1: error: [UNAVAILABLE]" in capsys.readouterr().err


def test_tls_api_key_and_mutual_tls_options(guarded_server, mtls_server, certificates, api_key, tmp_path, capsys,
                                            monkeypatch):
    monkeypatch.delenv("RANK1_API_KEY", raising=False)
    documents = tmp_path / "two.jsonl"
    documents.write_text('"Cats sleep a lot."\n"Rivers flow."\n')  # the guarded server's queue holds two
    command = ["rerank", "--url", guarded_server.grpc_url, "--root-cert", str(certificates.ca), "--query", QUERY,
               "--documents", str(documents), "--json", "--api-key-name", api_key.name]
    assert main([*command, "--api-key", api_key.value]) == 0
    assert json.loads(capsys.readouterr().out)["usage"]["documents"] == 2
    assert main(command) == 1
    assert "This protocol is restricted" in capsys.readouterr().err
    assert main(["health", "--url", mtls_server.grpc_url, "--root-cert", str(certificates.ca),
                 "--client-cert", str(certificates.client_cert), "--client-key", str(certificates.client_key)]) == 0


def test_a_bad_documents_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"title": "no text"}\n')
    assert main(["rerank", "--query", "q", "--documents", str(bad)]) == 2
    assert f"{bad}:1: expected a string or an object" in capsys.readouterr().err


# --- rerank-run -------------------------------------------------------------------------------------------------

QUERIES = {"q1": "cats and kittens", "q2": "rivers of Europe", "q3": "soup recipes"}
CORPUS = {f"d{i}": {"title": f"Title {i}", "text": f"passage {i} about {topic}"}
          for i, topic in enumerate(["cats", "the Rhine", "lentils", "kittens", "the Danube", "tomato soup"])}
# First-stage scores: each query ranks all six passages, plus one id the corpus lacks; q9 has no query text.
FIRST_STAGE = {
    "q1": {"d0": 9.0, "d3": 8.0, "d1": 7.0, "d2": 6.0, "d4": 5.0, "d5": 4.0, "missing": 8.5},
    "q2": {"d1": 9.0, "d4": 8.0, "d0": 3.0, "d2": 2.0, "d3": 1.0, "d5": 0.5},
    "q3": {"d5": 9.0, "d2": 8.0, "d0": 1.0, "d1": 0.9, "d3": 0.8, "d4": 0.7},
    "q9": {"d0": 1.0},
}
TOP_K = 4


@pytest.fixture
def run_inputs(tmp_path) -> dict[str, Path]:
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"_id": qid, "text": text}) + "\n" for qid, text in QUERIES.items()))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": docid, **doc}) + "\n" for docid, doc in CORPUS.items()))
    trec = tmp_path / "bm25.trec"
    trec.write_text("".join(
        f"{qid} Q0 {docid} {rank} {score} bm25\n"
        for qid, scores in FIRST_STAGE.items()
        for rank, (docid, score) in enumerate(sorted(scores.items(), key=lambda item: -item[1]), 1)
    ))
    json_run = tmp_path / "bm25.json"
    json_run.write_text(json.dumps(FIRST_STAGE))
    return {"queries": queries, "corpus": corpus, "trec": trec, "json": json_run}


def expected_run(url: str) -> dict[str, list[tuple[str, float]]]:
    """Each query's top-k first-stage documents (those in the corpus) reranked by the library."""
    ranked = {}
    with Rank1Client(url) as client:
        for qid, query in QUERIES.items():
            top = sorted(FIRST_STAGE[qid], key=lambda docid: -FIRST_STAGE[qid][docid])[:TOP_K]
            candidates = [docid for docid in top if docid in CORPUS]
            response = client.rerank(query, [CORPUS[docid] for docid in candidates], max_reasoning_tokens=2)
            ranked[qid] = [(candidates[r.index], r.score) for r in response.results]
    return ranked


def read_output(path: Path) -> dict[str, list[tuple[str, float]]]:
    ranked: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, q0, docid, rank, score, tag = line.split()
        assert (q0, tag) == ("Q0", "rank1")
        assert int(rank) == len(ranked.setdefault(qid, [])) + 1
        ranked[qid].append((docid, float(score)))
    return ranked


def rerank_run(url: str, inputs: dict[str, Path], run: str, out: Path, concurrency: int = 2) -> int:
    return main(["rerank-run", "--url", url, "--queries", str(inputs["queries"]), "--corpus", str(inputs["corpus"]),
                 "--run", str(inputs[run]), "--top-k", str(TOP_K), "--out", str(out), "--no-progress",
                 "--max-reasoning-tokens", "2", "--concurrency", str(concurrency)])


def assert_same_run(actual: dict, reference: dict) -> None:
    assert actual.keys() == reference.keys()
    for qid, ranked in reference.items():
        assert [docid for docid, _ in actual[qid]] == [docid for docid, _ in ranked]
        assert [score for _, score in actual[qid]] == pytest.approx([score for _, score in ranked], abs=1e-6)


@pytest.mark.parametrize("run", ["trec", "json"])
def test_rerank_run_reranks_the_top_k_of_each_query(plain_server, run_inputs, tmp_path, run, capsys):
    out = tmp_path / f"reranked-{run}.trec"
    assert rerank_run(plain_server.grpc_url, run_inputs, run, out) == 0
    reference = expected_run(plain_server.grpc_url)
    assert_same_run(read_output(out), reference)
    assert len(reference["q1"]) == TOP_K - 1  # "missing" was among q1's top 4 but is not in the corpus
    err = capsys.readouterr().err
    assert "3 queries, 0 already" in err
    assert "skipping 1 run queries without query text and 1 documents missing from the corpus" in err


def test_rerank_run_resumes_after_a_crash_without_losing_finished_queries(plain_server, run_inputs, tmp_path,
                                                                          capsys):
    url = plain_server.grpc_url
    reference = expected_run(url)
    # A crash: the first query's lines were made durable, the second was cut mid-line.
    out = tmp_path / "reranked.trec"
    finished = "".join(f"q1 Q0 {docid} {rank} 0.12345678 rank1\n" for rank, (docid, _) in
                       enumerate(reference["q1"], 1))  # a marker score: q1 must not be reranked again
    out.write_text(finished + "q2 Q0 d1 1 0.5 rank1\nq2 Q0 d4 2 0.4")
    assert rerank_run(url, run_inputs, "trec", out) == 0
    assert "3 queries, 1 already" in capsys.readouterr().err
    resumed = read_output(out)
    assert resumed["q1"] == [(docid, 0.12345678) for docid, _ in reference["q1"]]
    assert_same_run({qid: resumed[qid] for qid in ("q2", "q3")}, {qid: reference[qid] for qid in ("q2", "q3")})
    assert out.read_text().startswith(finished)


def test_a_failing_query_stops_the_run_after_the_finished_ones_are_written(plain_server, run_inputs, tmp_path,
                                                                          capsys):
    url = plain_server.grpc_url
    run_inputs["queries"].write_text("".join(
        json.dumps({"_id": qid, "text": "   " if qid == "q3" else text}) + "\n" for qid, text in QUERIES.items()))
    out = tmp_path / "reranked.trec"
    assert rerank_run(url, run_inputs, "trec", out, concurrency=1) == 2  # the server refused the request
    assert "query: must not be empty" in capsys.readouterr().err
    assert set(read_output(out)) == {"q1", "q2"}
    run_inputs["queries"].write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    assert rerank_run(url, run_inputs, "trec", out) == 0
    assert "3 queries, 2 already" in capsys.readouterr().err
    assert_same_run(read_output(out), expected_run(url))


def test_rerank_run_skip_failed_finishes_and_logs_the_failed_queries(plain_server, run_inputs, tmp_path, capsys):
    url = plain_server.grpc_url
    run_inputs["queries"].write_text("".join(
        json.dumps({"_id": qid, "text": "   " if qid == "q2" else text}) + "\n" for qid, text in QUERIES.items()))
    out = tmp_path / "reranked.trec"
    command = ["rerank-run", "--url", url, "--queries", str(run_inputs["queries"]), "--corpus",
               str(run_inputs["corpus"]), "--run", str(run_inputs["trec"]), "--top-k", str(TOP_K), "--out", str(out),
               "--no-progress", "--max-reasoning-tokens", "2", "--skip-failed"]
    assert main(command) == 0
    err = capsys.readouterr().err
    assert "query q2 failed, skipped" in err and "1 queries failed and were skipped" in err
    assert set(read_output(out)) == {"q1", "q3"}
    failure = json.loads(out.with_name("reranked.trec.failures.jsonl").read_text())
    assert (failure["qid"], failure["type"], failure["field"]) == ("q2", "InvalidRequestError", "query")
    assert "query: must not be empty" in failure["error"] and failure["request_id"]
    # The same command again retries only the failed query (still refused): the finished ones stay.
    log = tmp_path / "failed.jsonl"
    assert main([*command, "--failures", str(log)]) == 0
    assert "3 queries, 2 already" in capsys.readouterr().err
    assert json.loads(log.read_text())["qid"] == "q2"


def test_console_script_and_example_script(plain_server):
    health = subprocess.run([Path(sys.executable).with_name("rank1"), "health", "--url", plain_server.grpc_url],
                            capture_output=True, text=True, timeout=60)
    assert health.returncode == 0, health.stderr
    example = subprocess.run([sys.executable, str(EXAMPLE), "--url", plain_server.grpc_url,
                              "--max-reasoning-tokens", "4"], capture_output=True, text=True, timeout=120)
    assert example.returncode == 0, example.stderr
    assert example.stdout.count("score=") == 4
    assert "4 passages, 16 reasoning tokens" in example.stdout
