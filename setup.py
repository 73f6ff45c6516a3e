"""Records the git commit in the built package (workbench/_build_info.json) so an installed
copy can name its commit in Help ▸ About and `workbench --version`. Everything else is in
pyproject.toml."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None or not (HERE / ".git").exists():
        return None
    try:
        return subprocess.run([git, "-C", str(HERE), *args], check=True, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


class BuildPyWithCommit(build_py):
    """build_py that also writes workbench/_build_info.json (commit None without git)."""

    def run(self) -> None:
        super().run()
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
        info = {"commit": commit or None,
                "dirty": bool(status) if status is not None else None, "kind": "installed"}
        target = Path(self.build_lib) / "workbench" / "_build_info.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


setup(cmdclass={"build_py": BuildPyWithCommit})
