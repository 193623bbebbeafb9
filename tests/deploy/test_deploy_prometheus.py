"""The HPA metric end to end, offline: recording rule (promtool test rules on input series), the
prometheus-adapter rule that renames it, the HPA that reads it; and the Grafana dashboard's queries."""

import json
import shutil
import subprocess

import yaml
from deploy_helpers import REPO, find

PROMTOOL_TEST = REPO / "tests" / "deploy" / "promtool" / "queue_compute_ratio.test.yaml"
ADAPTER_VALUES = REPO / "deploy" / "prometheus-adapter" / "values.yaml"
RECORDED = "rank1_triton:queue_compute:ratio"
HPA_METRIC = "rank1_triton_queue_compute_ratio"


def promtool(tools, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tools.promtool), *args], capture_output=True, text=True)


def write_rules(path, groups: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def test_recording_rule_passes_promtool_unit_test(tools, default_objects, tmp_path):
    rule = find(default_objects, "PrometheusRule")
    assert [r["record"] for g in rule["spec"]["groups"] for r in g["rules"]] == [RECORDED]
    write_rules(tmp_path / "rules.yaml", rule["spec"]["groups"])
    shutil.copy(PROMTOOL_TEST, tmp_path / PROMTOOL_TEST.name)

    checked = promtool(tools, "check", "rules", str(tmp_path / "rules.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool(tools, "test", "rules", str(tmp_path / PROMTOOL_TEST.name))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_adapter_serves_the_recorded_series_under_the_hpa_metric_name(default_objects):
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    assert rule["seriesQuery"].startswith(RECORDED + "{")
    assert rule["name"] == {"matches": f"^{RECORDED}$", "as": HPA_METRIC}
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    hpa = find(default_objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == HPA_METRIC


def test_dashboard_shows_the_required_metrics_with_valid_queries(tools, default_objects, tmp_path):
    dashboard = json.loads(find(default_objects, "ConfigMap", "rank1-triton-dashboard")["data"]["rank1-triton.json"])
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    required = [
        "nv_inference_request_success",  # request rate
        "nv_inference_queue_duration_us",  # queue vs compute
        "nv_inference_compute_infer_duration_us",
        "rank1_reasoning_tokens_sum",  # reasoning tokens per document
        "rank1_reasoning_tokens_count",
        "rank1_forced_answers_total",
        "rank1_documents_total",
        "nv_gpu_utilization",
        RECORDED,
    ]
    assert [m for m in required if not any(m in e for e in exprs)] == []
    # promtool parses each query as a recording rule once Grafana's variables are substituted.
    substituted = [e.replace("$__rate_interval", "5m").replace("$namespace", "rank1") for e in exprs]
    rules = [{"record": f"dashboard:query:{i}", "expr": e} for i, e in enumerate(substituted)]
    write_rules(tmp_path / "dashboard.yaml", [{"name": "dashboard", "rules": rules}])
    checked = promtool(tools, "check", "rules", str(tmp_path / "dashboard.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
