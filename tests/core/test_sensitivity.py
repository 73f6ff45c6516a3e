"""Per-layer sensitivity on an MLP trained on digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.errors import CancelledError, InvalidParameterError
from workbench.core.events import SensitivityRowDone
from workbench.core.jobs import CancelToken, Progress, run_job
from workbench.core.measure.sensitivity import (
    LayerSensitivity,
    fake_int8,
    most_sensitive,
    prune_weight,
    sensitivity,
)
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import apply_pass, fingerprint
from workbench.core.passes.prune_unstructured import select_layers
from workbench.core.passes.registry import discover
from workbench.core.train.data import load_dataset
from workbench.core.train.training import TrainConfig, evaluate, train

SMALL = (1, 1, 8, 8)
LAYERS = ["1", "3", "5"]  # zoo:mlp's Linear modules; "5" is the classifier


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits", SMALL)


@pytest.fixture(scope="module")
def trained(digits: Any) -> Any:
    result = run_job(train(build_zoo("mlp"), digits, TrainConfig(epochs=3, lr=3e-3)))
    assert result.test is not None
    assert result.test.accuracy > 0.8
    return result.variant


def test_pruning_each_layer_ranks_layers(trained: Any, digits: Any) -> None:
    stamp = fingerprint(trained)
    steps: list[Progress] = []
    rows = run_job(sensitivity(trained, digits, "prune", 0.9), steps.append)
    assert fingerprint(trained) == stamp  # the input variant is untouched
    assert sorted(r.layer for r in rows) == LAYERS
    assert [r.layer for r in rows] == [r.layer for r in sorted(rows, key=lambda r: -r.drop)]
    baseline = evaluate(trained, digits, "val").accuracy
    for r in rows:
        assert r.metric == "accuracy"
        assert r.baseline == pytest.approx(baseline)
        assert r.drop == pytest.approx(r.baseline - r.score)
        assert r.drop >= -0.02
    assert rows[0].layer in ("1", "5")  # the first layer or the classifier suffers most
    assert rows[0].drop > 0.02
    assert {r.layer: r.params for r in rows} == {"1": 64 * 128 + 128, "3": 128 * 64 + 64,
                                                  "5": 64 * 10 + 10}
    per_layer = [s.payload.row for s in steps if isinstance(s.payload, SensitivityRowDone)]
    assert [p.layer for p in per_layer] == LAYERS
    assert set(per_layer) == set(rows)


def test_score_equals_prune_magnitude_on_that_layer_alone(trained: Any, digits: Any) -> None:
    rows = {r.layer: r for r in run_job(sensitivity(trained, digits, "prune", 0.9))}
    pruned = apply_pass(discover().get("prune.magnitude"), trained,
                        {"sparsity": 0.9, "ignore": ["1", "5"]}).variant
    assert evaluate(pruned, digits, "val").accuracy == pytest.approx(rows["3"].score)


def test_int8_barely_hurts(trained: Any, digits: Any) -> None:
    rows = run_job(sensitivity(trained, digits, "int8"))
    assert len(rows) == 3
    assert all(abs(r.drop) <= 0.01 for r in rows)


def test_fidelity_without_a_dataset(trained: Any) -> None:
    rows = run_job(sensitivity(trained, None, "prune", 0.9))
    assert {r.metric for r in rows} == {"fidelity"}
    assert all(r.baseline == pytest.approx(1.0) for r in rows)
    assert all(0 < r.drop <= 2 and r.drop == pytest.approx(1 - r.score) for r in rows)
    assert [r.drop for r in rows] == sorted((r.drop for r in rows), reverse=True)
    light = run_job(sensitivity(trained, None, "prune", 0.1, metric="fidelity"))
    heavy = {r.layer: r.drop for r in rows}
    assert all(r.drop < heavy[r.layer] for r in light)  # pruning more hurts more


def test_a_dataset_that_does_not_fit_falls_back_to_fidelity(trained: Any) -> None:
    other = load_dataset("synthetic", (1, 5))
    rows = run_job(sensitivity(trained, other, "int8"))
    assert {r.metric for r in rows} == {"fidelity"}
    with pytest.raises(InvalidParameterError, match="does not fit"):
        run_job(sensitivity(trained, other, metric="accuracy"))


def test_helpers() -> None:
    w = torch.arange(1.0, 11.0).reshape(2, 5) * torch.tensor([1.0, -1.0])[:, None]
    pruned = prune_weight(w, 0.3)
    assert int((pruned == 0).sum()) == 3
    assert torch.equal(pruned[pruned != 0].abs().sort().values, torch.arange(4.0, 11.0))
    q = fake_int8(w)
    assert q.shape == w.shape
    assert (q - w).abs().max() <= w.abs().amax(1).max() / 254 + 1e-6
    assert torch.equal(fake_int8(torch.zeros(3, 2)), torch.zeros(3, 2))
    rows = [LayerSensitivity("a", 1, 1.0, 0.9, 0.1), LayerSensitivity("b", 1, 1.0, 0.5, 0.5),
            LayerSensitivity("c", 1, 1.0, 1.0, 0.0), LayerSensitivity("d", 1, 1.0, 1.1, -0.1)]
    assert most_sensitive(rows, 1) == ["b"]
    assert most_sensitive(rows, 10) == ["b", "a"]  # no drop, no protection
    assert most_sensitive(rows, 0) == []


def test_names_are_what_ignore_takes() -> None:
    variant = build_zoo("resnet-mini")
    rows = run_job(sensitivity(variant, None, "int8", samples=4))
    assert sorted(r.layer for r in rows) == sorted(
        name for name, _ in select_layers(variant.model, ["conv", "linear"], []))
    names = most_sensitive(rows, 3)
    apply_pass(discover().get("prune.magnitude"), variant, {"ignore": names})  # accepted


def test_cancel_and_bad_input(trained: Any, digits: Any, onnx_mlp: Path) -> None:
    token = CancelToken()
    job = sensitivity(trained, digits, cancel=token)
    next(job)
    token.cancel()
    with pytest.raises(CancelledError):
        run_job(job)
    with pytest.raises(InvalidParameterError, match="torch"):
        run_job(sensitivity(load_model(str(onnx_mlp)), None))
    for bad in ({"method": "svd"}, {"ratio": 0.0}, {"ratio": 1.5}, {"metric": "f1"},
                {"samples": 0}):
        with pytest.raises(InvalidParameterError):
            run_job(sensitivity(trained, digits, **bad))
    with pytest.raises(InvalidParameterError, match="dataset"):
        run_job(sensitivity(trained, None, metric="accuracy"))
