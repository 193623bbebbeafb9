"""Critical fields of the rendered chart, each checked against a number or name fixed here, not read back
from values.yaml: the default values, the TLS + auth + 2-GPU TP example, and the fetch + StatefulSet example."""

import json

import pytest
from deploy_helpers import find, flag_value, rank0_flags, server_container

HTTP, GRPC, METRICS = 8000, 8001, 8002


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def volume(workload: dict, name: str) -> dict:
    return next(v for v in pod_spec(workload)["volumes"] if v["name"] == name)


def mount(container: dict, name: str) -> dict:
    return next(m for m in container["volumeMounts"] if m["name"] == name)


def check_server_pod(workload: dict, *, gpus: int, shm: str, pre_stop: int, grace: int, exit_timeout: int):
    """What every server pod must have, whatever the values."""
    spec = pod_spec(workload)
    container = server_container(workload)
    flags = rank0_flags(container)

    # /dev/shm for the Python backend: memory-backed and sized.
    assert volume(workload, "dshm")["emptyDir"] == {"medium": "Memory", "sizeLimit": shm}
    assert mount(container, "dshm")["mountPath"] == "/dev/shm"

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": HTTP, "grpc": GRPC, "metrics": METRICS}
    assert [flag_value(flags, f"--{name}-port") for name in ("http", "grpc", "metrics")] == ["8000", "8001", "8002"]
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")}
    assert probes == {
        "startup": {"path": "/v2/health/live", "port": "http"},
        "liveness": {"path": "/v2/health/live", "port": "http"},
        "readiness": {"path": "/v2/health/ready", "port": "http"},
    }
    startup = container["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600, "engine loading needs minutes"

    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus

    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(pre_stop)]
    assert flag_value(flags, "--exit-timeout-secs") == str(exit_timeout)
    assert spec["terminationGracePeriodSeconds"] == grace
    assert grace > pre_stop + exit_timeout

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

    repository = mount(container, "model-repository")
    assert repository["mountPath"] == "/models" and repository["readOnly"] is True
    assert flag_value(flags, "--model-repository") == "/models"
    # 5 minutes in milliseconds: long-lived gRPC clients reconnect and rebalance.
    assert flag_value(flags, "--grpc-max-connection-age") == "300000"

    tolerations = spec["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert spec["nodeSelector"]["nvidia.com/gpu.present"] == "true"


def test_default_values_server_pod(default_objects):
    deployment = find(default_objects, "Deployment")
    check_server_pod(deployment, gpus=1, shm="2Gi", pre_stop=15, grace=90, exit_timeout=60)
    container = server_container(deployment)
    assert container["command"] == ["tritonserver"]
    assert container["image"] == "nvcr.io/your-org/rank1-triton:0.1.0"  # the chart's appVersion
    assert volume(deployment, "model-repository")["persistentVolumeClaim"] == {
        "claimName": "rank1-model-repository",
        "readOnly": True,
    }
    # No TLS or auth flags unless asked for.
    assert not [f for f in container["args"] if "ssl" in f or "restricted" in f]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_tls_auth_tp2_server_pod(tp2_objects):
    deployment = find(tp2_objects, "Deployment")
    check_server_pod(deployment, gpus=2, shm="8Gi", pre_stop=20, grace=180, exit_timeout=120)
    container = server_container(deployment)
    args, flags = container["args"], rank0_flags(container)

    # Two ranks under mpirun, not bound to single cores; rank 1 only loads the engine, with endpoints off.
    assert container["command"] == ["mpirun"]
    assert args[:2] == ["--bind-to", "none"]
    assert args.count("tritonserver") == 2
    rank1 = args[args.index(":") + 1 :]
    assert "--load-model=tensorrt_llm" in rank1 and "--model-control-mode=explicit" in rank1
    assert {"--allow-http=false", "--allow-grpc=false", "--allow-metrics=false"} <= set(rank1)

    # gRPC TLS from the mounted Secret.
    assert "--grpc-use-ssl=true" in flags
    assert flag_value(flags, "--grpc-server-cert") == "/etc/rank1-triton/tls/tls.crt"
    assert flag_value(flags, "--grpc-server-key") == "/etc/rank1-triton/tls/tls.key"
    assert volume(deployment, "tls")["secret"]["secretName"] == "rank1-triton-tls"
    assert mount(container, "tls") == {"name": "tls", "mountPath": "/etc/rank1-triton/tls", "readOnly": True}

    # API key from the Secret, expanded by the kubelet into both restriction flags; health stays open.
    restriction = flag_value(flags, "--grpc-restricted-protocol")
    assert flag_value(flags, "--http-restricted-api") == restriction
    groups, key = restriction.split(":")
    assert key == "rank1-api-key=$(RANK1_API_KEY)"
    assert "inference" in groups.split(",") and "health" not in groups.split(",")
    api_key = next(e for e in container["env"] if e["name"] == "RANK1_API_KEY")
    assert api_key["valueFrom"]["secretKeyRef"] == {"name": "rank1-triton-api-key", "key": "api-key"}

    headless = find(tp2_objects, "Service", "rank1-triton-headless")
    assert headless["spec"]["clusterIP"] == "None"


def test_fetch_statefulset(fetch_objects):
    statefulset = find(fetch_objects, "StatefulSet")
    check_server_pod(statefulset, gpus=1, shm="2Gi", pre_stop=15, grace=90, exit_timeout=60)
    assert statefulset["spec"]["serviceName"] == "rank1-triton-headless"
    find(fetch_objects, "Service", "rank1-triton-headless")

    (init,) = pod_spec(statefulset)["initContainers"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["MODEL_REPOSITORY_URI"] == "s3://your-bucket/rank1/rank1-7b-fp8/model_repository"
    assert env["REQUIRED_MODELS"] == "rank1 tensorrt_llm"
    # The init container writes the cache; the server reads its repository folder read-only.
    assert mount(init, "model-repository") == {"name": "model-repository", "mountPath": "/cache"}
    repository = mount(server_container(statefulset), "model-repository")
    assert repository["subPath"] == "repository" and repository["readOnly"] is True
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "model-repository"
    assert claim["spec"]["resources"]["requests"]["storage"] == "30Gi"

    script = find(fetch_objects, "ConfigMap", "rank1-triton-fetch")["data"]["fetch.sh"]
    assert script.startswith("#!/bin/sh")
    assert find(fetch_objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


def test_fetch_into_an_emptydir_for_a_deployment(tools):
    objects = tools.render(sets=("modelRepository.source=fetch", "modelRepository.fetch.uri=gs://bucket/rank1-3b"))
    deployment = find(objects, "Deployment")
    assert volume(deployment, "model-repository")["emptyDir"] == {"sizeLimit": "100Gi"}
    assert pod_spec(deployment)["initContainers"][0]["name"] == "fetch-model-repository"
    assert "checksum/fetch-script" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_services_and_monitoring(default_objects):
    service = find(default_objects, "Service", "rank1-triton")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": HTTP, "grpc": GRPC, "metrics": METRICS}
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "server"
    assert [o for o in default_objects if o["metadata"]["name"] == "rank1-triton-headless"] == []

    monitor = find(default_objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    skip_headless = {"key": "rank1-triton/headless", "operator": "DoesNotExist"}
    assert skip_headless in monitor["spec"]["selector"]["matchExpressions"]

    pdb = find(default_objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1

    dashboard = find(default_objects, "ConfigMap", "rank1-triton-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["rank1-triton.json"])


def test_hpa_scales_on_queue_compute_ratio(default_objects):
    hpa = find(default_objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rank1-triton"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "rank1_triton_queue_compute_ratio"},
            "target": {"type": "AverageValue", "averageValue": "500m"},
        },
    }
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4


@pytest.mark.parametrize("objects_fixture, auth", [("default_objects", False), ("tp2_objects", True)])
def test_helm_test_pod_sends_one_rerank_request(objects_fixture, auth, request):
    pod = find(request.getfixturevalue(objects_fixture), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["URL"]["value"] == "http://rank1-triton:8000/v2/models/rank1/infer"
    body = json.loads(env["REQUEST"]["value"])
    inputs = {i["name"]: i for i in body["inputs"]}
    assert inputs["query"]["datatype"] == "BYTES" and inputs["query"]["shape"] == [1]
    documents = inputs["documents"]
    assert documents["datatype"] == "BYTES" and documents["shape"] == [len(documents["data"])]
    assert [o["name"] for o in body["outputs"]] == ["scores", "ranking"]
    script = container["args"][0]
    assert ('-H "rank1-api-key: ${RANK1_API_KEY}"' in script) is auth
    assert ("RANK1_API_KEY" in env) is auth


def test_grace_period_must_exceed_pre_stop_plus_exit_timeout(tools):
    # Defaults: preStop 15 s + exit timeout 60 s = 75 s.
    too_short = tools.template(sets=("terminationGracePeriodSeconds=75",))
    assert too_short.returncode != 0
    assert "terminationGracePeriodSeconds (75) must exceed" in too_short.stderr
    longer_exit = tools.template(sets=("server.exitTimeoutSeconds=100",))
    assert longer_exit.returncode != 0, "grace 90 s < 15 s + 100 s must fail"
    assert tools.template(sets=("terminationGracePeriodSeconds=76",)).returncode == 0


BAD_VALUES = {
    "three GPUs (no such TP size)": "engine:\n  tensorParallelSize: 3\n",
    "shm size not a quantity": "shm:\n  sizeLimit: lots\n",
    "root pod": "podSecurityContext:\n  runAsNonRoot: false\n  runAsUser: 0\n",
    "auth without a Secret": "auth:\n  enabled: true\n",
    "TLS without a Secret": "tls:\n  enabled: true\n",
    "health behind the API key": "auth:\n  enabled: true\n  existingSecret: k\n  protocols: [health]\n",
    "GPU count set by hand": "resources:\n  limits:\n    nvidia.com/gpu: 4\n",
    "unknown key": "replicas: 3\n",
    "fetch without a URI": "modelRepository:\n  source: fetch\n",
    "fetch from an unsupported scheme": "modelRepository:\n  source: fetch\n  fetch:\n    uri: ftp://host/repo\n",
    "port as a string": "server:\n  ports:\n    http: '8000'\n",
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_fail_the_schema(tools, tmp_path, case):
    values = tmp_path / "bad-values.yaml"
    values.write_text(BAD_VALUES[case])
    result = tools.template(values)
    assert result.returncode != 0, f"{case}: rendered although invalid"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
