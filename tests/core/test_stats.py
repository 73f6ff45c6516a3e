"""Weight statistics against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.core.graph.stats import stats_from_tensors, weight_stats
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import build_zoo


def test_tensor_stats_match_numpy() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    a[a < -1.2] = 0.0
    b = rng.uniform(-2, 5, (10, 7)).astype(np.float32)
    stats = stats_from_tensors({"a": torch.from_numpy(a), "b": torch.from_numpy(b)}, bins=32)
    s = stats.tensors["a"]
    assert s.min == pytest.approx(a.min())
    assert s.max == pytest.approx(a.max())
    assert s.mean == pytest.approx(a.mean(), abs=1e-6)
    assert s.std == pytest.approx(a.std(), rel=1e-5)
    assert s.sparsity == pytest.approx(np.mean(a == 0))
    counts, edges = np.histogram(a, bins=32, range=(a.min(), a.max()))
    np.testing.assert_allclose(s.hist_edges, edges, rtol=1e-5, atol=1e-6)
    assert np.abs(s.hist_counts - counts).sum() <= 2  # float edge ties may move a value
    assert s.hist_counts.sum() == a.size
    flat = a.reshape(16, -1)
    np.testing.assert_allclose(s.channel_min, flat.min(axis=1))
    np.testing.assert_allclose(s.channel_max, flat.max(axis=1))


def test_summary_covers_every_tensor() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal(1000).astype(np.float32)
    b = (rng.standard_normal(500) * 3).astype(np.float32)
    stats = stats_from_tensors({"a": torch.from_numpy(a), "b": torch.from_numpy(b)}, bins=16)
    both = np.concatenate([a, b])
    s = stats.summary
    assert s.numel == 1500
    assert s.min == pytest.approx(both.min())
    assert s.max == pytest.approx(both.max())
    assert s.mean == pytest.approx(both.mean(), abs=1e-6)
    assert s.std == pytest.approx(both.std(), rel=1e-5)
    counts, _ = np.histogram(both, bins=16, range=(both.min(), both.max()))
    assert np.abs(s.hist_counts - counts).sum() <= 2
    assert s.hist_counts.sum() == 1500


def test_distinct_values_are_counted() -> None:
    t = torch.tensor([[0.5, -0.5, 0.5], [0.25, 0.5, -0.5]])
    assert stats_from_tensors({"q": t}).tensors["q"].distinct == 3


def test_bins_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bins"):
        stats_from_tensors({"a": torch.ones(4)}, bins=0)


def test_torch_variant_stats_are_keyed_like_the_graph() -> None:
    v = build_zoo("lenet5")
    stats = weight_stats(v)
    assert "0.weight" in stats.tensors
    assert stats.summary.numel == sum(p.numel() for p in v.model.parameters())


def test_onnx_variant_stats(onnx_mlp: Path) -> None:
    stats = weight_stats(load_model(str(onnx_mlp)))
    assert set(stats.tensors) == {"fc1.w", "fc1.b", "fc2.w"}
    assert stats.tensors["fc1.b"].sparsity == 1.0


def test_masked_pruning_reports_the_effective_weights() -> None:
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover

    result = apply_pass(discover().get("prune.magnitude"), build_zoo("lenet5"),
                        {"sparsity": 0.5, "permanent": False})
    stats = weight_stats(result.variant)
    assert "0.weight" in stats.tensors
    assert "0.weight_orig" not in stats.tensors
    assert stats.tensors["0.weight"].sparsity == pytest.approx(0.5, abs=0.01)


def test_kmeans_clusters_are_listed() -> None:
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover

    result = apply_pass(discover().get("quantize.kmeans"), build_zoo("lenet5"), {"bits": 3})
    t = weight_stats(result.variant).tensors["3.weight"]
    assert t.distinct is not None
    assert t.distinct <= 8
    assert t.values is not None
    assert t.value_counts is not None
    assert int(t.value_counts.sum()) == t.numel


def test_dynamic_int8_sizes_count_packed_weights() -> None:
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover

    for name in ("mlp", "gru"):
        r = apply_pass(discover().get("quantize.torch_dynamic"), build_zoo(name))
        assert r.report.after["parameters"] == r.report.before["parameters"]
        assert r.report.after["size_bytes"] < 0.35 * r.report.before["size_bytes"]
