"""The plugin API: one module, a version, and no shadowing of pass names."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench.api as api
from workbench.core.passes.registry import PluginInfo, refuse_duplicates

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_the_api_carries_a_version_and_everything_a_pass_needs() -> None:
    assert api.API_VERSION.split(".")[0] == "1"
    for name in api.__all__:
        assert hasattr(api, name), name
    assert issubclass(api.PassError, api.WorkbenchError)


def test_first_party_plugins_import_only_the_public_api() -> None:
    sources = list(PLUGINS.rglob("*.py"))
    assert sources
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                assert node.module == "workbench.api", f"{path.name}: {node.module}"


def test_a_duplicate_pass_name_is_refused_and_listed() -> None:
    class First(api.Pass):
        name = "x.same"

    class Second(api.Pass):
        name = "x.same"

    infos = refuse_duplicates([PluginInfo("a", "workbench 0.1", First),
                               PluginInfo("b", "thirdparty 1.0", Second)])
    assert infos[0].ok
    assert not infos[1].ok
    assert "already taken by a" in (infos[1].error or "")
