"""The init container's fetch script (deploy/helm/rank1-triton/files/fetch.sh) under /bin/sh, with a stand-in
`rclone` that serves s3://, gs:// and https:// from local folders, as the real one would from the stores.

The stores hold build output folders laid out like `python -m rank1_build build --output OUT --serve-root MOUNT`
writes them: build.json, engine/, tokenizer/ and repository/ whose configs name MOUNT/engine and MOUNT/tokenizer.
When busybox is on PATH (Debian: `apt-get download busybox`, then `dpkg -x`), every case also runs with busybox's
sh, sed, tr, tar, mv and rm in front of PATH, as in the rclone image (Alpine)."""

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from deploy_helpers import CHART

SCRIPT = CHART / "files" / "fetch.sh"
MOUNT = "/models"
# Stand-in rclone: `copy :s3:<path> <dest>` / `copy :gcs:<path> <dest>` copy from $STORE/<s3|gcs>/<path>;
# `copyurl https://host/<path> <file>` copies $STORE/http/<path>. Each call is logged to $STORE/calls.
FAKE_RCLONE = """#!/bin/sh
set -eu
echo "$*" >> "$STORE/calls"
case "$1" in
  copy) src=$(echo "$2" | sed -e 's#^:s3:#s3/#' -e 's#^:gcs:#gcs/#'); mkdir -p "$3"; cp -R "$STORE/$src/." "$3/" ;;
  copyurl) cp "$STORE/http/${2#https://*/}" "$3" ;;
esac
"""
BUSYBOX_APPLETS = ("sh", "sed", "tr", "tar", "mv", "rm", "rmdir", "mkdir", "cat", "cp")
ONE_LINE = 'parameters: {{ key: "{key}", value: {{ string_value: "{value}" }} }}\n'
# The form NVIDIA's tensorrtllm_backend templates use (all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt).
MULTI_LINE = 'parameters: {{\n  key: "{key}"\n  value: {{\n    string_value: "{value}"\n  }}\n}}\n'


def build_output(folder: Path, *, serve_root: str = MOUNT, engine: str = "tensorrt-llm", skip: str = "") -> Path:
    """A build output folder; `skip` leaves out one of engine/, tokenizer/, repository/."""
    engine_key, form = ("gpt_model_path", MULTI_LINE) if engine == "tensorrt-llm" else ("model_dir", ONE_LINE)
    folder.mkdir(parents=True)
    (folder / "build.json").write_text(json.dumps({"serve_root": serve_root, "engine": engine}, indent=2))
    for part in ("engine", "tokenizer"):
        if part != skip:
            (folder / part).mkdir()
            (folder / part / "placeholder").write_text(part)
    if skip != "repository":
        entry, engine_model = folder / "repository" / "rank1", folder / "repository" / "tensorrt_llm"
        for model in (entry, engine_model):
            (model / "1").mkdir(parents=True)
        (entry / "config.pbtxt").write_text(
            'name: "rank1"\nbackend: "python"\n'
            + ONE_LINE.format(key="engine_model_name", value="tensorrt_llm")
            + ONE_LINE.format(key="tokenizer_dir", value=f"{serve_root}/tokenizer")
        )
        (engine_model / "config.pbtxt").write_text(
            'name: "tensorrt_llm"\n'
            + ONE_LINE.format(key="tokenizer_dir", value="/elsewhere/not-checked")
            + form.format(key=engine_key, value=f"{serve_root}/engine")
            + ONE_LINE.format(key="max_beam_width", value="1")
        )
    return folder


@pytest.fixture(params=["sh", "busybox"])
def shell(request, tmp_path) -> list[str]:
    """`sh` (with the system's tools), or busybox's sh with busybox's tools in front of PATH."""
    if request.param == "sh":
        return ["sh"]
    # scripts/install_deploy_tools.sh puts it beside helm and promtool.
    bundled = CHART.parents[2] / ".cache" / "deploy-tools" / "bin" / "busybox"
    busybox = str(bundled) if bundled.is_file() else shutil.which("busybox")
    if not busybox:
        pytest.skip("busybox not on PATH: the script ran under /bin/sh only")
    applets = tmp_path / "busybox-bin"
    applets.mkdir()
    for applet in BUSYBOX_APPLETS:
        (applets / applet).symlink_to(busybox)
    return [str(applets / "sh")]


@pytest.fixture
def store(tmp_path, shell) -> Path:
    store = tmp_path / "store"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    interpreter = shell[0] if Path(shell[0]).is_absolute() else "/bin/sh"
    (bin_dir / "rclone").write_text(FAKE_RCLONE.replace("#!/bin/sh", f"#!{interpreter}"))
    (bin_dir / "rclone").chmod(0o755)
    build_output(store / "s3" / "bucket" / "rank1-7b")
    build_output(store / "gcs" / "bucket" / "rank1-7b", engine="torch")
    build_output(store / "s3" / "bucket" / "no-engine", skip="engine")
    build_output(store / "s3" / "bucket" / "no-tokenizer", skip="tokenizer")
    build_output(store / "s3" / "bucket" / "kserve-build", serve_root="/mnt/models")
    (store / "http").mkdir()
    with tarfile.open(store / "http" / "rank1-7b.tar.gz", "w:gz") as archive:
        archive.add(build_output(tmp_path / "packed"), arcname=".")
    return store


def fetch(store: Path, shell: list[str], uri: str) -> subprocess.CompletedProcess:
    applets = Path(shell[0]).parent
    path = f"{store.parent / 'bin'}:{os.environ['PATH']}"
    env = {
        "PATH": f"{applets}:{path}" if applets.name == "busybox-bin" else path,
        "STORE": str(store),
        "MODEL_REPOSITORY_URI": uri,
        "MODEL_CACHE_DIR": str(store.parent / "cache"),
        "MODEL_MOUNT_PATH": MOUNT,
        "ENTRY_MODEL": "rank1",
        "ENGINE_MODEL": "tensorrt_llm",
    }
    (store.parent / "cache").mkdir(exist_ok=True)
    return subprocess.run([*shell, str(SCRIPT)], capture_output=True, text=True, env=env)


def cached(store: Path) -> list[str]:
    return sorted(p.name for p in (store.parent / "cache").iterdir())


@pytest.mark.parametrize(
    "uri", ["s3://bucket/rank1-7b", "gs://bucket/rank1-7b", "https://models.example.com/rank1-7b.tar.gz"]
)
def test_fetches_each_scheme_into_the_cache_root(store, shell, uri):
    # s3: TensorRT-LLM engine, NVIDIA's multi-line gpt_model_path; gs: CPU engine, one-line model_dir.
    result = fetch(store, shell, uri)
    assert result.returncode == 0, result.stderr
    # The server mounts the cache volume itself at /models: the build output sits at its root.
    assert cached(store) == [".rank1-fetched-from", "build.json", "engine", "repository", "tokenizer"]
    repository = store.parent / "cache" / "repository"
    assert sorted(p.name for p in repository.iterdir()) == ["rank1", "tensorrt_llm"]
    assert (repository / "tensorrt_llm" / "config.pbtxt").is_file()
    assert "served at /models" in result.stdout


def test_reuses_a_complete_copy_of_the_same_uri_and_replaces_another(store, shell):
    assert fetch(store, shell, "s3://bucket/rank1-7b").returncode == 0
    assert fetch(store, shell, "s3://bucket/rank1-7b").returncode == 0
    assert len((store / "calls").read_text().splitlines()) == 1, "second start must not download again"
    cache = store.parent / "cache"
    (cache / "stale-engine").mkdir()
    (cache / ".stale-hidden").write_text("x")
    (cache / "lost+found").mkdir()  # the root of an ext4 volume
    assert fetch(store, shell, "gs://bucket/rank1-7b").returncode == 0
    assert not (cache / "stale-engine").exists() and not (cache / ".stale-hidden").exists()
    assert (cache / "lost+found").is_dir(), "a volume's lost+found is left alone"


def test_missing_engine_folder_fails_naming_parameter_path_and_cause(store, shell):
    result = fetch(store, shell, "s3://bucket/no-engine")
    assert result.returncode != 0
    assert "parameter gpt_model_path in repository/tensorrt_llm/config.pbtxt names /models/engine" in result.stderr
    assert "upload the whole build output folder" in result.stderr
    assert "different --serve-root than modelRepository.mountPath" in result.stderr
    assert not (store.parent / "cache" / ".rank1-fetched-from").exists(), "a failed copy must not be reused"


def test_missing_tokenizer_folder_fails(store, shell):
    result = fetch(store, shell, "s3://bucket/no-tokenizer")
    assert result.returncode != 0
    assert "parameter tokenizer_dir in repository/rank1/config.pbtxt names /models/tokenizer" in result.stderr


def test_build_for_another_serve_root_fails_with_the_likely_cause(store, shell):
    # Built for KServe (--serve-root /mnt/models) but served by the chart at /models.
    result = fetch(store, shell, "s3://bucket/kserve-build")
    assert result.returncode != 0
    assert "parameter tokenizer_dir in repository/rank1/config.pbtxt is '/mnt/models/tokenizer'" in result.stderr
    assert "not under modelRepository.mountPath /models (build.json: serve_root /mnt/models)" in result.stderr
    assert "different --serve-root than modelRepository.mountPath" in result.stderr


@pytest.mark.parametrize(
    "uri, message",
    [
        ("s3://bucket/rank1-7b/repository", "the download lacks repository/rank1/config.pbtxt"),
        ("ftp://host/repo", "unsupported"),
    ],
)
def test_fails_clearly(store, shell, uri, message):
    result = fetch(store, shell, uri)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (store.parent / "cache" / ".rank1-fetched-from").exists(), "a failed copy must not be reused"
