#!/usr/bin/env bash
# One short GPU check (text + image throughput on CUDA); see bench/gpu_check.py.
# From the repo root, with the project's venv:   bash bench/gpu_check.sh
# On a bare GPU machine (python3 with torch, sentence-transformers, transformers, pillow;
# no network, no LanceDB): carry open_clip_torch, ftfy and wcwidth as wheels in .whl/
# and the MiniLM folder without its weights in .gpu_carry/minilm/, then the same command.
# Extra arguments go to gpu_check.py (e.g. --images 64 --skip text).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import open_clip" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "${TMPDIR:-/tmp}/lodestar-site" .whl/*.whl
  export PYTHONPATH="${TMPDIR:-/tmp}/lodestar-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"  # the repo itself, no install needed
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
exec timeout "${GPU_CHECK_TIMEOUT:-540}" "$PY" bench/gpu_check.py "$@"
