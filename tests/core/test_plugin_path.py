"""A plugin in a plugin folder (as a bundled app installs them) is discovered and runs."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core.passes.plugin_path import ENV, add_plugin_dirs, plugin_dirs, user_plugin_dir
from workbench.core.passes.registry import discover

DEMO = Path(__file__).resolve().parents[2] / "packaging" / "demo-plugin"


def install_demo(folder: Path) -> None:
    """What `pip install --target FOLDER packaging/demo-plugin` lays out: the package and its
    dist-info with the entry point."""
    shutil.copytree(DEMO / "src" / "workbench_round_weights", folder / "workbench_round_weights")
    info = folder / "workbench_round_weights-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: workbench-round-weights\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[workbench.passes]\ndemo_round_weights = workbench_round_weights:RoundWeights\n")


@pytest.fixture
def clean_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Leave sys.path, the environment and the registry as they were."""
    before = list(sys.path)
    yield
    monkeypatch.delenv(ENV, raising=False)
    sys.path[:] = before
    sys.modules.pop("workbench_round_weights", None)
    discover(refresh=True)


@pytest.mark.usefixtures("clean_path")
def test_plugin_folder_is_discovered_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert "demo.round_weights" not in discover(refresh=True).passes
    folder = tmp_path / "plugins"
    install_demo(folder)
    monkeypatch.setenv(ENV, str(folder))
    registry = discover(refresh=True)
    info = next(p for p in registry.plugins if p.entry_point == "demo_round_weights")
    assert info.ok
    assert info.origin == "workbench-round-weights 0.1.0"
    assert sys.path[-1] == str(folder)  # appended: never shadows the app's own modules
    out = tmp_path / "rounded.onnx"
    assert main(["apply", "zoo:mlp", "demo.round_weights", "--param", "decimals=1",
                 "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["details"]["weights_changed"] > 0
    assert out.stat().st_size > 0


@pytest.mark.usefixtures("clean_path")
def test_plugin_folders_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv(ENV, f"{a}{':' if sys.platform != 'win32' else ';'}{b}")
    assert plugin_dirs() == []  # none exists yet
    assert plugin_dirs(existing_only=False) == [a, b, user_plugin_dir()]
    b.mkdir()
    user_plugin_dir().mkdir(parents=True)
    assert add_plugin_dirs() == [b, user_plugin_dir()]
    assert add_plugin_dirs() == []  # once each
