#!/usr/bin/env bash
# The whole test suite on a fresh machine: install everything, lint, then pytest (real tritonserver included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k parity -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Test models and tokenizers are built once into this git-ignored folder (rank1_triton.fixtures.store).
export RANK1_TRITON_CACHE="${RANK1_TRITON_CACHE:-$PWD/.cache/rank1-triton}"
step() { printf '\n==> %s\n' "$*"; }

scripts/install.sh
# shellcheck disable=SC1091
. .venv/bin/activate
step "installing chart validators (helm, kubernetes-validate, promtool)"
scripts/install_deploy_tools.sh
step "installing the quantization environment (.venv-quantize: nvidia-modelopt, transformers<5.15)"
build/install_quantize_env.sh
step "building the test models (cached in .cache/rank1-triton)"
python -m rank1_triton.fixtures tokenizer
python -m rank1_triton.fixtures random --arch qwen2
python -m rank1_triton.fixtures toy
python -m rank1_triton.fixtures toy --plain-bpe --quiet
step "ruff"
ruff check .
step "client-only tests (.venv-client: rank1-client[evaluate] with numpy 2, no torch, no server library)"
[ -x .venv-client/bin/python ] || python3 -m venv .venv-client
.venv-client/bin/python -m pip install --quiet --upgrade pip
.venv-client/bin/python -m pip install --quiet -e "./client[evaluate]" "numpy>=2" pytest
.venv-client/bin/python -c 'import numpy, sys; sys.exit(f"numpy {numpy.__version__} < 2" if int(numpy.__version__.split(".")[0]) < 2 else 0)'
.venv-client/bin/python -m pytest tests/client -m "not server" -p no:cacheprovider
step "pytest"
python -m pytest "$@"
