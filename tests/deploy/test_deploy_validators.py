"""helm lint --strict, Kubernetes schemas (kubernetes-validate, strict) and the committed plain manifests."""

import subprocess
import sys

import pytest
import yaml
from deploy_helpers import (
    CHART,
    EXAMPLES,
    FETCH_STATEFULSET,
    GITOPS_OFFLINE,
    KUBERNETES_VERSIONS,
    REPO,
    SINGLE_POD_RWO,
    TLS_AUTH_TP2,
)

# Custom resources of the Prometheus operator: no schema in kubernetes-validate, so only these may lack one.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
FETCH_INTO_EMPTYDIR = ("modelRepository.source=fetch", "modelRepository.fetch.uri=https://models.example.com/r.tar.gz")
# name: (values files, --set values)
RENDERINGS = {
    "default": ((), ()),
    "tls-auth-tp2": ((TLS_AUTH_TP2,), ()),
    "fetch-statefulset": ((FETCH_STATEFULSET,), ()),
    "fetch-deployment": ((), FETCH_INTO_EMPTYDIR),
    "gitops-offline": ((GITOPS_OFFLINE,), ()),
    "single-pod-rwo": ((SINGLE_POD_RWO,), ()),
}


def helm_args(name: str) -> list[str]:
    files, sets = RENDERINGS[name]
    return [arg for f in files for arg in ("-f", str(f))] + [arg for s in sets for arg in ("--set", s)]


def test_every_example_values_file_is_checked():
    checked = {f for files, _ in RENDERINGS.values() for f in files}
    assert sorted(EXAMPLES.glob("*.yaml")) == sorted(checked)


@pytest.mark.parametrize("name", RENDERINGS)
def test_helm_lint_strict(tools, name):
    result = tools.helm_run("lint", "--strict", str(CHART), *helm_args(name))
    assert result.returncode == 0, result.stdout + result.stderr


def validate_all(objects: list[dict]) -> set[str]:
    """Validate every object for every version; return the kinds that were skipped as known CRDs."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    skipped = set()
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            where = f"{obj['kind']}/{obj['metadata']['name']} on Kubernetes {version}"
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                assert (obj["apiVersion"], obj["kind"]) in CRD_KINDS, f"no schema for {where}"
                skipped.add(obj["kind"])
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                pytest.fail(f"{where}: {path}: {error.message}")
    return skipped


@pytest.mark.parametrize("name", RENDERINGS)
def test_rendered_objects_match_kubernetes_schemas(tools, name):
    files, sets = RENDERINGS[name]
    objects = tools.render(*files, sets=sets)
    assert validate_all(objects) == {"ServiceMonitor", "PrometheusRule"}
    assert "NetworkPolicy" in {o["kind"] for o in objects}


def test_committed_manifests_are_current_and_valid(tools):
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "render_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        env={**tools.helm_env, "HELM": str(tools.helm)},
    )
    assert result.returncode == 0, result.stderr
    objects = [
        obj
        for path in sorted((REPO / "deploy" / "manifests").rglob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
        if obj
    ]
    assert "Pod" not in {o["kind"] for o in objects}, "the helm test pod is not a plain manifest"
    assert validate_all(objects) == {"ServiceMonitor", "PrometheusRule"}
    monitoring = REPO / "deploy" / "manifests" / "monitoring" / "rank1-triton.yaml"
    kinds = sorted(o["kind"] for o in yaml.safe_load_all(monitoring.read_text()) if o)
    assert kinds == ["PrometheusRule", "ServiceMonitor"]
