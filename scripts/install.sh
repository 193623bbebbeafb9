#!/usr/bin/env bash
# Create .venv (if needed) and install rank1-triton with everything the demo and tests use.
# torch is pinned to the CPU build 2.13.0: any other version would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
step() { printf '\n==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "creating virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
step "upgrading pip"
python -m pip install --upgrade --quiet pip
step "installing torch==2.13.0 (CPU build)"
python -m pip install --progress-bar on "torch==2.13.0"
step "installing rank1-triton, its client and test tools"
python -m pip install --progress-bar on -r requirements-dev.txt -e "./python_backend[fixtures,serve]" -e ./client -e ./build
step "installing the HTTP gateway and the SDKs its tests call it with (cohere, LangChain, LlamaIndex)"
python -m pip install --progress-bar on -e "./gateway[tokenizer]" -e "./client[langchain,llama-index,evaluate]" \
  -r gateway/requirements-test.txt
python - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
assert not torch.version.cuda, "a CUDA build of torch was installed; reinstall with: pip install torch==2.13.0"
print(f"torch {torch.__version__} (CPU) ready")
PY
