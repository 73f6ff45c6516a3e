"""The Session: every use case headless, as the window and the CLI use them."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.jobs import CancelToken, Progress
from workbench.core.measure.benchmark import BenchConfig
from workbench.core.passes.base import fingerprint
from workbench.core.session.session import Session
from workbench.core.train.training import TrainConfig


@pytest.fixture
def session() -> Session:
    s = Session()
    s.run(s.open("zoo:mlp", input_shape=(1, 1, 8, 8)))
    return s


def test_open_adds_and_selects_a_variant(session: Session, onnx_mlp: Path) -> None:
    assert len(session.workspace) == 1
    assert session.workspace.selected is not None
    entry = session.run(session.open(str(onnx_mlp)))
    assert session.workspace.selected is entry
    assert entry.analysis.graph.format == "onnx"
    assert session.settings.recent_files[0] == str(onnx_mlp.resolve())


def test_apply_makes_a_child_and_leaves_the_parent(session: Session) -> None:
    parent = session.workspace.selected
    assert parent is not None
    stamp = fingerprint(parent.analysis.variant)
    steps: list[Progress] = []
    result = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}), steps.append)
    assert fingerprint(parent.analysis.variant) == stamp
    child = session.workspace.get(result.variant.id)
    assert child.analysis.variant.parent == parent.id
    assert child.results["report"].after["sparsity"] > 0.4
    assert steps[-1].fraction == 1.0


def test_bad_requests_fail_before_any_work() -> None:
    empty = Session()
    with pytest.raises(InvalidParameterError, match="Open a model first"):
        empty.apply("prune.magnitude")
    empty.run(empty.open("zoo:mlp"))
    with pytest.raises(WorkbenchError, match="Unknown pass"):
        empty.apply("prune.nothing")
    with pytest.raises(InvalidParameterError, match="sparsity"):
        empty.apply("prune.magnitude", {"sparsity": 2.0})
    with pytest.raises(InvalidParameterError):
        empty.apply("prune.magnitude", variant_id="ghost")
    assert len(empty.workspace) == 1


def test_undo_redo_delete_and_rename(session: Session) -> None:
    root = session.workspace.selected
    assert root is not None
    child = session.run(session.apply("prune.magnitude", {"sparsity": 0.3}))
    session.rename("pruned", child.variant.id)
    assert session.workspace.get(child.variant.id).name == "pruned"
    session.delete(root.id)  # takes the child with it
    assert len(session.workspace) == 0
    assert session.undo()
    assert {e.name for e in session.workspace.entries()} == {root.name, "pruned"}
    assert session.undo()  # the rename
    assert session.workspace.get(child.variant.id).name != "pruned"
    assert session.redo()
    assert session.workspace.get(child.variant.id).name == "pruned"
    while session.undo():
        pass
    assert len(session.workspace) == 0
    assert not session.history.can_undo


def test_train_evaluate_benchmark_and_export(session: Session, tmp_path: Path) -> None:
    trained = session.run(session.train("digits", TrainConfig(epochs=2, lr=3e-3)))
    assert trained.results["accuracy"] > 0.5
    assert len(trained.results["history"]) == 2
    result = session.run(session.evaluate("digits"))
    assert trained.results["accuracy"] == pytest.approx(result.accuracy)
    bench = session.run(session.benchmark(BenchConfig(runtime="torch", iters=5, warmup=1)))
    assert trained.results["latency_ms"] == bench.record().p50_ms
    written = session.run(session.export(str(tmp_path / "trained.onnx")))
    assert onnx.load(written["output"]).graph.node
    assert session.recipe().steps[-1].to_dict()["train"]["dataset"] == "digits"


def test_export_refuses_a_bad_target_before_working(session: Session) -> None:
    with pytest.raises(WorkbenchError, match="device"):
        session.export("/dev/null", fmt="onnx")
    with pytest.raises(WorkbenchError):
        session.export("model.unknown")


def test_a_cancelled_open_adds_nothing() -> None:
    s = Session()
    token = CancelToken()
    token.cancel()
    with pytest.raises(WorkbenchError, match="Cancelled"):
        s.run(s.open("zoo:mlp"), cancel=token)
    assert len(s.workspace) == 0


def test_save_as_project_then_reopen_in_a_new_session(session: Session, tmp_path: Path) -> None:
    child = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    session.save_as_project(str(tmp_path / "proj"))
    session.rename("half", child.variant.id)  # autosaved
    again = Session()
    again.open_project(str(tmp_path / "proj"))
    names = {e.id: e.name for e in again.workspace.entries()}
    assert names[child.variant.id] == "half"
    assert again.workspace.get(child.variant.id).analysis.variant.parent is not None
    again.clear()
    assert len(again.workspace) == 0
    assert again.project is None


def test_a_recipe_with_training_replays_bit_for_bit(session: Session) -> None:
    """A recipe saved after training replays (not "Unknown pass 'train'"), and the same
    seed gives the same weights on the CPU, bit for bit."""
    import torch

    from workbench.core.session.recipe import Recipe
    from workbench.core.session.recipe_steps import TrainStep

    trained = session.run(session.train("digits", TrainConfig(epochs=2, lr=3e-3, seed=5)))
    recipe = Recipe.from_json(session.recipe().to_json())
    step = recipe.steps[-1]
    assert isinstance(step, TrainStep)
    assert step.config.seed == 5
    replayed = recipe.replay()
    original = trained.analysis.variant.model.state_dict()
    again = replayed.variant.model.state_dict()
    assert original.keys() == again.keys()
    for key, value in original.items():
        assert torch.equal(value, again[key]), key
