#!/usr/bin/env bash
# Quick start on a fresh machine: install, start Triton with Rank1, rerank an example through the gRPC client.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python scripts/quickstart.py "$@"
