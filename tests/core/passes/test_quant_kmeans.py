"""K-means weight sharing: at most 2^bits values per layer, codebooks in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.analysis import Analysis, analyse
from workbench.core.graph.stats import weight_stats
from workbench.core.jobs import run_job
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, apply_pass, fingerprint
from workbench.core.passes.quant_kmeans import KMeansQuantize, kmeans_1d

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


@pytest.fixture(scope="module")
def resnet() -> Analysis:
    # untrained: every weight distinct (fp16-stored trained weights repeat values), so the
    # distinct counts below tell the clustered child from its parent
    return run_job(analyse(build_zoo("resnet-mini", trained=False)))


def _distinct(t: torch.Tensor) -> int:
    return int(torch.unique(t).numel())


def test_resnet_at_4_bits(resnet: Analysis) -> None:
    v = resnet.variant
    stamp = fingerprint(v)
    result = apply_pass(KMeansQuantize(), resnet, {"bits": 4})
    assert fingerprint(v) == stamp
    layers = [(n, m) for n, m in result.variant.model.named_modules()
              if isinstance(m, WEIGHT_LAYERS)]
    assert len(layers) == 16
    for _, m in layers:
        assert _distinct(m.weight) <= 16
        assert m.weight.dtype == torch.float32
    assert _distinct(v.model.fc.weight) == v.model.fc.weight.numel()  # parent untouched
    details = result.report.details
    assert details["max_distinct"] <= 16
    assert details["clusters"] == 16
    entry = details["layers"]["layer2.0.conv1.weight"]
    assert entry["layer"] == "layer2.0.conv1"
    assert len(entry["codebook"]) == 16
    assert entry["codebook"] == sorted(entry["codebook"])
    assert sum(entry["counts"]) == entry["numel"] == v.model.layer2[0].conv1.weight.numel()
    assert 10 < entry["weight_sqnr_db"] < 40
    fid = details["fidelity"]
    assert fid["cosine"] > 0.95
    assert fid["per_layer"]["stem.0"] < 60
    stats = weight_stats(result.variant)
    assert stats.tensors["layer3.1.conv2.weight"].distinct <= 16


def test_fewer_bits_fewer_values_and_a_lower_fidelity(resnet: Analysis) -> None:
    one = apply_pass(KMeansQuantize(), resnet, {"bits": 1, "init": "quantile"})
    eight = apply_pass(KMeansQuantize(), resnet, {"bits": 8, "iterations": 3})
    assert _distinct(one.variant.model.fc.weight) <= 2
    assert one.report.details["max_distinct"] <= 2
    assert eight.report.details["max_distinct"] <= 256
    assert (one.report.details["fidelity"]["cosine"]
            < eight.report.details["fidelity"]["cosine"])


def test_ignored_layers_are_left_alone() -> None:
    v = build_zoo("mlp")
    result = apply_pass(KMeansQuantize(), v, {"bits": 3, "ignore": ["5"], "seed": 7})
    model = result.variant.model
    assert torch.equal(model[5].weight, v.model[5].weight)
    assert _distinct(model[1].weight) <= 8
    assert set(result.report.details["layers"]) == {"1.weight", "3.weight"}


def test_layer_types_reach_recurrent_weights() -> None:
    v = build_zoo("gru")
    result = apply_pass(KMeansQuantize(), v, {"layer_types": ["GRU"], "bits": 2})
    gru = result.variant.model.gru
    assert all(_distinct(getattr(gru, n)) <= 4 for n in ("weight_ih_l0", "weight_hh_l1"))
    assert _distinct(result.variant.model.fc.weight) > 4  # Linear not selected


def test_onnx_initializers(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    stamp = fingerprint(v)
    result = apply_pass(KMeansQuantize(), v, {"bits": 2})
    assert fingerprint(v) == stamp
    inits = {i.name: numpy_helper.to_array(i) for i in result.variant.model.graph.initializer}
    assert len(np.unique(inits["fc1.w"])) <= 4
    assert len(np.unique(inits["fc2.w"])) <= 4
    assert result.report.details["layers"]["fc1.w"]["layer"] == "/fc1/MatMul"
    assert result.report.details["fidelity"]["samples"] == 16


def test_nothing_left_to_cluster() -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(PassError, match="every one is ignored"):
        apply_pass(KMeansQuantize(), v, {"ignore": ["1", "3", "5"]})
    relu = Variant("relu", "torch", nn.ReLU(), "zoo", (InputSpec("x", (1, 4)),))
    with pytest.raises(PassError, match="no Linear"):
        apply_pass(KMeansQuantize(), relu, {})
    assert fingerprint(v) == stamp


@pytest.mark.parametrize("params", [{"bits": 0}, {"bits": 9}, {"init": "random"},
                                    {"layer_types": ["Attention"]}, {"ignore": ["nope"]},
                                    {"iterations": 0}])
def test_bad_params(params: dict[str, object]) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(InvalidParameterError):
        apply_pass(KMeansQuantize(), v, params)
    assert fingerprint(v) == stamp


def test_kmeans_1d_finds_well_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([-3.0, 0.5, 4.0])
    x = (centres[torch.randint(0, 3, (30_000,), generator=gen)]
         + 0.05 * torch.randn(30_000, generator=gen))
    for init in ("kmeans++", "quantile"):
        c, idx = kmeans_1d(x, 3, 20, init, torch.Generator().manual_seed(1))
        assert torch.allclose(c, centres, atol=0.02)
        assert idx.shape == x.shape
        assert int(idx.max()) <= 2
    few = torch.tensor([1.0, 2.0, 1.0, 2.0])
    c, idx = kmeans_1d(few, 16)
    assert c.tolist() == [1.0, 2.0]
    assert torch.equal(c[idx], few)


def test_large_layers_are_subsampled_for_fitting() -> None:
    x = torch.randn(3_000_000, generator=torch.Generator().manual_seed(0))
    c, idx = kmeans_1d(x, 16, 10, "kmeans++", torch.Generator().manual_seed(0))
    assert c.numel() == 16
    assert idx.numel() == x.numel()
    err = float(((c[idx] - x) ** 2).mean())
    assert err < 0.02  # Lloyd-Max optimum for a unit Gaussian at 16 levels is ~0.0095
