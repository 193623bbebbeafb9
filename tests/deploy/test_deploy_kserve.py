"""The KServe example (deploy/kserve/): ServingRuntime and InferenceService against schemas written from KServe's
API types (kserve_schema.py), their Kubernetes parts (containers, volumes, pod fields) against the Kubernetes
schemas, and the runtime's tritonserver flags against the Helm chart's."""

import copy

import pytest
import yaml
from deploy_helpers import KSERVE, KUBERNETES_VERSIONS, find, rank0_flags, server_container
from kserve_schema import INFERENCE_SERVICE, POD_SPEC_FIELDS, SERVING_RUNTIME

# KServe mounts (or downloads) storageUri here: pkg/constants/constants.go DefaultModelLocalMountPath.
KSERVE_MOUNT = "/mnt/models"
# KServe's default HTTP port (InferenceServiceDefaultHttpPort) and the gRPC port of its Triton runtime.
KSERVE_HTTP, KSERVE_GRPC = 8080, 9000


def load(name: str) -> dict:
    (obj,) = [o for o in yaml.safe_load_all((KSERVE / name).read_text()) if o]
    return obj


@pytest.fixture(scope="module")
def runtime() -> dict:
    return load("servingruntime.yaml")


@pytest.fixture(scope="module")
def isvc() -> dict:
    return load("inferenceservice.yaml")


def runtime_container(runtime: dict) -> dict:
    (container,) = runtime["spec"]["containers"]
    return container


def validate_kubernetes(pod_spec: dict, where: str) -> None:
    """Validate Kubernetes-typed fields as the spec of a Pod, strictly, for each supported Kubernetes minor."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kserve-check"}, "spec": pod_spec}
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(pod, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{where} on Kubernetes {version}: {path}: {error.message}")


@pytest.mark.parametrize(
    "name, schema", [("servingruntime.yaml", SERVING_RUNTIME), ("inferenceservice.yaml", INFERENCE_SERVICE)]
)
def test_matches_the_kserve_api_schema(name, schema):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(load(name), schema)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["spec"].update(supportedModelTypes=r["spec"].pop("supportedModelFormats")),  # pre-0.8 name
        lambda r: r["spec"].update(protocolVersions=["v3"]),
        lambda r: r["spec"]["supportedModelFormats"][0].update(autoselect=True),
        lambda r: r.update(apiVersion="serving.kserve.io/v1beta1"),
    ],
)
def test_the_schema_rejects_wrong_runtimes(runtime, change):
    jsonschema = pytest.importorskip("jsonschema")
    broken = copy.deepcopy(runtime)
    change(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SERVING_RUNTIME)


def test_runtime_pod_parts_are_valid_kubernetes(runtime):
    spec = runtime["spec"]
    pod_fields = ("containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets", "hostIPC")
    validate_kubernetes({k: spec[k] for k in pod_fields if k in spec}, "ServingRuntime rank1-triton")


def test_inference_service_pod_parts_are_valid_kubernetes(isvc):
    predictor = isvc["spec"]["predictor"]
    pod_spec = {k: v for k, v in predictor.items() if k in POD_SPEC_FIELDS}
    # The model's inlined corev1.Container fields, as the container KServe builds from them.
    model_container = {k: v for k, v in predictor["model"].items() if k in ("resources", "env", "args", "ports")}
    pod_spec["containers"] = [{"name": "kserve-container", "image": "placeholder", **model_container}]
    validate_kubernetes(pod_spec, "InferenceService rank1 predictor")


def test_inference_service_uses_the_runtime(runtime, isvc):
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    # KServe's ModelSpec.GetProtocol defaults to v1 when unset; Triton speaks v2.
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"] and model["protocolVersion"] == "v2"
    assert model["storageUri"].split("://")[0] in {"pvc", "s3", "gs"}
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"


def test_runtime_flags_are_the_charts_with_kserve_paths_and_ports(tools, runtime):
    """The runtime runs what the chart would, rendered for KServe's mount and ports."""
    sets = (f"modelRepository.mountPath={KSERVE_MOUNT}", f"server.ports.http={KSERVE_HTTP}",
            f"server.ports.grpc={KSERVE_GRPC}")  # fmt: skip
    chart = server_container(find(tools.render(sets=sets), "Deployment"))
    container = runtime_container(runtime)
    assert container["name"] == "kserve-container"
    assert container["command"] == chart["command"] == ["tritonserver"]
    assert container["args"] == rank0_flags(chart)
    assert f"--model-repository={KSERVE_MOUNT}/repository" in container["args"]
    # Env the flags reference ($(NAME)) is defined the same way as in the chart.
    env = {e["name"]: e for e in container["env"]}
    assert env["RANK1_MODEL_CONTROL_KEY"] == next(e for e in chart["env"] if e["name"] == "RANK1_MODEL_CONTROL_KEY")
    assert env["HOME"]["value"] == "/tmp"
    # Probes and shutdown like the chart's, on KServe's HTTP port.
    for kind in ("startup", "liveness", "readiness"):
        probe, chart_probe = container[f"{kind}Probe"], chart[f"{kind}Probe"]
        assert probe["httpGet"] == {**chart_probe["httpGet"], "port": KSERVE_HTTP}
        assert {k: v for k, v in probe.items() if k != "httpGet"} == {
            k: v for k, v in chart_probe.items() if k != "httpGet"
        }
    assert container["lifecycle"] == chart["lifecycle"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"dshm": "/dev/shm", "tmp": "/tmp"}
    volumes = {v["name"]: v for v in runtime["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"


def test_grace_period_covers_pre_stop_and_exit_timeout(runtime, isvc):
    container = runtime_container(runtime)
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    exit_timeout = int(next(a for a in container["args"] if a.startswith("--exit-timeout-secs=")).split("=")[1])
    assert isvc["spec"]["predictor"]["terminationGracePeriodSeconds"] > pre_stop + exit_timeout
