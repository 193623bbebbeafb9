"""The quality gate: metric math against hand-computed values, thresholds, the gRPC request it sends."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor

from rank1_build import cli, gate
from rank1_build.gate import DevQuery, Thresholds, compare_tables, load_dev_set, per_query_ndcg, run_gate
from rank1_triton.ranking_metrics import average_ranks, ranking, spearman, top_k_overlap


def test_average_ranks_share_ties():
    assert average_ranks([5, 6, 7, 8, 7]) == [1, 2, 3.5, 5, 3.5]


def test_spearman_by_hand():
    # ranks a: 1..5; ranks b: 1, 2, 3.5, 5, 3.5 -> centred (-2,-1,0,1,2) and (-2,-1,.5,2,.5):
    # covariance 8, variances 10 and 9.5 -> 8 / sqrt(95).
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([0.1, 0.5, 0.9], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0.2, 0.2], [0.7, 0.7]) == 1.0
    assert spearman([0.2, 0.2, 0.2], [0.1, 0.5, 0.7]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        spearman([1], [1, 2])


def test_ranking_breaks_ties_by_document_order():
    assert ranking([0.5, 0.9, 0.5, 0.1]) == [1, 0, 2, 3]


def test_top10_overlap_by_hand():
    baseline = [12 - i for i in range(12)]  # documents 0..9 are its top 10
    candidate = list(baseline)
    candidate[10], candidate[11] = 100, 99  # documents 10 and 11 push 8 and 9 out
    assert top_k_overlap(baseline, candidate) == pytest.approx(8 / 10)
    assert top_k_overlap([0.3] * 12, [0.3] * 12) == 1.0
    assert top_k_overlap([0.1, 0.9, 0.5], [0.9, 0.1, 0.5], k=2) == pytest.approx(1 / 2)


def test_the_gates_ndcg_at_10_is_trec_evals_by_hand():
    ideal = 2 / math.log2(2) + 1 / math.log2(3)

    def ndcg(scores, relevance):
        documents = tuple(str(i) for i in range(len(scores)))
        return per_query_ndcg([DevQuery("q", "q", documents, tuple(relevance))], {"q": scores}).get("q")

    assert ndcg([0.9, 0.5, 0.1], [1, 0, 2]) == pytest.approx((1 + 0 + 2 / math.log2(4)) / ideal)
    assert ndcg([0.5, 0.1, 0.9], [1, 0, 2]) == pytest.approx(1.0)
    assert ndcg([0.5, 0.1, 0.9], [0, 0, 0]) is None  # no relevant document: not judged
    # Only the top 10 count: a relevant document at rank 11 adds nothing.
    eleven = DevQuery("q", "q", tuple(str(i) for i in range(11)), (0,) * 10 + (1,))
    assert per_query_ndcg([eleven], {"q": [1.0 - i / 100 for i in range(11)]}) == {"q": 0.0}


DEV = [
    DevQuery("q1", "what is fp8", ("a", "b", "c"), (1, 0, 2)),
    DevQuery("q2", "kv cache", ("d", "e", "f", "g"), None),
]


def test_identical_tables_pass():
    table = {"q1": [0.9, 0.5, 0.1], "q2": [0.1, 0.2, 0.3, 0.4]}
    report = compare_tables(DEV, table, table)
    assert report.passed
    assert (report.mean_spearman, report.mean_top10_overlap, report.ndcg10_delta) == (1.0, 1.0, 0.0)


def test_a_reordered_candidate_fails_with_the_numbers():
    baseline = {"q1": [0.5, 0.1, 0.9], "q2": [0.1, 0.2, 0.3, 0.4]}
    candidate = {"q1": [0.9, 0.5, 0.1], "q2": [0.4, 0.3, 0.2, 0.1]}
    report = compare_tables(DEV, baseline, candidate, Thresholds(0.9, 0.8, 0.02))
    # q1: ranks (2,1,3) vs (3,2,1) -> rho = -0.5; q2: fully reversed -> -1.
    assert report.mean_spearman == pytest.approx(-0.75)
    assert report.mean_top10_overlap == 1.0  # fewer than 10 documents: every document is in both top lists
    ideal = 2 + 1 / math.log2(3)
    assert report.ndcg10_baseline == pytest.approx(1.0)
    assert report.ndcg10_candidate == pytest.approx(2 / ideal)
    assert [failure.split()[0:2] for failure in report.failures] == [["mean", "Spearman"], ["nDCG@10", "fell"]]
    assert not report.passed
    assert report.to_dict()["passed"] is False


def test_thresholds_are_inclusive_and_ndcg_needs_labels():
    baseline = {"q1": [0.5, 0.1, 0.9], "q2": [0.1, 0.2, 0.3, 0.4]}
    candidate = {"q1": [0.5, 0.1, 0.9], "q2": [0.1, 0.2, 0.4, 0.3]}  # q2 rho = 0.8
    report = compare_tables(DEV, baseline, candidate, Thresholds(min_spearman=0.9))
    assert report.mean_spearman == pytest.approx(0.9)
    assert report.passed
    unlabeled = [DEV[1]]
    report = compare_tables(unlabeled, baseline, {"q2": [0.4, 0.3, 0.2, 0.1]}, Thresholds(min_spearman=-1))
    assert report.ndcg10_baseline is None and report.ndcg10_delta is None and report.passed


def test_score_counts_must_match_documents():
    with pytest.raises(ValueError, match="candidate has 2 scores for 3 documents"):
        compare_tables(DEV[:1], {"q1": [1, 2, 3]}, {"q1": [1, 2]})


def test_dev_set_loading(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps({"query_id": "q1", "query": "x", "documents": ["a", "b"], "relevance": [0, 1]})
                    + "\n\n" + json.dumps({"query": "y", "documents": ["c"]}) + "\n")
    assert load_dev_set(path) == [DevQuery("q1", "x", ("a", "b"), (0, 1)), DevQuery("3", "y", ("c",), None)]
    path.write_text(json.dumps({"query": "x", "documents": ["a"], "relevance": [0, 1]}))
    with pytest.raises(ValueError, match=r"dev\.jsonl:1: 'relevance' needs one integer label per document"):
        load_dev_set(path)
    path.write_text(json.dumps({"query": "x", "documents": []}))
    with pytest.raises(ValueError, match="non-empty list 'documents'"):
        load_dev_set(path)


class FakeRank1Server:
    """Stands in for tritonclient's gRPC client: decodes the BYTES inputs and answers from a score table."""

    def __init__(self, scores: dict[str, list[float]], max_batch_size: int) -> None:
        self.scores = scores
        self.max_batch_size = max_batch_size
        self.requests: list[dict] = []

    def get_model_config(self, model_name):
        return SimpleNamespace(config=SimpleNamespace(max_batch_size=self.max_batch_size))

    def infer(self, model_name, inputs, outputs, client_timeout=None):
        tensors = {i.name(): (i.datatype(), i.shape(), deserialize_bytes_tensor(i._get_content())) for i in inputs}
        self.requests.append({"model": model_name, "outputs": [o.name() for o in outputs], **tensors})
        query = tensors["query"][2][0].decode()
        scores = np.asarray(self.scores[query], dtype=np.float32)
        shaped = scores[np.newaxis] if self.max_batch_size else scores
        return SimpleNamespace(as_numpy=lambda name: shaped if name == "scores" else None)


@pytest.mark.parametrize(("max_batch_size", "query_shape", "doc_shape"), [(0, [1], [3]), (8, [1, 1], [1, 3])])
def test_scorer_sends_the_entry_models_tensors(max_batch_size, query_shape, doc_shape):
    server = FakeRank1Server({"what is fp8": [0.9, 0.5, 0.1]}, max_batch_size)
    table = gate.score_dev_set("host:8001", DEV[:1], client_factory=lambda url: server)
    assert table == {"q1": pytest.approx([0.9, 0.5, 0.1])}
    [request] = server.requests
    assert request["model"] == "rank1" and request["outputs"] == ["scores"]
    assert request["query"][:2] == ("BYTES", query_shape)
    assert request["documents"][:2] == ("BYTES", doc_shape)
    assert list(request["documents"][2]) == [b"a", b"b", b"c"]


def test_run_gate_scores_both_servers():
    servers = {
        "base:8001": FakeRank1Server({"what is fp8": [0.9, 0.5, 0.1], "kv cache": [1, 2, 3, 4]}, 0),
        "cand:8001": FakeRank1Server({"what is fp8": [0.9, 0.5, 0.1], "kv cache": [4, 3, 2, 1]}, 0),
    }
    report = run_gate("base:8001", "cand:8001", DEV, Thresholds(min_spearman=0.5), client_factory=servers.__getitem__)
    assert report.mean_spearman == pytest.approx(0.0)
    assert not report.passed


def test_compare_command_exit_status_and_report(tmp_path, monkeypatch, capsys):
    dev = tmp_path / "dev.jsonl"
    dev.write_text("\n".join(json.dumps({"query_id": q.query_id, "query": q.query, "documents": list(q.documents)})
                             for q in DEV))
    same = {"what is fp8": [0.9, 0.5, 0.1], "kv cache": [1, 2, 3, 4]}
    servers = {"a:1": FakeRank1Server(same, 0), "b:1": FakeRank1Server(same, 0),
               "c:1": FakeRank1Server({**same, "kv cache": [4, 3, 2, 1]}, 0)}
    monkeypatch.setattr(gate, "_grpc_client", servers.__getitem__)
    report = tmp_path / "report.json"
    assert cli.main(["compare", "--baseline", "a:1", "--candidate", "b:1", "--dev-set", str(dev),
                     "--report", str(report)]) == 0
    assert json.loads(report.read_text())["passed"] is True
    assert cli.main(["compare", "--baseline", "a:1", "--candidate", "c:1", "--dev-set", str(dev)]) == 1
    assert "FAIL: mean Spearman 0.0000 < 0.9" in capsys.readouterr().err


def test_compare_command_reports_bad_input_and_unreachable_servers(tmp_path, monkeypatch, capsys):
    assert cli.main(["compare", "--baseline", "a:1", "--candidate", "b:1", "--dev-set", str(tmp_path / "x")]) == 2
    assert "refused: --dev-set" in capsys.readouterr().err
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"query": "q", "documents": ["d"]}))

    def unreachable(url):
        raise InferenceServerException(f"failed to connect to {url}")

    monkeypatch.setattr(gate, "_grpc_client", unreachable)
    assert cli.main(["compare", "--baseline", "a:1", "--candidate", "b:1", "--dev-set", str(dev)]) == 1
    assert "failed to connect to a:1" in capsys.readouterr().err
