#!/usr/bin/env bash
# Quick start on a fresh machine: install, start Triton with Rank1, rerank an example through the gRPC client,
# then through the HTTP gateway (rank1-gateway) with curl and the cohere SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
# Test models and tokenizers are built once into this git-ignored folder (rank1_triton.fixtures.store).
export RANK1_TRITON_CACHE="${RANK1_TRITON_CACHE:-$PWD/.cache/rank1-triton}"
scripts/install.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python scripts/quickstart.py "$@"
