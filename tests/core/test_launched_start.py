"""The launched workers rebuild a trained model as modules, not as an eval-mode graph: its
lineage replayed without training, then its own weights (`launched.student_recipe`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.session.launched import student_recipe
from workbench.core.session.recipe import Recipe
from workbench.core.session.recipe_replay import run_recipe
from workbench.core.session.session import Session
from workbench.core.train.training import TrainConfig


@pytest.fixture(scope="module")
def trained_then_pruned() -> object:
    session = Session(remember_recent=False)
    opened = session.run(session.open("zoo:resnet-mini"))
    trained = session.run(session.train("digits", TrainConfig(epochs=1, seed=0), opened.id))
    pruned = session.run(session.apply("prune.magnitude", {"sparsity": 0.3}, trained.id))
    return pruned.variant


def test_a_trained_lineage_is_rebuilt_as_modules_with_its_own_weights(
        trained_then_pruned: object, tmp_path: Path) -> None:
    variant = trained_then_pruned
    body, weights = student_recipe(variant, tmp_path)
    assert weights is not None
    assert weights.exists()
    assert not list(tmp_path.glob("*.pt2"))
    kinds = [next(iter(s)) for s in body["steps"]]
    assert kinds == ["pass"]
    assert "train" not in str(body["steps"])

    run = run_recipe(Session(remember_recent=False), Recipe.from_json(body),
                     start_weights=weights)
    rebuilt = run.variant.model
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in rebuilt.modules())
    expected = variant.model.state_dict()
    got = rebuilt.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    x = torch.randn(4, *variant.inputs[0].shape[1:])
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(x), variant.model(x))
    rebuilt.train()  # a graph module refuses this; modules train with live BatchNorm
    bn = next(m for m in rebuilt.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    rebuilt(x)
    assert not torch.equal(bn.running_mean, before)


def test_weights_that_do_not_fit_are_refused_in_one_sentence(
        trained_then_pruned: object, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    body, _ = student_recipe(trained_then_pruned, tmp_path)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"nothing.here": torch.zeros(3)}, str(wrong))
    with pytest.raises(WorkbenchError, match="do not fit the model its recipe rebuilds"):
        run_recipe(Session(remember_recent=False), Recipe.from_json(body),
                   start_weights=wrong)


def test_an_untrained_lineage_replays_as_it_is(tmp_path: Path) -> None:
    session = Session(remember_recent=False)
    opened = session.run(session.open("zoo:mlp"))
    pruned = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}, opened.id))
    body, weights = student_recipe(pruned.variant, tmp_path)
    assert weights is None
    assert len(body["steps"]) == 1
