#!/usr/bin/env bash
# Check that `pip install .` in a fresh venv gives a working `workbench` with every default
# feature (what `pipx install .` does): version with commit, inspect, export, screenshot,
# apply with ONNX Runtime, a painted window.
#   packaging/check-pip-install.sh [FOLDER]   (default: a temporary folder, removed after)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$DIR"' EXIT
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$DIR/venv"
"$DIR/venv/bin/python" -m pip install -q -c "$ROOT/constraints.txt" "$ROOT"
WB="$DIR/venv/bin/workbench"
export WORKBENCH_CONFIG_DIR="$DIR/config" WORKBENCH_DATA_DIR="$DIR/data" \
  WORKBENCH_CACHE_DIR="$DIR/cache" QT_QPA_PLATFORM=offscreen
unset PYTHONPATH
cd "$DIR"
"$WB" --version | grep -v "unknown commit"
"$WB" inspect zoo:mlp --json > /dev/null
"$WB" export zoo:resnet-mini -o m.onnx
"$WB" screenshot m.onnx -o m.png
"$WB" apply m.onnx quantize.ort_dynamic -o q.onnx --json > /dev/null
"$WB" passes | grep -q prune.magnitude
WORKBENCH_EXIT_AFTER_PAINT=1 "$WB" m.onnx 2>&1 | grep -q painted_at=
echo "pip install: all passed"
