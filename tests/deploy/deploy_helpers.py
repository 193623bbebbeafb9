"""Shared pieces of the deploy/ tests: paths, the offline tools, and accessors for rendered objects."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "rank1-triton"
EXAMPLES = REPO / "deploy" / "helm" / "examples"
TLS_AUTH_TP2 = EXAMPLES / "values-tls-auth-tp2.yaml"
FETCH_STATEFULSET = EXAMPLES / "values-fetch-statefulset.yaml"
RELEASE, NAMESPACE = "rank1-triton", "rank1"


@dataclass(frozen=True)
class Tools:
    helm: Path
    promtool: Path
    helm_env: dict[str, str]

    def helm_run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.helm), *args], capture_output=True, text=True, env=self.helm_env)

    def template(self, *values_files: Path, sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`helm template` of the chart (helm test pods included); check returncode for failures."""
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        args += [arg for f in values_files for arg in ("-f", str(f))]
        args += [arg for s in sets for arg in ("--set", s)]
        return self.helm_run(*args)

    def render(self, *values_files: Path, sets: tuple[str, ...] = ()) -> list[dict]:
        result = self.template(*values_files, sets=sets)
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


def rank0_flags(container: dict) -> list[str]:
    """tritonserver flags of the serving process: the args, or under mpirun those of the first rank."""
    args = container["args"]
    if container["command"] == ["tritonserver"]:
        return args
    first = args.index("tritonserver") + 1
    return args[first : args.index(":")] if ":" in args else args[first:]


def flag_value(flags: list[str], name: str) -> str:
    values = [f.split("=", 1)[1] for f in flags if f.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} given {len(values)} times in {flags}"
    return values[0]
