"""The core never imports Qt: every module imports with PySide6, pyqtgraph and superqt blocked."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import workbench.core

CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(workbench.core.__path__,
                                                            "workbench.core."))


def test_core_modules_exist() -> None:
    assert "workbench.core.model.loaders" in CORE_MODULES
    assert len(CORE_MODULES) >= 10


def test_every_core_module_imports_without_qt() -> None:
    code = (
        "import sys\n"
        "for name in ('PySide6', 'pyqtgraph', 'superqt', 'shiboken6'):\n"
        "    sys.modules[name] = None\n"
        "import importlib\n"
        f"for m in {CORE_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "import workbench.cli\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'superqt'))\n"
        "       and sys.modules[m] is not None]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_headless_inspect_runs_with_qt_blocked() -> None:
    code = (
        "import sys\n"
        "for name in ('PySide6', 'pyqtgraph', 'superqt'):\n"
        "    sys.modules[name] = None\n"
        "from workbench.cli import main\n"
        "raise SystemExit(main(['inspect', 'zoo:mlp', '--json']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert '"format": "torch"' in out.stdout
