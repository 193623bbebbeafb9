"""``rank1 evaluate`` and ``rank1_client.evaluate``: inputs, metrics against ir-measures on the written files, the
cost table, plots, failures, and resuming from the pair cache. The fake server's tests need no tritonserver; the
toy server's (marker ``server``) run the real toy model."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import grpc
import pytest
from fake_triton import fake_score

from rank1_client import Rank1Client
from rank1_client.cli import main

ir_measures = pytest.importorskip("ir_measures", reason="needs the evaluate extra (rank1-client[evaluate])")
scipy_stats = pytest.importorskip("scipy.stats", reason="needs the evaluate extra (rank1-client[evaluate])")

from rank1_client.evaluate import (  # noqa: E402 - after the skip
    Collection,
    EvaluationFailed,
    PairCache,
    evaluate,
    load_collection,
    load_qrels,
)

MEASURES = ["nDCG@10", "AP", "R@10", "RR@10"]


def write_collection(directory: Path, sets: list[tuple[str, list[str], list[bool]]], seed: int = 5) -> dict:
    """Queries, corpus (BEIR JSON lines), TREC qrels and a shuffled first-stage TREC run for ``sets`` of
    ``(query, passages, labels)``; returns the paths."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    queries, corpus, qrels, run = [], [], [], []
    for i, (query, passages, labels) in enumerate(sets):
        qid = f"q{i}"
        queries.append(json.dumps({"_id": qid, "text": query}))
        order = list(range(len(passages)))
        rng.shuffle(order)  # a weak first stage
        for j, (passage, label) in enumerate(zip(passages, labels, strict=True)):
            corpus.append(json.dumps({"_id": f"{qid}-d{j}", "title": "", "text": passage} if j % 2 else
                                     {"_id": f"{qid}-d{j}", "text": passage}))
            qrels.append(f"{qid} 0 {qid}-d{j} {int(label)}")
        run += [f"{qid} Q0 {qid}-d{j} {rank} {100 - rank:.1f} bm25" for rank, j in enumerate(order, 1)]
    paths = {name: directory / file for name, file in
             (("queries", "queries.jsonl"), ("corpus", "corpus.jsonl"), ("qrels", "qrels.txt"), ("run", "bm25.trec"))}
    for name, lines in (("queries", queries), ("corpus", corpus), ("qrels", qrels), ("run", run)):
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


def direct_metrics(qrels: Path, run_file: Path, measures=MEASURES) -> dict[str, float]:
    """ir-measures run directly on the files, the reference for every number of the report."""
    parsed = [ir_measures.parse_measure(m) for m in measures]
    values = ir_measures.calc_aggregate(parsed, ir_measures.read_trec_qrels(str(qrels)),
                                        ir_measures.read_trec_run(str(run_file)))
    return {str(measure): value for measure, value in values.items()}


def fake_sets(n: int = 6, docs: int = 7) -> list[tuple[str, list[str], list[bool]]]:
    """Queries whose relevant passages are the short ones, which the fake model prefers."""
    rng = random.Random(11)
    sets = []
    for i in range(n):
        lengths = rng.sample(range(3, 60), docs)
        passages = ["x" * length for length in lengths]
        labels = [length < 25 for length in lengths]
        sets.append((f"query {i}", passages, labels))
    return sets


# --- inputs ------------------------------------------------------------------------------------------------------

def test_inputs_in_beir_and_tsv_layouts(tmp_path):
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    assert load_qrels(trec) == load_qrels(beir) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    (tmp_path / "queries.tsv").write_text("id\ttext\nq1\tcats\nq2\trivers\n")
    (tmp_path / "corpus.tsv").write_text("d1\tCats\tcats purr\nd2\tDogs\tdogs bark\nd3\tRhine\tflows north\n")
    (tmp_path / "run.trec").write_text("q1 Q0 d2 1 9 bm25\nq1 Q0 d1 2 8 bm25\nq1 Q0 d3 3 1 bm25\n"
                                       "q2 Q0 d3 1 5 bm25\nq3 Q0 d1 1 5 bm25\n")
    collection = load_collection(run=tmp_path / "run.trec", qrels=trec, queries=tmp_path / "queries.tsv",
                                 corpus=tmp_path / "corpus.tsv", top_k=2)
    assert collection.queries == {"q1": "cats", "q2": "rivers"}
    assert collection.run == {"q1": [("d2", 9.0), ("d1", 8.0)], "q2": [("d3", 5.0)], "q3": [("d1", 5.0)]}
    assert collection.documents["d1"] == {"title": "Cats", "text": "cats purr"}
    assert collection.judged_candidates() == {"q1": [("d2", 9.0), ("d1", 8.0)], "q2": [("d3", 5.0)]}
    assert collection.skipped == {"queries without text": 1}
    with pytest.raises(ValueError, match="give qrels, corpus"):
        load_collection(run=tmp_path / "run.trec", queries=tmp_path / "queries.tsv")


def test_an_ir_datasets_id_is_read_through_the_ir_datasets_api(monkeypatch):
    record = types.SimpleNamespace
    dataset = types.SimpleNamespace(
        has_scoreddocs=lambda: True,
        scoreddocs_iter=lambda: [record(query_id="1", doc_id="a", score=3.0), record(query_id="1", doc_id="b",
                                                                                      score=4.0)],
        queries_iter=lambda: [record(query_id="1", text="what is a cat", default_text=lambda: "what is a cat")],
        qrels_iter=lambda: [record(query_id="1", doc_id="a", relevance=2, iteration="0")],
        docs_store=lambda: types.SimpleNamespace(get_many=lambda ids: {
            docid: doc for docid, doc in (("a", record(doc_id="a", title="Cat", text="A small feline.")),
                                          ("b", record(doc_id="b", text="Dogs."))) if docid in ids}),
    )
    loaded = []
    monkeypatch.setitem(sys.modules, "ir_datasets", types.SimpleNamespace(
        load=lambda name: loaded.append(name) or dataset))
    collection = load_collection(dataset="msmarco-passage/trec-dl-2019/judged", top_k=1)
    assert loaded == ["msmarco-passage/trec-dl-2019/judged"]
    assert collection.run == {"1": [("b", 4.0)]}
    assert collection.documents == {"b": {"text": "Dogs."}}
    assert collection.queries == {"1": "what is a cat"} and collection.qrels == {"1": {"a": 2}}


def test_the_base_client_imports_none_of_the_evaluate_dependencies():
    code = ("import sys, rank1_client, rank1_client.cli; "
            "print(sorted(m for m in ('ir_measures', 'scipy', 'matplotlib', 'ir_datasets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# --- against the fake server --------------------------------------------------------------------------------------

def test_metrics_equal_ir_measures_on_the_written_files_and_the_cache_resumes(fake_server, tmp_path):
    paths = write_collection(tmp_path / "data", fake_sets())
    collection = load_collection(run=paths["run"], qrels=paths["qrels"], queries=paths["queries"],
                                 corpus=paths["corpus"], top_k=5)
    out = tmp_path / "report"
    with Rank1Client(fake_server.url, chunk_size=2) as client:
        report = evaluate(client, collection, budgets=[2, 8], top_k=5, out_dir=out, log=lambda _: None)
    assert len(fake_server.seen) == 2 * 6 * 3  # two budgets, six queries, three chunks of the top 5
    assert {seen.parameters["max_reasoning_tokens"] for seen in fake_server.seen} == {2, 8}
    first = direct_metrics(paths["qrels"], out / "first-stage.trec", report.measures)
    assert report.first_stage.aggregate == pytest.approx(first, abs=1e-12)
    for result in report.budgets:
        assert result.metrics.aggregate == pytest.approx(direct_metrics(paths["qrels"], result.run_file,
                                                                        report.measures), abs=1e-12)
        assert result.metrics.aggregate["nDCG@10"] > report.first_stage.aggregate["nDCG@10"]
        assert result.cost.documents == 30 and result.cost.forced_pct == 100.0
        assert result.cost.tokens_per_document == result.budget
        queries = sorted(report.first_stage.per_query)
        expected = scipy_stats.ttest_rel([result.metrics.per_query[q]["nDCG@10"] for q in queries],
                                         [report.first_stage.per_query[q]["nDCG@10"] for q in queries])
        assert result.comparison.p_value == pytest.approx(expected.pvalue)
    ranked = result.run["q0"]
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)
    assert ranked[0][1] == pytest.approx(max(fake_score(json.loads(line)["text"]) for line in
                                             paths["corpus"].read_text().splitlines()
                                             if json.loads(line)["_id"] in {d for d, _ in ranked}))
    table = report.table()
    assert f"| first stage | {report.first_stage.aggregate['nDCG@10']:.4f} |" in table
    assert "| rank1, budget 8 |" in table and "docs/s" in table
    for name in ("first-stage.trec", "rank1-budget-2.trec", "rank1-budget-8.trec", "report.md", "report.json",
                 "per_query.tsv", "ndcg_vs_budget.png", "per_query_delta.png", "cache.sqlite"):
        assert (out / name).is_file(), name
    assert (out / "ndcg_vs_budget.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "report.json").read_text())
    assert saved["budgets"][1]["metrics"]["nDCG@10"] == report.metric(8)

    fake_server.seen.clear()
    with Rank1Client(fake_server.url, chunk_size=2) as client:
        again = evaluate(client, collection, budgets=[2, 8, 16], top_k=5, out_dir=out, log=lambda _: None)
    assert {seen.parameters["max_reasoning_tokens"] for seen in fake_server.seen} == {16}, "2 and 8 were cached"
    assert [r.cost.cached for r in again.budgets] == [30, 30, 0]
    assert again.metric(8) == report.metric(8)


def test_failed_queries_are_cached_around_and_skipped_on_request(fake_server, tmp_path):
    paths = write_collection(tmp_path / "data", fake_sets(n=4, docs=4))
    collection = load_collection(run=paths["run"], qrels=paths["qrels"], queries=paths["queries"],
                                 corpus=paths["corpus"], top_k=4)
    fake_server.behaviour.fail = lambda seen: ((grpc.StatusCode.INVALID_ARGUMENT, "query: not today")
                                               if seen.query == "query 2" else None)
    cache = PairCache(tmp_path / "cache.sqlite")
    with Rank1Client(fake_server.url) as client:
        with pytest.raises(EvaluationFailed, match="q2") as error:
            evaluate(client, collection, budgets=[3], top_k=4, cache=cache, log=lambda _: None)
        assert set(error.value.failures) == {"q2"} and error.value.failures["q2"].query == "query 2"
        assert len(cache) == 12, "the other three queries are cached"
        fake_server.seen.clear()
        report = evaluate(client, collection, budgets=[3], top_k=4, cache=cache, skip_failed=True,
                          out_dir=tmp_path / "out", log=lambda _: None)
    assert [seen.query for seen in fake_server.seen] == ["query 2"], "only the failed query is sent again"
    result = report.budgets[0]
    assert set(result.failures) == {"q2"} and result.cost.documents == 12
    assert result.run["q2"] == report.first_stage_run["q2"], "a failed query keeps its first-stage order"
    assert "1 failed queries kept their first-stage order (q2)" in report.table()
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert failure["query_id"] == "q2" and failure["status"] == "INVALID_ARGUMENT"


def test_evaluate_command_options_reach_the_server(fake_server, tmp_path, capsys):
    paths = write_collection(tmp_path / "data", fake_sets(n=2, docs=3))
    status = main(["evaluate", "--url", fake_server.url, *(f"--{name}={path}" for name, path in paths.items()),
                   "--top-k", "3", "--budgets", "4", "default", "--out", str(tmp_path / "out"), "--no-progress",
                   "--instruction", "prefer short", "--rethink", "1", "--truncate", "NONE", "--priority", "2",
                   "--header", "x-tenant=eval", "--no-plots"])
    assert status == 0
    printed = capsys.readouterr()
    assert "| rank1, budget default |" in printed.out and "| rank1, budget 4 |" in printed.out
    assert "budget 4: 2 queries, 6 pairs, 0 cached, 6 to score" in printed.err
    seen = fake_server.seen[0]
    assert seen.parameters["rethink"] == 1 and seen.parameters["truncate"] == "NONE" and seen.priority == 2
    assert seen.metadata["x-tenant"] == "eval"
    assert {s.parameters.get("max_reasoning_tokens") for s in fake_server.seen} == {4, None}
    assert not (tmp_path / "out" / "ndcg_vs_budget.png").exists()


def test_evaluate_command_reports_bad_inputs(tmp_path, capsys):
    assert main(["evaluate", "--out", str(tmp_path / "out"), "--run", str(tmp_path / "none.trec")]) == 2
    assert "without a dataset id, give qrels, queries, corpus" in capsys.readouterr().err


# --- against the real toy model -----------------------------------------------------------------------------------

def toy_collection(directory: Path, n_queries: int = 10, docs: int = 8) -> dict:
    toy_task = pytest.importorskip("rank1_triton.fixtures.toy_task")
    return write_collection(directory, toy_task.make_ranking_queries(n_queries, docs, seed=21))


def evaluate_command(url: str, paths: dict, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--url", url, *(f"--{name}={path}" for name, path in paths.items()), "--top-k", "8",
            "--budgets", "4", "32", "--out", str(out), "--concurrency", "2", "--chunk-size", "4", *extra]


@pytest.mark.server
def test_rank1_evaluate_on_the_toy_collection(toy_server, tmp_path, capsys):
    paths = toy_collection(tmp_path / "toy")
    out = tmp_path / "report"
    assert main(evaluate_command(toy_server.grpc_url, paths, out, "--no-progress")) == 0
    table = capsys.readouterr().out
    saved = json.loads((out / "report.json").read_text())
    first = direct_metrics(paths["qrels"], out / "first-stage.trec", saved["measures"])
    assert f"| first stage | {' | '.join(f'{first[m]:.4f}' for m in saved['measures'])} |" in table
    for budget in saved["budgets"]:
        direct = direct_metrics(paths["qrels"], out / f"rank1-budget-{budget['label']}.trec", saved["measures"])
        assert budget["metrics"] == pytest.approx(direct, abs=1e-12)
        assert f"| rank1, budget {budget['label']} | {direct['nDCG@10']:.4f} |" in table
    small, large = saved["budgets"]
    assert large["metrics"]["nDCG@10"] > first["nDCG@10"], "the toy model reranks better than a shuffle"
    assert small["cost"]["forced_pct"] == 100.0 and large["cost"]["forced_pct"] < 50.0
    assert small["cost"]["tokens_per_document"] == 4.0 and small["cost"]["docs_per_s"] > 0
    for plot in ("ndcg_vs_budget.png", "per_query_delta.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


def cached_pairs(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.mark.server
def test_rank1_evaluate_resumes_after_being_killed(toy_server, tmp_path):
    paths = toy_collection(tmp_path / "toy", n_queries=12)
    total = 12 * 8 * 2
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"
    command = [str(Path(sys.executable).with_name("rank1")),
               *evaluate_command(toy_server.grpc_url, paths, interrupted, "--no-progress", "--concurrency", "1")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        end = time.monotonic() + 240
        while cached_pairs(interrupted / "cache.sqlite") < 24 and time.monotonic() < end:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = cached_pairs(interrupted / "cache.sqlite")
    assert 24 <= done < total, "killed mid-run"
    assert not (interrupted / "report.json").exists()

    resumed = subprocess.run([*command[:-2], "--concurrency", "2"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    cached_per_budget = [int(line.split(" cached")[0].rsplit(", ", 1)[1]) for line in resumed.stderr.splitlines()
                         if line.startswith("rank1: budget ")]
    assert sum(cached_per_budget) == done, "every pair scored before the kill was skipped"
    report = json.loads((interrupted / "report.json").read_text())
    assert sum(b["cost"]["scored"] for b in report["budgets"]) == total - done
    assert cached_pairs(interrupted / "cache.sqlite") == total

    assert main(evaluate_command(toy_server.grpc_url, paths, uninterrupted, "--no-progress", "--no-plots")) == 0
    reference = json.loads((uninterrupted / "report.json").read_text())
    assert report["first_stage"]["metrics"] == reference["first_stage"]["metrics"]
    for resumed_budget, reference_budget in zip(report["budgets"], reference["budgets"], strict=True):
        assert resumed_budget["metrics"] == pytest.approx(reference_budget["metrics"], abs=1e-6)
        resumed_run = (interrupted / f"rank1-budget-{resumed_budget['label']}.trec").read_text().split()
        reference_run = (uninterrupted / f"rank1-budget-{reference_budget['label']}.trec").read_text().split()
        assert resumed_run[2::6] == reference_run[2::6], "the same ranking"


def test_a_collection_built_in_memory(fake_server):
    collection = Collection(queries={"q": "query"}, documents={"a": "xx", "b": "x" * 30, "c": {"text": "xxxx"}},
                            qrels={"q": {"a": 1, "c": 1}}, run={"q": [("b", 3.0), ("a", 2.0), ("c", 1.0)]})
    with Rank1Client(fake_server.url) as client:
        report = evaluate(client, collection, budgets=[None], top_k=3, measures=["nDCG@10", "P@1"],
                          plots=False, log=lambda _: None)
    assert [docid for docid, _ in report.budgets[0].run["q"]] == ["a", "c", "b"]
    assert report.metric(None, "P@1") == 1.0 and report.first_stage.aggregate["P@1"] == 0.0
