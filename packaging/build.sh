#!/usr/bin/env bash
# Build a one-folder PyInstaller bundle of Workbench for this platform: dist/workbench/.
#
#   packaging/build.sh            CPU torch (no CUDA libraries)
#   packaging/build.sh --cuda     the CUDA build of torch instead (much larger)
#
# Environment: WORKBENCH_BUILD_DIR (build venv and work files; default build/bundle),
# WORKBENCH_DIST_DIR (default dist), PYTHON (default python3, 3.10 or newer).
# Pins: packaging/constraints.txt (build tools) and constraints.txt (the app's packages).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WORKBENCH_BUILD_DIR:-$ROOT/build/bundle}
DIST=${WORKBENCH_DIST_DIR:-$ROOT/dist}
PYTHON=${PYTHON:-python3}
CUDA=0
for arg in "$@"; do
  case $arg in
    --cuda) CUDA=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
mkdir -p "$BUILD" "$DIST"
[ -x "$BUILD/venv/bin/python" ] || "$PYTHON" -m venv "$BUILD/venv"
VPY="$BUILD/venv/bin/python"
PIN=(-c "$ROOT/constraints.txt" -c "$ROOT/packaging/constraints.txt")
"$VPY" -m pip install -q "${PIN[@]}" pyinstaller pyinstaller-hooks-contrib altgraph setuptools

TORCH=$(sed -n 's/^torch==\(.*\)$/\1/p' "$ROOT/constraints.txt")
if [ "$CUDA" = 1 ]; then
  "$VPY" -m pip install -q "${PIN[@]}" "torch==$TORCH"
else
  # the +cpu wheel: from a local wheel folder, or PyTorch's CPU index given in
  # PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS (packaging/README.md)
  "$VPY" -m pip install -q "${PIN[@]}" "torch==$TORCH+cpu"
fi
# the app and its first-party plugin, from this checkout (not editable: what users get)
"$VPY" -m pip install -q --no-build-isolation "${PIN[@]}" "$ROOT" "$ROOT/plugins/workbench-fold-bn"
if [ "$CUDA" = 0 ] && "$VPY" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "build.sh: CUDA libraries are installed in $BUILD/venv; remove the venv and rebuild" >&2
  exit 1
fi

# which commit this bundle is (Help ▸ About, workbench --version)
export WORKBENCH_BUILD_INFO="$BUILD/_build_info.json"
(cd "$ROOT" && "$VPY" -c "
import sys; from pathlib import Path
from workbench.core.session.build_info import write_build_info
print('commit', write_build_info(Path(sys.argv[1]), Path('.'), 'bundle'))" "$WORKBENCH_BUILD_INFO")

rm -rf "$DIST/workbench"
(cd "$BUILD" && env -u PYTHONPATH "$BUILD/venv/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath "$DIST" --workpath "$BUILD/work" "$ROOT/packaging/workbench.spec")
# the desktop installer travels with the bundle (it finds the executable beside it)
cp "$ROOT/packaging/install-desktop.sh" "$DIST/workbench/"
end=$(date +%s)

"$VPY" - "$DIST/workbench" "$((end - start))" <<'PY'
import os, sys
from pathlib import Path

root = Path(sys.argv[1])
inner = root / "_internal"
def size(p: Path) -> int:
    if p.is_file() or p.is_symlink():
        return p.lstat().st_size
    return sum(f.lstat().st_size for f in p.rglob("*") if f.is_file() or f.is_symlink())
total = size(root)
parts = []
for top in inner.iterdir():
    if top.is_dir() and top.name in ("torch", "PySide6"):
        parts += [(size(p), str(p.relative_to(inner))) for p in top.iterdir()]
    else:
        parts.append((size(top), str(top.relative_to(inner))))
print(f"bundle {root}: {total / 2**20:.0f} MiB in "
      f"{sum(1 for f in root.rglob('*') if f.is_file()):,} files")
print("largest 10 parts:")
for n, name in sorted(parts, reverse=True)[:10]:
    print(f"  {n / 2**20:8.1f} MiB  {name}")
print(f"build time {int(sys.argv[2]) // 60} min {int(sys.argv[2]) % 60} s")
PY
