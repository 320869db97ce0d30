#!/usr/bin/env bash
# Train the four bundled style networks (lesson 14), one per public-domain painting in ../shared/data/style.
#   train/style_all.sh [OUT_ROOT] [extra train/style.py options...]      (OUT_ROOT defaults to weights)
# The paintings are read from the data root's style/ folder (DL_DATA_DIR, default ../shared/data).
# With a GPU the four runs share it side by side; on a CPU they run one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
out_root=${1:-weights}; shift || true
mkdir -p "$out_root"
styles=(starry_night the_scream shipwreck woman-with-hat-matisse)
PYTHON=${PYTHON:-python3}
paintings=$("$PYTHON" -c "from dl_core.paths import data_path; print(data_path('style'))")
run() {
  local name=${1//-/_}
  "$PYTHON" train/style.py train --style "$paintings/$1.jpg" --out "$out_root/style-$name" "${@:2}"
}
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  mkdir -p runs
  for s in "${styles[@]}"; do run "$s" --mixed-precision bf16 --workers 2 "$@" >"runs/$(basename "$out_root")-style-${s//-/_}.log" 2>&1 & done
  wait
else
  for s in "${styles[@]}"; do run "$s" "$@"; done
fi
