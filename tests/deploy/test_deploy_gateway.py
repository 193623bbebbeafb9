"""The HTTP rerank gateway sidecar of the chart (gateway.enabled): container, Service port, probes, ServiceMonitor
endpoint, NetworkPolicy port; helm lint --strict and the Kubernetes schemas; the flags it renders are ones the
real ``rank1-gateway`` command line accepts."""

import pytest
from deploy_helpers import CHART, FETCH_STATEFULSET, KUBERNETES_VERSIONS, TLS_AUTH_TP2, find, server_workload
from rank1_gateway.settings import settings_from

GATEWAY = ("gateway.enabled=true",)
KEYS = ("gateway.auth.existingSecret=rank1-gateway-keys",)
PORT = 8080


def gateway_container(objects: list[dict]) -> dict:
    containers = server_workload(objects)["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "gateway"]
    return container


def test_off_by_default(default_objects):
    containers = server_workload(default_objects)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["triton"]
    assert "gateway" not in {p["name"] for p in find(default_objects, "Service")["spec"]["ports"]}


def test_sidecar_talks_to_triton_on_localhost(tools):
    objects = tools.render(sets=GATEWAY)
    container = gateway_container(objects)
    args = container["args"]
    assert "--grpc-url=localhost:8001" in args and "--host=0.0.0.0" in args and f"--port={PORT}" in args
    assert "--tokenizer=/models/tokenizer" in args
    assert container["image"] == "nvcr.io/your-org/rank1-gateway:0.1.0"
    assert container["ports"] == [{"name": "gateway", "containerPort": PORT, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "gateway"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "gateway"}
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "model-repository", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert "env" not in container, "no Triton key without auth, no callers' keys without gateway.auth"

    # What the chart passes is what the command line takes.
    settings = settings_from(args, {})
    assert (settings.host, settings.port, settings.grpc_url, settings.max_documents) == ("0.0.0.0", PORT,
                                                                                         "localhost:8001", 1000)

    service = find(objects, "Service", "rank1-triton")
    assert {"name": "gateway", "port": PORT, "targetPort": "gateway", "protocol": "TCP"} in service["spec"]["ports"]
    endpoints = find(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [("metrics", "/metrics"), ("gateway", "/metrics")]
    clients, scrapers = find(objects, "NetworkPolicy")["spec"]["ingress"]
    assert PORT in {p["port"] for p in clients["ports"]} and PORT in {p["port"] for p in scrapers["ports"]}


def test_tls_auth_and_caller_keys(tools, tmp_path):
    objects = tools.render(TLS_AUTH_TP2, sets=GATEWAY + KEYS)
    container = gateway_container(objects)
    args = container["args"]
    # The gateway's own credentials for Triton: the chart's TLS Secret and API key.
    assert {"--grpc-ssl", "--grpc-root-certificates=/etc/rank1-triton/tls/ca.crt",
            "--grpc-api-key-name=rank1-api-key"} <= set(args)
    key = next(e for e in container["env"] if e["name"] == "RANK1_GATEWAY_GRPC_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "rank1-triton-api-key", "key": "api-key"}
    assert {"name": "tls", "mountPath": "/etc/rank1-triton/tls", "readOnly": True} in container["volumeMounts"]
    # The callers' keys: a separate Secret, as a file.
    assert "--api-keys-file=/etc/rank1-gateway/keys/api-keys" in args
    volumes = server_workload(objects)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "gateway-keys", "secret": {"secretName": "rank1-gateway-keys", "defaultMode": 0o440}} in volumes
    keys = tmp_path / "api-keys"
    keys.write_text("caller-key\n")
    local = [f"--api-keys-file={keys}" if a.startswith("--api-keys-file=") else a for a in args]
    settings = settings_from(local, {"RANK1_GATEWAY_GRPC_API_KEY": "k"})
    assert settings.grpc_ssl and settings.grpc_api_key == "k" and settings.api_keys == ("caller-key",)


def test_mutual_tls_uses_the_pods_certificate(tools):
    args = gateway_container(tools.render(TLS_AUTH_TP2, sets=(*GATEWAY, "tls.mutual=true")))["args"]
    assert {"--grpc-client-certificate=/etc/rank1-triton/tls/tls.crt",
            "--grpc-client-key=/etc/rank1-triton/tls/tls.key"} <= set(args)


def test_monitoring_endpoint_only_with_the_operator_api(tools):
    kinds = {o["kind"] for o in tools.render(sets=GATEWAY, api_versions=())}
    assert "ServiceMonitor" not in kinds and "Deployment" in kinds


RENDERINGS = {
    "gateway": ((), GATEWAY),
    "gateway-tls-auth-tp2-keys": ((TLS_AUTH_TP2,), GATEWAY + KEYS),
    "gateway-fetch-statefulset": ((FETCH_STATEFULSET,), (*GATEWAY, "gateway.tokenizer=false")),
}


@pytest.mark.parametrize("name", RENDERINGS)
def test_helm_lint_strict_and_kubernetes_schemas(tools, name):
    files, sets = RENDERINGS[name]
    lint = tools.helm_run("lint", "--strict", str(CHART), *[a for f in files for a in ("-f", str(f))],
                          *[a for s in sets for a in ("--set", s)])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for obj in tools.render(*files, sets=sets):
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_statefulset_without_tokenizer_mounts_nothing(tools):
    container = gateway_container(tools.render(FETCH_STATEFULSET, sets=(*GATEWAY, "gateway.tokenizer=false")))
    assert "volumeMounts" not in container and not [a for a in container["args"] if a.startswith("--tokenizer")]


BAD = {
    "unknown key": ("gateway.replicas=2",),
    "port as a string": ("gateway.port=http",),
    "Triton URL in extraArgs": ("gateway.extraArgs[0]=--grpc-url=elsewhere:8001",),
    "negative request limit": ("gateway.limits.maxConcurrentRequests=-1",),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_gateway_values_fail_the_schema(tools, case):
    result = tools.template(sets=GATEWAY + BAD[case])
    assert result.returncode != 0, f"{case}: rendered although invalid"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def test_gateway_port_must_not_collide_with_tritons(tools):
    result = tools.template(sets=(*GATEWAY, "gateway.port=8001"))
    assert result.returncode != 0 and "gateway.port (8001) must differ from Triton's ports" in result.stderr
