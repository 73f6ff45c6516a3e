#!/usr/bin/env bash
# Smoke-test a built bundle (default dist/workbench), from outside the checkout and with
# no Python environment in reach:
#   --version --json; inspect zoo:mlp --json; screenshot of an ONNX file (offscreen);
#   apply (built-in passes, the first-party plugin); a third-party plugin installed in
#   plugins/ beside the executable, discovered and run; launch-to-painted-window time.
#
#   packaging/smoke.sh [BUNDLE_DIR]
# Environment: PYTHON (default: the build venv's python, else python3) checks the JSON
# output and installs the demo plugin with `pip install --target`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WORKBENCH_BUILD_DIR:-$ROOT/build/bundle}
BUNDLE=$(cd "${1:-${WORKBENCH_DIST_DIR:-$ROOT/dist}/workbench}" && pwd)
APP="$BUNDLE/workbench"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$BUILD/venv/bin/python" ]; then PYTHON="$BUILD/venv/bin/python"; else PYTHON=python3; fi
fi
WORK=$(mktemp -d)
cleanup() { rm -rf "$WORK" "$BUNDLE/plugins"; }
trap cleanup EXIT
# an empty profile, offscreen Qt, and nothing of the checkout or a venv importable
export WORKBENCH_CONFIG_DIR="$WORK/config" WORKBENCH_DATA_DIR="$WORK/data" \
  WORKBENCH_CACHE_DIR="$WORK/cache" QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV WORKBENCH_PLUGIN_PATH
cd "$WORK"
step() { printf '\n== %s\n' "$*"; }
check() { "$PYTHON" -c "import json, sys; d = json.load(open(sys.argv[1])); $1" "$2"; }

step "version"
"$APP" --version
"$APP" --version --json > version.json
check 'assert d["frozen"] is True, d["frozen"]; assert d["build"]["source"] == "bundle", d["build"]; print("commit", d["build"]["commit"], "torch", d["packages"]["torch"], d["device"])' version.json

step "inspect zoo:mlp --json"
"$APP" inspect zoo:mlp --json > inspect.json
check 'assert d["nodes"] > 0 and d["parameters"] > 0, d; print(d["nodes"], "nodes,", d["parameters"], "parameters")' inspect.json

step "export to ONNX, then screenshot it"
"$APP" export zoo:resnet-mini -o resnet-mini.onnx --json > export.json
"$APP" screenshot resnet-mini.onnx -o shot.png --json > shot.json
"$PYTHON" - shot.png <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1400, 900) and len(data) > 20_000, (w, h, len(data))
print(f"screenshot {w}x{h}, {len(data):,} bytes")
PY

step "apply: built-in passes and the first-party plugin"
"$APP" apply zoo:mlp prune.magnitude --param sparsity=0.5 -o pruned.onnx --json > prune.json
check 'a = d["after"]["sparsity"]; assert a >= 0.45, a; print("prune.magnitude sparsity", round(a, 3))' prune.json
"$APP" apply resnet-mini.onnx quantize.ort_dynamic -o int8.onnx --json > quant.json
check 'assert d["after"]["size_bytes"] < d["before"]["size_bytes"]; print("quantize.ort_dynamic", d["before"]["size_bytes"], "->", d["after"]["size_bytes"], "bytes")' quant.json
"$APP" apply zoo:resnet-mini convert.fold_bn -o folded.pt2 --json > fold.json
check 'assert d["details"]["batchnorm_folded"] > 0; print("convert.fold_bn folded", d["details"]["batchnorm_folded"])' fold.json

step "third-party plugin in $BUNDLE/plugins"
"$PYTHON" -m pip install -q --no-deps --no-build-isolation --target "$BUNDLE/plugins" \
  "$ROOT/packaging/demo-plugin" 2>&1 | grep -v "^\[notice\]" || true
rm -rf "$ROOT/packaging/demo-plugin/build" "$ROOT/packaging/demo-plugin/src/"*.egg-info
"$APP" passes --json > passes.json
check 'p = {x["name"]: x["origin"] for x in d["passes"]}; assert p.get("demo.round_weights") == "workbench-round-weights 0.1.0", (p, d["failed"]); print("discovered demo.round_weights from", p["demo.round_weights"])' passes.json
"$APP" apply zoo:mlp demo.round_weights --param decimals=1 -o rounded.onnx --json > round.json
check 'assert d["details"]["weights_changed"] > 0; print("demo.round_weights changed", d["details"]["weights_changed"], "weights")' round.json

step "launch to a painted window"
for model in "" resnet-mini.onnx; do
  t0=$(date +%s.%N)
  WORKBENCH_EXIT_AFTER_PAINT=1 "$APP" $model 2> paint.err || { cat paint.err; exit 1; }
  painted=$(sed -n 's/^painted_at=//p' paint.err)
  [ -n "$painted" ] || { echo "the window never painted"; cat paint.err; exit 1; }
  "$PYTHON" -c "import sys; print(f'painted {\"empty window\" if not sys.argv[3] else sys.argv[3]} {float(sys.argv[2]) - float(sys.argv[1]):.2f} s after launch')" "$t0" "$painted" "$model"
done

printf '\nsmoke: all passed\n'
