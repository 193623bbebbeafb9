"""Critical fields of the rendered chart, each checked against a number or name fixed here, not read back
from values.yaml: the default values, the TLS + auth + 2-GPU TP example, and the fetch + StatefulSet example."""

import json

import pytest
import yaml
from deploy_helpers import (
    CHART,
    TLS_AUTH_TP2,
    expand_env_references,
    find,
    flag_value,
    rank0_flags,
    rendered_server,
    server_container,
)

from rank1_triton.contract import PYTHON_BACKEND_THREAD_POOL_FLAG

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

    # The build output folder at /models (the build's --serve-root); Triton serves its repository/ folder.
    repository = mount(container, "model-repository")
    assert repository["mountPath"] == "/models" and repository["readOnly"] is True
    assert flag_value(flags, "--model-repository") == "/models/repository"
    # The entry model reloads a crashed engine model through the model-loading API: explicit mode, all models.
    assert flag_value(flags, "--model-control-mode") == "explicit"
    assert flag_value(flags, "--load-model") == "*"
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
    # No TLS or API-key flags unless asked for; only the model-repository API is locked.
    assert not [f for f in container["args"] if "ssl" in f or "RANK1_API_KEY" in f]
    assert [f.split(":")[0] for f in container["args"] if "restricted" in f] == [
        "--grpc-restricted-protocol=model-repository",
        "--http-restricted-api=model-repository",
    ]
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
    assert flag_value(rank1, "--model-repository") == "/models/repository"
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
    # auth.protocols covers model-repository: the API key guards it, no second restriction of that group.
    assert "model-repository" in groups.split(",")
    assert not [f for f in flags if "rank1-model-control" in f]
    assert "RANK1_MODEL_CONTROL_KEY" not in {e["name"] for e in container["env"]}

    headless = find(tp2_objects, "Service", "rank1-triton-headless")
    assert headless["spec"]["clusterIP"] == "None"


def test_fetch_statefulset(fetch_objects):
    statefulset = find(fetch_objects, "StatefulSet")
    check_server_pod(statefulset, gpus=1, shm="2Gi", pre_stop=15, grace=90, exit_timeout=60)
    assert statefulset["spec"]["serviceName"] == "rank1-triton-headless"
    find(fetch_objects, "Service", "rank1-triton-headless")

    (init,) = pod_spec(statefulset)["initContainers"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["MODEL_REPOSITORY_URI"] == "s3://your-bucket/rank1/rank1-7b-fp8"
    assert (env["ENTRY_MODEL"], env["ENGINE_MODEL"]) == ("rank1", "tensorrt_llm")
    # The script maps the configs' absolute paths (under the server's mount) to the cache to check them.
    assert env["MODEL_MOUNT_PATH"] == "/models"
    # The init container writes the cache; the server mounts the whole cache (the build output) read-only.
    assert mount(init, "model-repository") == {"name": "model-repository", "mountPath": "/cache"}
    repository = mount(server_container(statefulset), "model-repository")
    assert repository == {"name": "model-repository", "mountPath": "/models", "readOnly": True}
    # The download lands on the PVC: the init container's ephemeral storage is /tmp (1Gi), +1Gi for logs.
    assert init["resources"]["requests"]["ephemeral-storage"] == "1024Mi"
    assert init["resources"]["limits"]["ephemeral-storage"] == "2048Mi"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "model-repository"
    assert claim["spec"]["resources"]["requests"]["storage"] == "30Gi"

    script = find(fetch_objects, "ConfigMap", "rank1-triton-fetch")["data"]["fetch.sh"]
    assert script.startswith("#!/bin/sh")
    assert find(fetch_objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


FETCH_GS = ("modelRepository.source=fetch", "modelRepository.fetch.uri=gs://bucket/rank1-3b")


def test_fetch_into_an_emptydir_for_a_deployment(tools):
    deployment = find(tools.render(sets=FETCH_GS), "Deployment")
    assert volume(deployment, "model-repository")["emptyDir"] == {"sizeLimit": "100Gi"}
    (init,) = pod_spec(deployment)["initContainers"]
    assert init["name"] == "fetch-model-repository"
    assert "checksum/fetch-script" in deployment["spec"]["template"]["metadata"]["annotations"]
    assert mount(server_container(deployment), "model-repository") == {
        "name": "model-repository",
        "mountPath": "/models",
        "readOnly": True,
    }
    # The emptyDir counts as the pod's ephemeral storage: request 100Gi download + 1Gi /tmp, limit +1Gi for logs.
    assert init["resources"]["requests"] == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "103424Mi"}
    assert init["resources"]["limits"] == {"memory": "2Gi", "ephemeral-storage": "104448Mi"}


@pytest.mark.parametrize(
    "sets, request_, limit",
    [
        # 500G = 500e9 bytes = 476837.16 MiB, + 512 MiB /tmp, rounded up.
        (("modelRepository.fetch.size=500G", "tmp.sizeLimit=512Mi"), "477350Mi", "478374Mi"),
        (("modelRepository.fetch.size=1.5Ti",), "1573888Mi", "1574912Mi"),
        # A value of the user's wins, and the chart adds no limit that could undercut it.
        (("modelRepository.fetch.resources.requests.ephemeral-storage=200Gi",), "200Gi", None),
    ],
)
def test_fetch_ephemeral_storage_follows_the_sizes(tools, sets, request_, limit):
    (init,) = pod_spec(find(tools.render(sets=FETCH_GS + sets), "Deployment"))["initContainers"]
    assert init["resources"]["requests"]["ephemeral-storage"] == request_
    assert init["resources"]["limits"].get("ephemeral-storage") == limit


def test_services_and_monitoring(default_objects):
    service = find(default_objects, "Service", "rank1-triton")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": HTTP, "grpc": GRPC, "metrics": METRICS}
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "server"
    assert [o for o in default_objects if o["metadata"]["name"] == "rank1-triton-headless"] == []

    monitor = find(default_objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # kube-prometheus-stack's Prometheus selects by its release label.
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert find(default_objects, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
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
    "relative mount path": "modelRepository:\n  mountPath: models\n",
    "unknown access mode": "modelRepository:\n  pvc:\n    accessMode: ReadMany\n",
    "model control in extraArgs": "server:\n  extraArgs: [--model-control-mode=none]\n",
    "repository in extraArgs": "server:\n  extraArgs: [--model-repository=/x]\n",
    "shm flag as a string": "server:\n  allowClientSharedMemory: 'no'\n",
    "unknown networkPolicy key": "networkPolicy:\n  enabled: true\n  ingress: []\n",
    "network peer with a typo": "networkPolicy:\n  enabled: true\n  clients: [{podSelectr: {}}]\n",
    "topology spread without a key": "topologySpreadConstraints: [{maxSkew: 1}]\n",
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_fail_the_schema(tools, tmp_path, case):
    values = tmp_path / "bad-values.yaml"
    values.write_text(BAD_VALUES[case])
    result = tools.template(values)
    assert result.returncode != 0, f"{case}: rendered although invalid"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


# --- Triton 2.69 flags -------------------------------------------------------------------------------------


def test_client_shared_memory_off_by_default_and_left_out_for_older_triton(tools, default_objects):
    flags = rank0_flags(server_container(find(default_objects, "Deployment")))
    assert flag_value(flags, "--allow-client-shm") == "false"
    assert not [f for f in flags if f.startswith("--http-max-input-size")], "Triton's default unless set"
    older = tools.render(sets=("server.allowClientSharedMemory=null",))
    older = rank0_flags(server_container(find(older, "Deployment")))
    assert not [f for f in older if f.startswith("--allow-client-shm")]
    sized = tools.render(sets=("server.allowClientSharedMemory=true", "server.httpMaxInputSizeBytes=16777216"))
    flags = rank0_flags(server_container(find(sized, "Deployment")))
    assert flag_value(flags, "--allow-client-shm") == "true"
    assert flag_value(flags, "--http-max-input-size") == "16777216"


def test_the_python_backend_pool_holds_the_entry_models_calls(tools, default_objects):
    """The chart passes the thread pool the entry model's limits were sized for (contract.py)."""
    flags = rank0_flags(server_container(find(default_objects, "Deployment")))
    assert PYTHON_BACKEND_THREAD_POOL_FLAG in flags
    wider = tools.render(sets=("server.pythonThreadPoolSize=512",))
    flags = rank0_flags(server_container(find(wider, "Deployment")))
    assert "--backend-config=python,thread-pool-size=512" in flags


def test_model_repository_api_locked_with_the_pod_uid(tools, default_objects):
    container = server_container(find(default_objects, "Deployment"))
    flags = rank0_flags(container)
    lock = "model-repository:rank1-model-control=$(RANK1_MODEL_CONTROL_KEY)"
    assert flag_value(flags, "--grpc-restricted-protocol") == lock
    assert flag_value(flags, "--http-restricted-api") == lock
    key = next(e for e in container["env"] if e["name"] == "RANK1_MODEL_CONTROL_KEY")
    assert key["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    # With auth on other groups only, both restrictions are passed, each group in one of them.
    auth = ("auth.enabled=true", "auth.existingSecret=k", "auth.protocols={inference,metadata}")
    flags = rank0_flags(server_container(find(tools.render(sets=auth), "Deployment")))
    grpc = [f.split("=", 1)[1].split(":")[0] for f in flags if f.startswith("--grpc-restricted-protocol=")]
    assert grpc == ["inference,metadata", "model-repository"]
    unlocked = tools.render(sets=("server.lockModelRepositoryApi=false",))
    assert not [f for f in server_container(find(unlocked, "Deployment"))["args"] if "restricted" in f]


# --- monitoring.coreos.com objects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "api_versions, sets, rendered",
    [
        (("monitoring.coreos.com/v1",), (), True),
        ((), (), False),  # a cluster without the Prometheus operator: the install must not fail on unknown kinds
        ((), ("monitoring.assumeCRDs=true",), True),  # GitOps / offline templating
        (("monitoring.coreos.com/v1",), ("serviceMonitor.enabled=false", "prometheusRule.enabled=false"), False),
    ],
)
def test_monitoring_objects_need_the_api_or_assume_crds(tools, api_versions, sets, rendered):
    kinds = {o["kind"] for o in tools.render(sets=sets, api_versions=api_versions)}
    assert ("ServiceMonitor" in kinds, "PrometheusRule" in kinds) == (rendered, rendered)
    assert "HorizontalPodAutoscaler" in kinds


# --- storage: who shares the claim ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, pods",
    [
        (("modelRepository.pvc.accessMode=ReadWriteOnce",), 5),  # HPA max 4 + the surge pod
        (("modelRepository.pvc.accessMode=ReadWriteOncePod", "autoscaling.enabled=false"), 2),  # 1 + surge
        (("modelRepository.pvc.accessMode=ReadWriteOnce", "autoscaling.enabled=false", "replicaCount=3",
          "workload.strategy.rollingUpdate.maxSurge=0", "workload.strategy.rollingUpdate.maxUnavailable=1"), 3),
        (("modelRepository.pvc.accessMode=ReadWriteOnce", "workload.kind=StatefulSet",
          "autoscaling.maxReplicas=2"), 2),
    ],
)  # fmt: skip
def test_a_single_node_claim_shared_by_several_pods_fails(tools, sets, pods):
    result = tools.template(sets=sets)
    assert result.returncode != 0
    assert f"up to {pods} server pods share the claim" in result.stderr
    assert "ReadOnlyMany or ReadWriteMany" in result.stderr and "modelRepository.source=fetch" in result.stderr


@pytest.mark.parametrize(
    "sets",
    [
        (),  # ReadOnlyMany
        ("modelRepository.pvc.accessMode=ReadWriteMany",),
        ("modelRepository.pvc.accessMode=ReadWriteOnce", "autoscaling.enabled=false",
         "workload.strategy.rollingUpdate.maxSurge=0", "workload.strategy.rollingUpdate.maxUnavailable=1"),
        ("modelRepository.pvc.accessMode=ReadWriteOnce", *FETCH_GS),  # fetch: the claim is not used
    ],
)  # fmt: skip
def test_shared_claims_and_single_pods_render(tools, sets):
    assert tools.template(sets=sets).returncode == 0


# --- network policy ------------------------------------------------------------------------------------------


def test_default_network_policy_admits_the_namespace_and_prometheus(default_objects):
    policy = find(default_objects, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == find(default_objects, "Service")["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress"], "egress stays open by default (fetch reaches object storage)"
    clients, scrapers = spec["ingress"]
    assert clients["from"] == [{"podSelector": {}}]
    assert {p["port"] for p in clients["ports"]} == {HTTP, GRPC, METRICS}
    assert scrapers["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert scrapers["ports"] == [{"port": METRICS, "protocol": "TCP"}]


def test_network_policy_restricted_egress_and_opt_out(tools):
    restricted = ("networkPolicy.egress.restricted=true", "networkPolicy.egress.rules[0].to[0].ipBlock.cidr=10.0.0.0/8")
    spec = find(tools.render(sets=restricted), "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    dns, store = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert store == {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    no_peers = ("networkPolicy.clients=null", "networkPolicy.metricsScrapers=null")
    closed = find(tools.render(sets=no_peers), "NetworkPolicy")
    assert closed["spec"]["ingress"] == []
    assert "NetworkPolicy" not in {o["kind"] for o in tools.render(sets=("networkPolicy.enabled=false",))}


# --- scheduling ----------------------------------------------------------------------------------------------


def test_default_topology_spread_over_nodes_unless_given(tools, default_objects):
    (spread,) = pod_spec(find(default_objects, "Deployment"))["topologySpreadConstraints"]
    assert spread == {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": find(default_objects, "Service")["spec"]["selector"]},
    }
    zone = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    sets = tuple(f"topologySpreadConstraints[0].{k}={v}" for k, v in zone.items())
    assert pod_spec(find(tools.render(sets=sets), "Deployment"))["topologySpreadConstraints"] == [zone]
    none = tools.render(sets=("defaultTopologySpread=false",))
    assert "topologySpreadConstraints" not in pod_spec(find(none, "Deployment"))


def test_image_pull_secrets_reach_the_pod(tools):
    deployment = find(tools.render(sets=("imagePullSecrets[0].name=ngc-pull",)), "Deployment")
    assert pod_spec(deployment)["imagePullSecrets"] == [{"name": "ngc-pull"}]


# --- rendered_server (for running the rendered command outside a cluster) ------------------------------------


def test_rendered_server_with_a_local_folder_and_executable(tools, tmp_path):
    out = tmp_path / "build-output"
    executable = tmp_path / "opt" / "tritonserver" / "bin" / "tritonserver"
    sets = (f"modelRepository.mountPath={out}", f"server.executable={executable}",
            "server.env[0].name=RANK1_LOG_LEVEL", "server.env[0].value=debug")  # fmt: skip
    server = rendered_server(tools.render(sets=sets))
    assert server["command"] == [str(executable)]
    assert f"--model-repository={out}/repository" in server["args"]
    assert {"name": "RANK1_LOG_LEVEL", "value": "debug"} in server["env"]
    assert {"name": "model-repository", "mountPath": str(out), "readOnly": True} in server["volumeMounts"]
    expanded = expand_env_references(server["args"], {"RANK1_MODEL_CONTROL_KEY": "uid-1"})
    assert "--http-restricted-api=model-repository:rank1-model-control=uid-1" in expanded
    assert expand_env_references(["a$$(B)", "$(UNSET)"], {"B": "x"}) == ["a$(B)", "$(UNSET)"]
    # Under mpirun the executable path is passed to every rank.
    tp2 = rendered_server(tools.render(TLS_AUTH_TP2, sets=sets))
    assert tp2["command"] == ["mpirun"] and tp2["args"].count(str(executable)) == 2
    assert flag_value(rank0_flags(tp2), "--model-repository") == f"{out}/repository"


# --- the versions the chart states ---------------------------------------------------------------------------


def test_chart_states_the_production_triton_and_tensorrt_llm():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert "Triton Inference Server 2.69" in chart["description"]
    assert "TensorRT-LLM 1.2.1" in chart["description"]
    values = (CHART / "values.yaml").read_text()
    assert "26.05-trtllm-python-py3 (Triton 2.69, TensorRT-LLM 1.2.1)" in values
    # 2.51 is only the CPU test server's version.
    for path in [CHART / "Chart.yaml", *CHART.rglob("*.tpl"), *CHART.rglob("*.yaml"), *CHART.rglob("*.sh")]:
        for line in path.read_text().splitlines():
            assert "2.51" not in line or "nvidia-pytriton" in line, f"{path.name}: {line}"
