#!/usr/bin/env bash
# One prepared GPU check (one GPU, at most ~5 minutes): loss parity and step time of torchbolt vs a
# hand-written AMP loop vs Lightning at 32-true, bf16-mixed and 16-mixed, on the overhead MLP and a
# small transformer block. Writes the table to ${OUT:-.}/gpu_check.md and prints it.
#   bash bench/gpu_check.sh            # on a machine with one CUDA GPU and the repo's .venv
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT_DIR="${OUT:-.}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/runtime${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.__version__, torch.cuda.get_device_name())"
timeout 290 "$PY" bench/gpu_check.py --steps "${STEPS:-300}" --runs "${RUNS:-3}" --out "$OUT_DIR/gpu_check.md"
