"""The init container's fetch script (deploy/helm/rank1-triton/files/fetch.sh) under /bin/sh, with a stand-in
`rclone` that serves s3://, gs:// and https:// from local folders, as the real one would from the stores."""

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from deploy_helpers import CHART

SCRIPT = CHART / "files" / "fetch.sh"
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


def repository(folder: Path, models=("rank1", "tensorrt_llm")) -> Path:
    for model in models:
        (folder / model / "1").mkdir(parents=True)
        (folder / model / "config.pbtxt").write_text(f'name: "{model}"\n')
    return folder


@pytest.fixture
def store(tmp_path) -> Path:
    store = tmp_path / "store"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rclone").write_text(FAKE_RCLONE)
    (bin_dir / "rclone").chmod(0o755)
    repository(store / "s3" / "bucket" / "rank1-7b")
    repository(store / "gcs" / "bucket" / "rank1-7b")
    repository(store / "s3" / "bucket" / "incomplete", models=("rank1",))
    (store / "http").mkdir()
    with tarfile.open(store / "http" / "rank1-7b.tar.gz", "w:gz") as archive:
        archive.add(repository(tmp_path / "packed"), arcname=".")
    return store


def fetch(store: Path, uri: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{store.parent / 'bin'}:{os.environ['PATH']}",
        "STORE": str(store),
        "MODEL_REPOSITORY_URI": uri,
        "MODEL_CACHE_DIR": str(store.parent / "cache"),
        "REQUIRED_MODELS": "rank1 tensorrt_llm",
    }
    (store.parent / "cache").mkdir(exist_ok=True)
    return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "uri", ["s3://bucket/rank1-7b", "gs://bucket/rank1-7b", "https://models.example.com/rank1-7b.tar.gz"]
)
def test_fetches_each_scheme_into_the_repository_folder(store, uri):
    result = fetch(store, uri)
    assert result.returncode == 0, result.stderr
    fetched = store.parent / "cache" / "repository"
    assert sorted(p.name for p in fetched.iterdir()) == ["rank1", "tensorrt_llm"]
    assert (fetched / "tensorrt_llm" / "config.pbtxt").is_file()
    assert not (store.parent / "cache" / "rank1-7b.tar.gz").exists()


def test_reuses_a_complete_copy_of_the_same_uri_and_replaces_another(store):
    assert fetch(store, "s3://bucket/rank1-7b").returncode == 0
    assert fetch(store, "s3://bucket/rank1-7b").returncode == 0
    assert len((store / "calls").read_text().splitlines()) == 1, "second start must not download again"
    stale = store.parent / "cache" / "repository" / "stale-model"
    stale.mkdir()
    assert fetch(store, "gs://bucket/rank1-7b").returncode == 0
    assert not stale.exists(), "a different URI starts from an empty folder"


@pytest.mark.parametrize(
    "uri, message",
    [("s3://bucket/incomplete", "lacks tensorrt_llm/config.pbtxt"), ("ftp://host/repo", "unsupported")],
)
def test_fails_clearly(store, uri, message):
    result = fetch(store, uri)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (store.parent / "cache" / "fetched-from").exists(), "a failed copy must not be reused"
