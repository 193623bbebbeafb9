#!/usr/bin/env bash
# Create (or complete) the quantization environment .venv-quantize at the repository root.
# Idempotent: an existing environment that already imports ModelOpt's quantizer and exporter is left alone.
# Usage: build/install_quantize_env.sh [VENV_DIR]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${repo_root}/.venv-quantize}"
requirements="${repo_root}/build/requirements-quantize.txt"
check='import modelopt.torch.quantization, modelopt.torch.export, transformers, safetensors, pytest, rank1_triton.contract'

if [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -c "${check}" >/dev/null 2>&1; then
    echo "quantization environment ready: ${venv}"
    exit 0
fi

python3 -m venv "${venv}"
"${venv}/bin/python" -m pip install --quiet --upgrade pip
"${venv}/bin/python" -m pip install --quiet -r "${requirements}"
# rank1_build reads the shared limits from rank1_triton.contract (standard library only); --no-deps keeps this
# environment's own transformers pin.
"${venv}/bin/python" -m pip install --quiet --no-deps -e "${repo_root}/python_backend"
"${venv}/bin/python" -c "${check}"
echo "quantization environment ready: ${venv}"
