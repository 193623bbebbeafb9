"""Shared pieces of the deploy/ tests: paths, the offline tools, and accessors for rendered objects."""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "rank1-triton"
EXAMPLES = REPO / "deploy" / "helm" / "examples"
TLS_AUTH_TP2 = EXAMPLES / "values-tls-auth-tp2.yaml"
FETCH_STATEFULSET = EXAMPLES / "values-fetch-statefulset.yaml"
GITOPS_OFFLINE = EXAMPLES / "values-gitops-offline.yaml"
SINGLE_POD_RWO = EXAMPLES / "values-single-pod-rwo.yaml"
KSERVE = REPO / "deploy" / "kserve"
RELEASE, NAMESPACE = "rank1-triton", "rank1"
# Kubernetes minors the objects must be valid for: the oldest the chart supports and a recent one.
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
# `helm template --api-versions`: a cluster that serves the Prometheus operator's API.
MONITORING_API = ("monitoring.coreos.com/v1",)
# --set values for running the rendered command on Triton 2.51 (nvidia-pytriton 0.7.0, the CPU tests): flags that
# only Triton 2.68+ knows are left out.
TRITON_251_SETS = ("server.allowClientSharedMemory=null",)


@dataclass(frozen=True)
class Tools:
    helm: Path
    promtool: Path
    helm_env: dict[str, str]

    def helm_run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.helm), *args], capture_output=True, text=True, env=self.helm_env)

    def template(
        self, *values_files: Path, sets: tuple[str, ...] = (), api_versions: tuple[str, ...] = MONITORING_API
    ) -> subprocess.CompletedProcess:
        """`helm template` of the chart (helm test pods included); check returncode for failures.

        api_versions: what the pretended cluster serves besides the built-in APIs (default: the Prometheus
        operator's, so that ServiceMonitor and PrometheusRule render); () for a cluster without it."""
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        args += [arg for f in values_files for arg in ("-f", str(f))]
        args += [arg for s in sets for arg in ("--set", s)]
        args += [arg for v in api_versions for arg in ("--api-versions", v)]
        return self.helm_run(*args)

    def render(
        self, *values_files: Path, sets: tuple[str, ...] = (), api_versions: tuple[str, ...] = MONITORING_API
    ) -> list[dict]:
        result = self.template(*values_files, sets=sets, api_versions=api_versions)
        assert result.returncode == 0, result.stderr
        return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    """The one object of this kind (and name)."""
    matches = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def server_container(workload: dict) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "triton")


def server_workload(objects: list[dict]) -> dict:
    """The chart's one Deployment or StatefulSet."""
    (workload,) = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    return workload


def rendered_server(objects: list[dict]) -> dict:
    """What the server container of a rendered chart runs, to run the same thing elsewhere.

    objects: the chart's rendered objects (Tools.render). Returns a dict with
      command       list[str]: the container's command: [server.executable] with engine.tensorParallelSize 1,
                    [engine.mpirun] otherwise.
      args          list[str]: the container's args, verbatim. They may hold the kubelet's $(NAME) references to
                    env (the API key, the model-control key); expand_env_references() resolves them.
      env           list[dict]: the container's env in order, each {"name", "value"} for a literal value, or
                    {"name", "valueFrom"} for a Secret / downward API value the caller must supply itself
                    (RANK1_MODEL_CONTROL_KEY, the pod UID; RANK1_API_KEY with auth).
      volumeMounts  list[dict]: the container's mounts ({"name", "mountPath", "readOnly"?, "subPath"?}); the
                    build output folder is the mount named "model-repository", at modelRepository.mountPath.

    To run it on this machine: render with --set modelRepository.mountPath=<absolute local build output folder>
    (the build's --serve-root), --set server.executable=<absolute path of tritonserver>, TRITON_251_SETS for the
    2.51 server of nvidia-pytriton, extra env through server.env (e.g. --set server.env[0].name=X) and extra
    flags through server.extraArgs (a list: a --set replaces the default flags, so pass the full list, e.g.
    with --set-json); then run command + expand_env_references(args, env) with env added to the environment.
    The ports (server.ports) are the pod's: set them to free local ones.
    """
    container = server_container(server_workload(objects))
    return {
        "command": list(container["command"]),
        "args": list(container.get("args", [])),
        "env": [dict(e) for e in container.get("env", [])],
        "volumeMounts": [dict(m) for m in container.get("volumeMounts", [])],
    }


def expand_env_references(args: list[str], env: dict[str, str] | list[dict]) -> list[str]:
    """Args as the kubelet passes them: $(NAME) replaced by env NAME when defined, $$ by $, others kept."""
    values = env if isinstance(env, dict) else {e["name"]: e["value"] for e in env if "value" in e}

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return values.get(match.group(1), match.group(0))

    return [re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, arg) for arg in args]


def rank0_flags(container: dict) -> list[str]:
    """tritonserver flags of the serving process: the args, or under mpirun those of the first rank."""
    args = container["args"]
    if all(a.startswith("--") for a in args):
        return args
    first = args.index("-n") + 3  # mpirun ... -n 1 <executable> <flags of rank 0> : -n 1 ...
    return args[first : args.index(":")] if ":" in args else args[first:]


def flag_value(flags: list[str], name: str) -> str:
    values = [f.split("=", 1)[1] for f in flags if f.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} given {len(values)} times in {flags}"
    return values[0]
