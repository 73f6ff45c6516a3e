"""Which commit this copy of Workbench was built from.

A checkout answers through git. An installed package or a bundle answers from
`workbench/_build_info.json`, which `setup.py` (on `pip install`) and `packaging/build.sh`
write at build time. Neither may crash the app: without git and without the file the
commit is None.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # .../workbench
BUILD_INFO = PACKAGE_DIR / "_build_info.json"
GIT_TIMEOUT_S = 3.0


def git_commit(folder: Path) -> dict[str, Any] | None:
    """`{"commit", "dirty"}` of the git work tree holding `folder`, or None (no git, not a
    checkout, git failing or hanging)."""
    git = shutil.which("git")
    if git is None or not (folder / ".git").exists():
        return None
    try:
        head = subprocess.run([git, "-C", str(folder), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
        status = subprocess.run([git, "-C", str(folder), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git in %s failed: %s", folder, exc)
        return None
    commit = head.stdout.strip()
    if len(commit) < 7:
        return None
    return {"commit": commit, "dirty": bool(status.stdout.strip())}


def recorded_build_info(path: Path | None = None) -> dict[str, Any] | None:
    """The build record written when this copy was installed or bundled, or None."""
    path = path or BUILD_INFO
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.debug("no build record at %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("commit"), str):
        return None
    return data


def write_build_info(target: Path, source: Path, kind: str) -> dict[str, Any]:
    """Record the commit of the checkout at `source` in `target` (used at build time)."""
    info: dict[str, Any] = {**(git_commit(source) or {"commit": None, "dirty": None}),
                            "kind": kind}
    target.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


@functools.cache
def build_info() -> dict[str, Any]:
    """`commit` (or None), `dirty`, and `source`: checkout, installed, bundle or unknown."""
    frozen = bool(getattr(sys, "frozen", False))
    live = None if frozen else git_commit(PACKAGE_DIR.parent)
    if live is not None:
        return {**live, "source": "checkout"}
    recorded = recorded_build_info()
    if recorded is not None:
        return {"commit": recorded["commit"], "dirty": recorded.get("dirty"),
                "source": "bundle" if frozen else "installed"}
    return {"commit": None, "dirty": None, "source": "unknown"}


def short_commit(info: dict[str, Any] | None = None) -> str:
    """`abc1234`, `abc1234+dirty`, or `unknown commit`."""
    info = info or build_info()
    commit = info.get("commit")
    if not commit:
        return "unknown commit"
    return commit[:10] + ("+dirty" if info.get("dirty") else "")
