"""The fast export order: TorchScript when its graph checks out against torch, else dynamo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from workbench.core.model import onnx_export, onnx_export_fast
from workbench.core.model.onnx_export import exporter_of
from workbench.core.model.onnx_export_fast import check_export
from workbench.core.model.runtime import ort_session, run_session
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Which real exporters ran ("torchscript", "dynamo"); the memory cache starts empty."""
    made: list[str] = []
    real_ts, real_dynamo = onnx_export._export_torchscript, onnx_export._export_dynamo

    def ts(*args: Any) -> Any:
        made.append("torchscript")
        return real_ts(*args)

    def dynamo(*args: Any) -> Any:
        made.append("dynamo")
        return real_dynamo(*args)

    monkeypatch.setattr(onnx_export, "_export_torchscript", ts)
    monkeypatch.setattr(onnx_export, "_export_dynamo", dynamo)
    # the fast module bound the TorchScript exporter at import: patch it there too
    monkeypatch.setattr("workbench.core.model.onnx_export_fast._export_torchscript", ts)
    onnx_export.clear_export_cache()
    yield made
    onnx_export.clear_export_cache()


class PerRow(nn.Module):
    """Loops over the batch in Python: a trace unrolls the loop for the traced batch of 2."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.fc(x[i]) for i in range(x.shape[0])])


def test_the_fast_order_takes_a_checked_torchscript_export(calls: list[str]) -> None:
    v = build_zoo("resnet-mini")
    made = onnx_export.export_onnx(v, fast=True)
    assert calls == ["torchscript"]
    assert made.exporter == exporter_of(made.model) == "torchscript"
    assert made.cached == ""
    assert made.parity is not None
    assert made.parity < 1e-3
    assert made.summary().startswith("Exported to ONNX with the torchscript exporter in ")
    x = v.example_inputs(seed=3, batch=5)  # a batch size it was neither traced nor checked at
    with torch.no_grad():
        ref = v.model(*x).numpy()
    assert np.abs(run_session(ort_session(made.model), x) - ref).max() < 1e-4


def test_an_invalid_fast_graph_falls_back_to_dynamo(calls: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    v = build_zoo("mlp")
    other = build_zoo("mlp", seed=1)  # same graph, other weights: a graph that is wrong for v
    traced = onnx_export_fast._export_torchscript  # counts the call (see `calls`)
    monkeypatch.setattr(onnx_export_fast, "_export_torchscript",
                        lambda variant, *args: traced(other, *args))
    made = onnx_export.export_onnx(v, fast=True)
    assert calls == ["torchscript", "dynamo"]
    assert made.exporter == exporter_of(made.model) == "dynamo"
    assert made.warnings[0].startswith(
        "Used the dynamo exporter: the TorchScript export differs from torch by ")
    assert made.parity is not None
    assert made.parity < 1e-3
    x = v.example_inputs(seed=1, batch=3)
    with torch.no_grad():
        ref = v.model(*x).numpy()
    assert np.abs(run_session(ort_session(made.model), x) - ref).max() < 1e-4


def test_a_trace_that_freezes_the_batch_is_rejected() -> None:
    v = Variant("per-row", "torch", PerRow().eval(), "zoo", (InputSpec("x", (1, 4), "float32"),))
    traced = onnx_export._export_torchscript(v, 18, True)
    check = check_export(v, traced, 18, True, "torchscript")
    assert check.problem == "gives shape (2, 3) where torch gives (3, 3) at batch 3"


def test_check_export_names_what_is_wrong() -> None:
    v = build_zoo("mlp")
    good = onnx_export._export_torchscript(v, 18, True)
    assert check_export(v, good, 18, True, "torchscript").problem is None
    other = Variant("other", "torch", build_zoo("mlp", seed=1).model, "zoo", v.inputs)
    wrong = check_export(other, onnx_export._export_torchscript(v, 18, True), 18, True,
                         "torchscript")  # another model's weights
    assert wrong.problem is not None
    assert wrong.problem.startswith("differs from torch by")
    assert check_export(v, good, 17, True, None).problem == "has opset 18, not 17"


def test_the_fast_order_reuses_a_default_export_and_keeps_its_own(calls: list[str]) -> None:
    v = build_zoo("mlp")
    onnx_export.export_onnx(v)  # convert.onnx's order: dynamo
    assert calls == ["dynamo"]
    reused = onnx_export.export_onnx(v, fast=True)
    assert calls == ["dynamo"]  # already made: no second export
    assert (reused.exporter, reused.cached) == ("dynamo", "memory")
    assert reused.summary().startswith("Reused the cached ONNX export (from memory")
    onnx_export.clear_export_cache()
    from_disk = onnx_export.export_onnx(build_zoo("mlp"), fast=True)  # same content
    assert (from_disk.exporter, from_disk.cached) == ("dynamo", "disk")
    fresh = onnx_export.export_onnx(build_zoo("mlp", seed=2), fast=True)
    assert fresh.exporter == "torchscript"
    assert calls == ["dynamo", "torchscript"]
    # and the default order never takes the fast order's TorchScript export
    assert onnx_export.export_onnx(build_zoo("mlp", seed=2)).exporter == "dynamo"
    assert calls == ["dynamo", "torchscript", "dynamo"]


def test_token_inputs_are_checked_at_a_shorter_sequence(calls: list[str]) -> None:
    v = build_zoo("transformer-tiny")
    made = onnx_export.export_onnx(v, fast=True)
    assert made.exporter in ("torchscript", "dynamo")  # whichever is faithful
    assert check_export(v, made.model, 18, True, None).problem is None
