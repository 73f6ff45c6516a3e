#!/usr/bin/env bash
# Refresh constraints.txt: install the newest releases that pyproject.toml allows into a
# scratch venv, run the test suite there, and only then write what it ran with.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q torch==2.13.0 -e '.[dev]' -e plugins/workbench-fold-bn
QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 "$scratch/venv/bin/python" -m pytest -q
{
  echo "# Every package the test suite ran with. Refresh: tools/refresh-constraints.sh"
  "$scratch/venv/bin/pip" freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+cpu$/torch==\1/'
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt refreshed; review the diff, then commit it."
