"""Recipes: typed steps round-trip through YAML and JSON, replay through the Session bit for
bit, and a bad file is refused with its field and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.measure.benchmark import BenchConfig
from workbench.core.session.recipe import Recipe
from workbench.core.session.recipe_replay import StepStarted, replay_task, run_recipe
from workbench.core.session.recipe_steps import (
    BenchmarkStep,
    DistillStep,
    EvaluateStep,
    ExportStep,
    PassStep,
    TrainStep,
    step_kind,
)
from workbench.core.session.session import Session
from workbench.core.train.training import TrainConfig

EXAMPLE = Path(__file__).parents[2] / "examples" / "resnet-mini-digits.yaml"
ONE_EPOCH = TrainConfig(epochs=1, lr=3e-3, batch_size=128, seed=3)


def _teacher() -> Recipe:
    return Recipe("zoo:mlp", (TrainStep("digits", TrainConfig(epochs=1, lr=3e-3, seed=1)),))


def _every_kind(out: Path) -> Recipe:
    return Recipe("zoo:mlp", (
        PassStep("prune.magnitude", {"sparsity": 0.25, "scope": "global"}),
        TrainStep("digits", ONE_EPOCH),
        DistillStep("digits", _teacher(), ONE_EPOCH, temperature=2.0, alpha=0.5,
                    transfer=True),
        EvaluateStep("digits", seed=0),
        BenchmarkStep(BenchConfig(runtime="torch", batch_sizes=[1, 2], warmup=1, iters=3)),
        ExportStep(str(out), "onnx", 17),
    ), {"input_shape": [1, 1, 8, 8]})


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_every_kind_of_step_round_trips(tmp_path: Path, suffix: str) -> None:
    recipe = _every_kind(tmp_path / "m.onnx")
    assert {step_kind(s) for s in recipe.steps} == {
        "pass", "train", "distill", "evaluate", "benchmark", "export"}
    path = tmp_path / f"r{suffix}"
    recipe.save(path)
    text = path.read_text()
    assert text.lstrip().startswith("{") == (suffix == ".json")
    for local in ("device", "checkpoint_dir", "resume", "trust"):
        assert local not in text
    again = Recipe.load_file(path)
    assert again == recipe
    for step, other in zip(recipe.steps, again.steps, strict=True):  # each kind, one by one
        assert type(step) is type(other)
        assert step == other


def test_replay_runs_every_kind_and_the_lineage_replays_bit_for_bit(tmp_path: Path) -> None:
    """One replay covers every step kind on zoo:mlp; the final variant's own recipe (its
    distillation names its teacher) replays again to identical weights."""
    session = Session(remember_recent=False)
    events: list[Any] = []
    run = run_recipe(session, _every_kind(tmp_path / "m.onnx"), events.append)
    started = [p.payload for p in events if isinstance(p.payload, StepStarted)]
    assert [(s.kind, s.depth) for s in started if s.depth == 0] == [
        ("pass", 0), ("train", 0), ("distill", 0), ("evaluate", 0), ("benchmark", 0),
        ("export", 0)]
    assert [s.kind for s in started if s.depth == 1] == ["train"]  # the teacher's own step
    assert [s["kind"] for s in run.steps] == [
        "pass", "train", "distill", "evaluate", "benchmark", "export"]
    assert run.steps[0]["report"]["after"]["sparsity"] > 0.2
    assert run.steps[3]["accuracy"] > 0.1
    assert run.steps[4]["benchmark"]["records"]
    assert (tmp_path / "m.onnx").stat().st_size > 0
    # root, pass, train, teacher root, teacher trained, distilled student
    assert len(run.variant_ids) == len(session.workspace) == 6
    final = run.variant
    assert final is not None
    assert final.id == run.steps[-1]["variant_id"]

    lineage = session.recipe(final.id)
    assert [step_kind(s) for s in lineage.steps] == ["pass", "train", "distill"]
    assert lineage.steps[2].teacher == _teacher()
    path = tmp_path / "lineage.yaml"
    lineage.save(path)
    assert Recipe.load_file(path) == lineage
    again = run_recipe(Session(remember_recent=False), Recipe.load_file(path))
    assert again.variant is not None
    _assert_same_weights(final.model, again.variant.model)


def test_same_seed_same_weights_bit_for_bit() -> None:
    recipe = Recipe("zoo:mlp", (TrainStep("digits", TrainConfig(epochs=2, seed=7)),
                                PassStep("prune.magnitude", {"sparsity": 0.5}),
                                TrainStep("digits", ONE_EPOCH)))
    first = run_recipe(Session(remember_recent=False), recipe).variant
    second = run_recipe(Session(remember_recent=False), recipe).variant
    assert first is not None
    assert second is not None
    assert first.id != second.id
    _assert_same_weights(first.model, second.model)
    other = Recipe("zoo:mlp", (TrainStep("digits", TrainConfig(epochs=2, seed=8)),))
    third = run_recipe(Session(remember_recent=False), other).variant
    assert third is not None
    sa, sc = first.model.state_dict(), third.model.state_dict()
    assert not all(torch.equal(v, sc[k]) for k, v in sa.items())  # the seed matters


def _assert_same_weights(a: Any, b: Any) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        assert torch.equal(value, sb[key]), key


YAML_BAD = """\
workbench_recipe: 1
source: zoo:resnet-mini
steps:
  - train: {dataset: digits, epochs: 1}
  - pass: prune.structured
    params:
      importance: l1
      ratio: 1.5
"""


def test_a_yaml_error_names_the_field_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(YAML_BAD)
    with pytest.raises(InvalidParameterError) as info:
        Recipe.load_file(path)
    assert str(info.value) == ("recipe.yaml:8: steps[1].params.ratio: 1.5 is greater than "
                               "the maximum of 0.9")


def test_a_json_error_names_the_field_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"workbench_recipe": 1, "source": "zoo:mlp", "steps": [
        {"evaluate": {"dataset": "digits"}},
        {"train": {"dataset": "digits", "epochs": "three"}}]}, indent=2))
    with pytest.raises(InvalidParameterError,
                       match=r"^recipe\.json:13: steps\[1\]\.train\.epochs: 'three' is not of "
                             r"type 'integer'$"):
        Recipe.load_file(path)


@pytest.mark.parametrize(("text", "message"), [
    ("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n  - {train: {dataset: digits}, "
     "evaluate: {dataset: digits}}\n", r"r\.yaml:4: steps\[0\]: a step has exactly one of"),
    ("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n  - frobnicate: {}\n",
     r"r\.yaml:4: steps\[0\]\.frobnicate: unknown field 'frobnicate'"),
    ("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n  - export: {}\n",
     r"r\.yaml:4: steps\[0\]\.export: 'path' is a required property"),
    ("workbench_recipe: 2\nsource: zoo:mlp\n", r"not a Workbench recipe"),
    ("a: &x [1, 2]\nb: *x\nworkbench_recipe: 1\nsource: zoo:mlp\n", r"aliases"),
    ("workbench_recipe: 1\nsource: [zoo:mlp\n", r"r\.yaml is not a YAML recipe"),
])
def test_bad_yaml_files_are_refused_with_a_sentence(tmp_path: Path, text: str,
                                                    message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(InvalidParameterError, match=message):
        Recipe.load_file(path)


def test_machine_local_fields_are_never_written_and_refused_when_read(tmp_path: Path) -> None:
    session = Session(remember_recent=False)
    session.run(session.open("zoo:mlp"))
    trained = session.run(session.train("digits", TrainConfig(epochs=1, resume=True)))
    assert trained.analysis.variant.recipe[-1]["params"]["checkpoint_dir"]  # the lineage
    saved = tmp_path / "r.json"
    session.recipe().save(saved)
    text = saved.read_text()
    assert "checkpoint_dir" not in text
    assert "resume" not in text
    assert "device" not in text
    for field, line in (("device", "cuda"), ("checkpoint_dir", "/tmp/x"), ("resume", "true")):
        bad = tmp_path / "bad.yaml"
        bad.write_text("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n  - train:\n"
                       f"      dataset: digits\n      {field}: {line}\n")
        with pytest.raises(InvalidParameterError,
                           match=rf"bad\.yaml:6: steps\[0\]\.train\.{field}: {field} is "
                                 "machine-local"):
            Recipe.load_file(bad)


def test_old_format_recipes_still_load(tmp_path: Path) -> None:
    """`{"pass": "train", ...}` as the lineage recorded it before typed steps; its
    machine-local fields (and `trust` in load) are ignored."""
    old = {"workbench_recipe": 1, "source": "zoo:mlp", "load": {"trust": True},
           "steps": [{"pass": "prune.magnitude", "params": {"sparsity": 0.5}},
                     {"pass": "train", "params": {
                         "epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003,
                         "device": "cuda", "checkpoint_dir": "/elsewhere", "resume": True,
                         "seed": 5, "dataset": "digits", "alpha": 0.0,
                         "temperature": 4.0}}]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    recipe = Recipe.load_file(path)
    assert "trust" not in recipe.load
    assert recipe.steps[0] == PassStep("prune.magnitude", {"sparsity": 0.5})
    train = recipe.steps[1]
    assert isinstance(train, TrainStep)
    assert train.dataset == "digits"
    assert (train.config.epochs, train.config.seed, train.config.lr) == (2, 5, 0.003)
    assert (train.config.device, train.config.checkpoint_dir, train.config.resume) == (
        "cpu", None, False)
    old["steps"][1]["params"]["alpha"] = 0.7  # a distillation recorded without its teacher
    path.write_text(json.dumps(old))
    with pytest.raises(InvalidParameterError, match="teacher"):
        Recipe.load_file(path)


def test_pass_parameters_are_checked_before_any_work(tmp_path: Path) -> None:
    session = Session(remember_recent=False)
    for steps, message in (
            ((PassStep("no.such.pass"),), "Unknown pass"),
            ((TrainStep("digits", ONE_EPOCH), PassStep("prune.magnitude", {"bogus": 1})),
             "no parameter 'bogus'"),
            ((TrainStep("digits", ONE_EPOCH), ExportStep(str(tmp_path / "m.unknown"))),
             "format")):
        with pytest.raises(WorkbenchError, match=message):
            replay_task(session, Recipe("zoo:mlp", steps))
    assert len(session.workspace) == 0


def test_the_example_recipe_is_valid() -> None:
    recipe = Recipe.load_file(EXAMPLE)
    recipe.check()
    kinds = [step_kind(s) for s in recipe.steps]
    assert kinds[-1] == "export"
    assert "train" in kinds
    assert "evaluate" in kinds
    passes = [s.pass_ for s in recipe.steps if isinstance(s, PassStep)]
    assert passes == ["prune.structured", "quantize.ort_static"]
    assert recipe.steps[2] == PassStep("prune.structured", {"ratio": 0.5, "importance": "l1"})


def test_cli_run_prints_progress_the_table_and_strict_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "r.yaml"
    Recipe("zoo:mlp", (TrainStep("digits", ONE_EPOCH), EvaluateStep("digits"),
                       ExportStep("out.onnx"))).save(path)
    assert main(["run", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "[1/3] train on digits, 1 epochs" in err
    assert "epoch 1" in err
    assert "| Variant |" in out
    assert "zoo:mlp·trained" in out
    assert (tmp_path / "out.onnx").exists()
    assert main(["run", str(path), "--json", "-o", str(tmp_path / "final.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["kind"] for s in report["steps"]] == ["train", "evaluate", "export"]
    assert len(report["comparison"]) == len(report["variants"]) == 2
    assert report["output"] == str(tmp_path / "final.onnx")
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML_BAD)
    assert main(["run", str(bad)]) != 0
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "bad.yaml:8: steps[1].params.ratio" in err


@pytest.mark.perf
def test_the_example_recipe_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The whole example (about 1.5 min of CPU on 2 cores): accuracy stays above 90%."""
    from workbench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    final = report["comparison"][-1]
    assert final["accuracy"] > 0.9
    assert (tmp_path / "resnet-mini-digits-int8.onnx").exists()
