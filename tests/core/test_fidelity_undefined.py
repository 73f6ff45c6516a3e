"""Honest fidelity: cosine and SQNR are undefined on all-zero, constant or non-finite outputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from workbench.core.model.fidelity import fidelity_report, fidelity_text, output_metrics
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes import apply_pass
from workbench.core.passes.registry import discover
from workbench.core.passes.report_view import report_figures


def _zero_head() -> Variant:
    """The zoo MLP with its classifier initialised to zero (as torchvision's vit_b_16 is):
    every output is exactly 0 whatever the input."""
    v = build_zoo("mlp")
    model = copy.deepcopy(v.model)
    with torch.no_grad():
        model[5].weight.zero_()
        model[5].bias.zero_()
    return Variant("zero head", "torch", model, "zoo", v.inputs, metadata=v.metadata)


def test_zero_output_model_has_undefined_cosine_and_sqnr_with_a_fallback() -> None:
    parent = _zero_head()
    child = Variant("twin", "torch", copy.deepcopy(parent.model), "zoo", parent.inputs)
    fid, warnings = fidelity_report(parent, child, samples=8)
    assert fid["cosine"] is None
    assert fid["cosine_min"] is None
    assert fid["output_sqnr_db"] is None
    assert "all exactly 0" in fid["undefined"]
    assert fid["max_abs_diff"] == 0.0
    assert fid["mean_abs_diff"] == 0.0
    assert fid["argmax_agreement"] is None  # every class ties: no top class either
    assert "5" not in fid["per_layer"]  # the zero head has no SQNR (not a capped 150 dB)
    assert len(warnings) == 1
    assert "cosine and SQNR are undefined because the parent's outputs are all exactly 0" \
        in warnings[0]
    assert "max |Δ| 0" in warnings[0]
    assert fidelity_text(fid).startswith("cosine undefined  max |diff| 0")


def test_a_pass_on_a_zero_output_model_warns_and_shows_undefined() -> None:
    result = apply_pass(discover().get("quantize.torch_dynamic"), _zero_head())
    report = result.report
    assert report.details["fidelity"]["cosine"] is None
    assert any("undefined" in w for w in report.warnings)
    figures = {f.label: f for f in report_figures(report)}
    assert figures["Fidelity: cosine"].undefined
    assert figures["Fidelity: cosine"].after is None
    assert figures["Fidelity: output SQNR (dB)"].undefined
    assert figures["Fidelity: mean |Δ|"].after == 0.0  # the defined fallback is shown
    assert not figures["Fidelity: max |Δ|"].undefined


def test_constant_and_nonfinite_outputs_are_undefined_too() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4, 10))
    constant = np.full((4, 10), 0.1)
    m = output_metrics(real, constant)
    assert m["cosine"] is None
    assert "the child's outputs are all the same value (0.1)" \
        in m["undefined"]
    broken = real.copy()
    broken[1, 3] = np.nan
    m = output_metrics(real, broken)
    assert m["cosine"] is None
    assert "1 NaN or Inf" in m["undefined"]
    assert m["max_abs_diff"] == 0.0  # over the positions finite in both
    assert m["argmax_agreement"] == 1.0  # over the 3 samples with a finite, unique top class


def test_ordinary_outputs_keep_their_cosine() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 10))
    m = output_metrics(a, a + 0.01 * rng.normal(size=a.shape))
    assert "undefined" not in m
    assert 0.99 < m["cosine"] <= 1.0
    assert m["output_sqnr_db"] == pytest.approx(40, abs=3)
    assert m["argmax_agreement"] == 1.0
