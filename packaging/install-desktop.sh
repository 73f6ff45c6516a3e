#!/usr/bin/env bash
# Install Workbench into the current user's desktop (Linux, XDG): the application-menu
# entry, the icon at the usual sizes, and the .onnx / .pt2 file types opened with it.
#
#   install-desktop.sh [EXECUTABLE]     install (EXECUTABLE: default, in this order, the
#                                       bundle beside this script, dist/workbench/workbench
#                                       of this checkout, `workbench` on PATH (pipx))
#   install-desktop.sh --uninstall      remove what install put there
#
# Writes under ${XDG_DATA_HOME:-~/.local/share}: applications/workbench.desktop,
# icons/hicolor/*/apps/workbench.png (+ scalable SVG, + mimetype icons),
# mime/packages/workbench.xml; then refreshes the desktop, MIME and icon caches with
# update-desktop-database, update-mime-database and gtk-update-icon-cache when present.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
SIZES="16 24 32 48 64 128 256 512"
MIME_TYPES="application/x-onnx application/x-pytorch-exported-program"

refresh() {
  if command -v update-desktop-database >/dev/null; then
    update-desktop-database -q "$DATA/applications" || true
  fi
  if command -v update-mime-database >/dev/null; then
    update-mime-database "$DATA/mime" >/dev/null || true
  fi
  if command -v gtk-update-icon-cache >/dev/null && [ -f "$DATA/icons/hicolor/index.theme" ]; then
    gtk-update-icon-cache -q -t -f "$DATA/icons/hicolor" || true
  fi
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$DATA/applications/workbench.desktop" "$DATA/mime/packages/workbench.xml" \
    "$DATA/icons/hicolor/scalable/apps/workbench.svg"
  for s in $SIZES; do
    rm -f "$DATA/icons/hicolor/${s}x${s}/apps/workbench.png"
    for t in $MIME_TYPES; do rm -f "$DATA/icons/hicolor/${s}x${s}/mimetypes/${t/\//-}.png"; done
  done
  refresh
  echo "removed Workbench from the desktop of ${USER:-$(id -un)}"
  exit 0
fi

# the resources: inside a bundle (this script sits beside the executable) or a checkout
for dir in "$HERE/_internal/workbench/resources" "$HERE/../resources"; do
  if [ -f "$dir/workbench.desktop" ]; then RES=$(cd "$dir" && pwd); break; fi
done
[ -n "${RES:-}" ] || { echo "install-desktop.sh: cannot find Workbench's resources" >&2; exit 1; }

EXE=${1:-}
if [ -z "$EXE" ]; then
  for candidate in "$HERE/workbench" "$HERE/../dist/workbench/workbench"; do
    if [ -x "$candidate" ] && [ -f "$candidate" ]; then EXE=$candidate; break; fi
  done
fi
[ -n "$EXE" ] || EXE=$(command -v workbench || true)
[ -n "$EXE" ] && [ -x "$EXE" ] || { echo "install-desktop.sh: no workbench executable found;" \
  "give its path" >&2; exit 1; }
EXE=$(cd "$(dirname "$EXE")" && pwd)/$(basename "$EXE")

mkdir -p "$DATA/applications" "$DATA/mime/packages" "$DATA/icons/hicolor/scalable/apps"
# Exec with the absolute path: the menu works without the bundle on PATH
sed -e "s|^Exec=.*|Exec=\"$EXE\" %f|" -e "s|^TryExec=.*||" "$RES/workbench.desktop" \
  > "$DATA/applications/workbench.desktop"
cp "$RES/workbench-mime.xml" "$DATA/mime/packages/workbench.xml"
cp "$RES/workbench.svg" "$DATA/icons/hicolor/scalable/apps/workbench.svg"
for s in $SIZES; do
  mkdir -p "$DATA/icons/hicolor/${s}x${s}/apps" "$DATA/icons/hicolor/${s}x${s}/mimetypes"
  cp "$RES/icons/workbench-$s.png" "$DATA/icons/hicolor/${s}x${s}/apps/workbench.png"
  for t in $MIME_TYPES; do
    cp "$RES/icons/workbench-$s.png" "$DATA/icons/hicolor/${s}x${s}/mimetypes/${t/\//-}.png"
  done
done
refresh
if command -v xdg-mime >/dev/null && [ -z "${WORKBENCH_NO_DEFAULT:-}" ]; then
  xdg-mime default workbench.desktop $MIME_TYPES 2>/dev/null || true
fi
echo "installed Workbench for ${USER:-$(id -un)}: $DATA/applications/workbench.desktop -> $EXE"
