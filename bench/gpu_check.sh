#!/usr/bin/env bash
# One short GPU check (text + image throughput on CUDA); see bench/gpu_check.py.
# Usage on the device machine, from the repo root:  bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import indexer, models" 2>/dev/null || "$PY" -m pip install -e . --no-deps --no-build-isolation -q
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
exec timeout 540 "$PY" bench/gpu_check.py "$@"
