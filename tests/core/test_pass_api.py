"""The pass API, plugin discovery, undoable commands, recipes and export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.graph.analysis import open_model
from workbench.core.jobs import run_job
from workbench.core.model.export import export_variant
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes import Pass, PassContext, PassError, PassOutput, apply_pass, param
from workbench.core.passes.base import fingerprint, parse_params
from workbench.core.passes.registry import discover, load_entry_point
from workbench.core.session.commands import AddVariant, DeleteVariant, RenameVariant
from workbench.core.session.recipe import Recipe
from workbench.core.session.workspace import Workspace


class ScaleWeights(Pass):
    """A test pass: multiplies every weight by a factor."""

    name = "test.scale"
    title = "Scale"
    category = "convert"

    @dataclass
    class Params:
        factor: float = param(0.5, min=0.0, max=10.0, help="multiplier")
        mode: str = param("all", choices=("all", "linear"))
        layers: list[str] = param([], widget="nodes")
        inplace_bug: bool = param(False)

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        model = variant.model if params.inplace_bug else self.clone_model(variant)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(params.factor)
        return PassOutput(model, details={"factor": params.factor})


def test_param_specs_drive_forms_and_cli() -> None:
    specs = {s.name: s for s in ScaleWeights.param_specs()}
    assert specs["factor"].type == "float"
    assert (specs["factor"].min, specs["factor"].max) == (0.0, 10.0)
    assert specs["mode"].choices == ("all", "linear")
    assert specs["layers"].type == "list"
    assert specs["layers"].widget == "nodes"
    assert specs["inplace_bug"].type == "bool"
    p = parse_params(ScaleWeights, {"factor": "2", "layers": "a, b", "inplace_bug": "no"})
    assert (p.factor, p.layers, p.inplace_bug) == (2.0, ["a", "b"], False)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"factor": 11}, "at most 10"),
        ({"factor": -1}, "at least 0"),
        ({"factor": "abc"}, "must be a float"),
        ({"mode": "some"}, "must be one of all, linear"),
        ({"inplace_bug": "maybe"}, "must be a bool"),
        ({"nope": 1}, "has no parameter 'nope'"),
    ],
)
def test_bad_params_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        parse_params(ScaleWeights, values)


def test_apply_makes_a_child_and_leaves_the_input_untouched() -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    result = apply_pass(ScaleWeights(), v, {"factor": 2.0})
    assert fingerprint(v) == stamp
    assert result.variant.parent == v.id
    assert result.variant.recipe[-1] == {"pass": "test.scale", "params": {
        "factor": 2.0, "mode": "all", "layers": [], "inplace_bug": False}}
    assert result.report.before["parameters"] == result.report.after["parameters"]
    w0 = next(v.model.parameters())
    w1 = next(result.variant.model.parameters())
    assert torch.allclose(w1, w0 * 2)
    assert result.report.to_json()["details"] == {"factor": 2.0}


def test_a_pass_that_mutates_its_input_is_caught() -> None:
    v = build_zoo("mlp")
    with pytest.raises(PassError, match="changed its input"):
        apply_pass(ScaleWeights(), v, {"inplace_bug": True})


def test_wrong_backend(onnx_mlp: Path) -> None:
    with pytest.raises(PassError, match="works on torch models"):
        apply_pass(ScaleWeights(), load_model(str(onnx_mlp)), {})


def test_builtin_and_plugin_passes_are_discovered() -> None:
    registry = discover(refresh=True)
    origins = {p.entry_point: p.origin for p in registry.plugins}
    assert origins["convert_fold_bn"].startswith("workbench-fold-bn ")
    assert all(origin.startswith("workbench ") for name, origin in origins.items()
               if name != "convert_fold_bn")
    assert "convert.fold_bn" in registry.passes
    with pytest.raises(WorkbenchError, match="Unknown pass 'nope'"):
        registry.get("nope")


def test_a_broken_plugin_is_listed_as_failed() -> None:
    bad = EntryPoint(name="broken", value="no_such_module_xyz:Pass", group="workbench.passes")
    info = load_entry_point(bad)
    assert not info.ok
    assert "ModuleNotFoundError" in (info.error or "")
    notpass = EntryPoint(name="notpass", value="json:dumps", group="workbench.passes")
    assert "not a workbench Pass" in (load_entry_point(notpass).error or "")


def test_first_party_plugin_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from workbench.cli import main

    out = tmp_path / "folded.pt2"
    assert main(["apply", "zoo:resnet-mini", "convert.fold_bn", "-o", str(out), "--json",
                 "--recipe", str(tmp_path / "r.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pass"] == "convert.fold_bn"
    assert report["details"]["batchnorm_folded"] == 15
    assert report["after"]["parameters"] < report["before"]["parameters"]
    assert set(report["before"]) >= {"parameters", "size_bytes", "macs", "sparsity"}
    assert report["output"] == str(out)
    folded = load_model(str(out))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.modules())
    # the recipe replays headless to the same weights
    assert main(["run", str(tmp_path / "r.json"), "-o", str(tmp_path / "again.safetensors"),
                 "--json"]) == 0
    assert [s["kind"] for s in json.loads(capsys.readouterr().out)["steps"]] == ["pass"]


def test_cli_apply_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["apply", "zoo:mlp", "convert.fold_bn", "-o", str(tmp_path / "x.pt2")]) == 2
    assert "no BatchNorm" in capsys.readouterr().err
    assert main(["apply", "zoo:mlp", "nope.pass", "-o", str(tmp_path / "x.pt2")]) == 2
    assert "Unknown pass" in capsys.readouterr().err
    assert main(["apply", "zoo:mlp", "convert.fold_bn", "-o", str(tmp_path / "x.bad")]) == 2
    assert "export format" in capsys.readouterr().err
    assert main(["apply", "zoo:resnet-mini", "convert.fold_bn", "--param", "bad",
                 "-o", str(tmp_path / "x.pt2")]) == 2
    assert "key=value" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_recipe_never_carries_trust(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"workbench_recipe": 1, "source": "zoo:mlp",
                                "load": {"trust": True}, "steps": []}))
    assert "trust" not in Recipe.load_file(path).load
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InvalidParameterError, match="not a Workbench recipe"):
        Recipe.load_file(bad)


@pytest.mark.parametrize("suffix", [".pt2", ".ts", ".safetensors"])
def test_export_round_trip(tmp_path: Path, suffix: str) -> None:
    import warnings

    v = build_zoo("lenet5")
    out = tmp_path / f"m{suffix}"
    written = export_variant(v, out)
    assert written["bytes"] == out.stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        again = load_model(str(out), arch="lenet5" if suffix == ".safetensors" else None,
                           input_shape=(1, 1, 28, 28) if suffix == ".ts" else None)
    x = v.example_inputs()
    with torch.no_grad():
        torch.testing.assert_close(again.model(*x), v.model(*x))
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left


def test_undoable_commands() -> None:
    ws = Workspace()
    base = run_job(open_model("zoo:mlp"))
    AddVariant(ws, base).redo()
    child = apply_pass(ScaleWeights(), base, {"factor": 3.0})
    add = AddVariant(ws, child.analysis, {"report": child.report})
    add.redo()
    assert ws.selected.id == child.variant.id
    rename = RenameVariant(ws, child.variant.id, "scaled")
    rename.redo()
    assert ws.get(child.variant.id).name == "scaled"
    delete = DeleteVariant(ws, base.variant.id)
    delete.redo()
    assert len(ws) == 0  # the child went with its parent
    delete.undo()
    assert [e.name for e in ws.entries()] == [base.variant.name, "scaled"]
    assert ws.get(child.variant.id).results["report"] is child.report
    rename.undo()
    assert ws.get(child.variant.id).name == child.variant.name
    add.undo()
    assert child.variant.id not in ws
