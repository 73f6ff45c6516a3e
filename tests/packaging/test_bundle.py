"""The desktop bundle builds and passes its smoke test: `pytest -m bundle tests/packaging -s`.

Slow (a PyInstaller build takes minutes), so the default run skips it. It runs
packaging/build.sh then packaging/smoke.sh, building into WORKBENCH_BUILD_DIR (default a
temporary folder; give a persistent one to reuse the build venv).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bundle


def test_build_then_smoke(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "WORKBENCH_CONFIG_DIR",
                        "WORKBENCH_DATA_DIR", "WORKBENCH_CACHE_DIR")}
    env.setdefault("WORKBENCH_BUILD_DIR", str(tmp_path / "build"))
    env["WORKBENCH_DIST_DIR"] = str(tmp_path / "dist")
    # output goes straight to the terminal (-s shows the size report and the smoke steps)
    build = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], env=env,
                           timeout=3600, check=False)
    assert build.returncode == 0
    bundle = tmp_path / "dist" / "workbench"
    assert (bundle / "workbench").is_file()
    assert (bundle / "licenses").is_dir()
    assert (bundle / "install-desktop.sh").is_file()
    smoke = subprocess.run(["bash", str(ROOT / "packaging" / "smoke.sh"), str(bundle)],
                           env=env, timeout=1800, check=False)
    assert smoke.returncode == 0  # every step checks its own result (set -e)
