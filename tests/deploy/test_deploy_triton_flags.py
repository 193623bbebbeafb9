"""The serving flags the chart renders, run by a real tritonserver 2.51 (from nvidia-pytriton 0.7.0, CPU only) on
an empty model repository: every flag must parse (Triton exits on unknown ones), the API key must guard
metadata over HTTP and gRPC while health stays open, the model-repository API (open in explicit model control)
must need its key, and gRPC must speak TLS.

The production image runs Triton 2.69. Flags that 2.51 does not know (--allow-client-shm, from 2.68) are left
out here through TRITON_251_SETS; test_deploy_chart.py checks that the default rendering passes them."""

import importlib.util
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from deploy_helpers import TLS_AUTH_TP2, TRITON_251_SETS, expand_env_references, find, rank0_flags, server_container

API_KEY = "test-key"
MODEL_CONTROL_KEY = "test-pod-uid"


def tritonserver_binary() -> Path:
    spec = importlib.util.find_spec("pytriton")
    binary = Path(spec.origin).parent / "tritonserver" / "bin" / "tritonserver" if spec else None
    if binary is None or not binary.exists():
        pytest.skip("no tritonserver binary: install nvidia-pytriton==0.7.0 (Triton 2.51) to run this check")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls(folder: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, named like the keys of a kubernetes.io/tls Secret."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make test certificates")
    folder.mkdir()

    def openssl(command: str) -> None:
        subprocess.run(["openssl", *command.split()], cwd=folder, check=True, capture_output=True)

    openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=rank1-test-ca")
    openssl("req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=localhost")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 1 -extfile san.ext")


def local_flags(flags: list[str], tmp_path: Path, ports: dict[str, int]) -> list[str]:
    """The rendered flags with the pod's paths, ports and keys replaced by local ones."""
    (tmp_path / "models" / "repository").mkdir(parents=True)
    local = []
    for flag in flags:
        name = flag.split("=", 1)[0]
        if name in {"--http-port", "--grpc-port", "--metrics-port"}:
            flag = f"{name}={ports[name[2:-5]]}"
        flag = flag.replace("=/models", f"={tmp_path / 'models'}")
        local.append(flag.replace("/etc/rank1-triton/tls", str(tmp_path / "tls")))
    return expand_env_references(local, {"RANK1_API_KEY": API_KEY, "RANK1_MODEL_CONTROL_KEY": MODEL_CONTROL_KEY})


def http_post(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_live(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tritonserver exited with {process.returncode}:\n{process.stdout.read()[-3000:]}")
        try:
            if http_status(f"{base}/v2/health/live") == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("tritonserver did not become live within 60 s")


@pytest.mark.server
@pytest.mark.parametrize("values", [(), (TLS_AUTH_TP2,)], ids=["default", "tls-auth-tp2"])
def test_tritonserver_accepts_rendered_flags(tools, values, tmp_path):
    binary = tritonserver_binary()
    container = server_container(find(tools.render(*values, sets=TRITON_251_SETS), "Deployment"))
    flags = rank0_flags(container)
    assert "--model-control-mode=explicit" in flags and "--load-model=*" in flags
    tls = "--grpc-use-ssl=true" in flags
    auth = any("$(RANK1_API_KEY)" in f for f in flags)
    if tls:
        make_tls(tmp_path / "tls")
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    process = subprocess.Popen(
        [str(binary), *local_flags(flags, tmp_path, ports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{ports['http']}"
        wait_live(process, base)
        assert http_status(f"{base}/v2/health/ready") == 200, "health must stay open for the kubelet"
        assert http_status(f"{base}/v2") == (403 if auth else 200)
        if auth:
            assert http_status(f"{base}/v2", {"rank1-api-key": API_KEY}) == 200
        # Explicit model control opens the model-repository API; its key is the API key (auth.protocols covers
        # model-repository) or, without auth, the pod UID under header rank1-model-control.
        index = f"{base}/v2/repository/index"
        key = {"rank1-api-key": API_KEY} if auth else {"rank1-model-control": MODEL_CONTROL_KEY}
        assert http_post(index) == 403
        assert http_post(index, key) == 200
        if tls:
            check_grpc_tls_and_key(ports["grpc"], tmp_path / "tls" / "ca.crt")
        else:
            check_grpc_model_control_key(ports["grpc"])
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output[-3000:]


def check_grpc_tls_and_key(port: int, ca: Path) -> None:
    grpc = pytest.importorskip("tritonclient.grpc")
    client = grpc.InferenceServerClient(f"127.0.0.1:{port}", ssl=True, root_certificates=str(ca))
    with pytest.raises(grpc.InferenceServerException, match="restricted"):
        client.get_server_metadata()
    metadata = client.get_server_metadata(headers={"triton-grpc-protocol-rank1-api-key": API_KEY})
    assert metadata.version == "2.51.0"
    client.close()


def check_grpc_model_control_key(port: int) -> None:
    """Without auth, gRPC's model-repository API needs the model-control key as triton-grpc-protocol- metadata."""
    grpc = pytest.importorskip("tritonclient.grpc")
    client = grpc.InferenceServerClient(f"127.0.0.1:{port}")
    with pytest.raises(grpc.InferenceServerException, match="restricted"):
        client.get_model_repository_index()
    client.get_model_repository_index(headers={"triton-grpc-protocol-rank1-model-control": MODEL_CONTROL_KEY})
    assert client.get_server_metadata().version == "2.51.0", "other protocols stay open without auth"
    client.close()
