"""NaN and Inf weights: models still open, statistics leave them out, passes refuse them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.analysis import Analysis, open_model
from workbench.core.graph.stats import nonfinite_weights, stats_from_tensors
from workbench.core.jobs import run_job
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes import Pass, PassContext, PassError, PassOutput, apply_pass, param
from workbench.core.passes.base import fingerprint, parse_params
from workbench.core.passes.registry import discover

NAN, INF = float("nan"), float("inf")


def nan_mlp_state() -> dict[str, torch.Tensor]:
    """The zoo mlp's weights with 3 NaN and 1 +Inf in `1.weight`, 2 -Inf in `3.bias`."""
    state = {k: v.clone().contiguous() for k, v in build_zoo("mlp").model.state_dict().items()}
    w = state["1.weight"].view(-1)
    w[:3] = NAN
    w[10] = INF
    state["3.bias"][:2] = -INF
    return state


def save_nan_mlp(path: Path) -> Path:
    from safetensors.torch import save_file

    save_file(nan_mlp_state(), str(path))
    return path


@pytest.fixture
def nan_mlp(tmp_path: Path) -> Path:
    return save_nan_mlp(tmp_path / "nan_mlp.safetensors")


def nan_onnx(path: Path) -> Path:
    """A one-MatMul ONNX model whose weight initializer holds 2 NaN and 1 -Inf."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    w[0, :2] = np.nan
    w[3, 1] = -np.inf
    b = np.ones(4, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.w"], ["h"], name="/fc/MatMul"),
         helper.make_node("Add", ["h", "fc.b"], ["y"], name="/fc/Add")],
        "nan_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(w, "fc.w"), numpy_helper.from_array(b, "fc.b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# statistics ------------------------------------------------------------------------------
def test_stats_leave_nonfinite_values_out() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 10)).astype(np.float32)
    a[0, :4] = np.nan
    a[2, 3] = np.inf
    a[5, :] = -np.inf  # a whole channel without a finite value
    a[1, 1] = 0.0
    b = rng.standard_normal(20).astype(np.float32)
    stats = stats_from_tensors({"a": torch.from_numpy(a), "b": torch.from_numpy(b)}, bins=16)
    s = stats.tensors["a"]
    finite = a[np.isfinite(a)]
    assert (s.nan, s.inf, s.nonfinite, s.numel) == (4, 11, 15, 60)
    assert s.min == pytest.approx(finite.min())
    assert s.max == pytest.approx(finite.max())
    assert s.mean == pytest.approx(finite.mean(), abs=1e-6)
    assert s.std == pytest.approx(finite.std(), rel=1e-5)
    assert s.sparsity == pytest.approx(1 / 60)
    assert s.hist_counts.sum() == finite.size
    assert np.isfinite(s.hist_edges).all()
    assert s.channel_min is not None
    assert s.channel_max is not None
    assert np.isfinite(s.channel_min).all()
    assert np.isfinite(s.channel_max).all()
    assert s.channel_min[0] == pytest.approx(a[0, 4:].min())
    assert (s.channel_min[5], s.channel_max[5]) == (0.0, 0.0)
    assert stats.tensors["b"].nonfinite == 0
    both = np.concatenate([finite, b])
    m = stats.summary
    assert (m.nan, m.inf, m.numel) == (4, 11, 80)
    assert m.hist_counts.sum() == both.size
    assert m.mean == pytest.approx(both.mean(), abs=1e-6)
    assert (m.min, m.max) == (pytest.approx(both.min()), pytest.approx(both.max()))
    assert stats.nonfinite_tensors() == {"a": (4, 11)}
    assert stats.warnings() == ["a holds 4 NaN and 11 Inf values; statistics ignore them."]
    assert all(math.isfinite(v) for v in (s.mean, s.std, m.mean, m.std))


def test_a_tensor_of_nothing_but_nan() -> None:
    stats = stats_from_tensors({"x": torch.full((3, 3), NAN), "y": torch.ones(4)})
    x = stats.tensors["x"]
    assert (x.nan, x.inf, x.hist_counts.sum(), x.min, x.max) == (9, 0, 0, 0.0, 0.0)
    assert stats.summary.hist_counts.sum() == 4
    assert (stats.summary.min, stats.summary.max) == (1.0, 1.0)
    only_nan = stats_from_tensors({"x": torch.full((4,), NAN)})
    assert only_nan.summary.hist_counts.sum() == 0
    assert only_nan.summary.nan == 4


def test_a_float32_overflow_is_not_mistaken_for_inf() -> None:
    t = torch.full((4,), 3e38)
    s = stats_from_tensors({"big": t}).tensors["big"]
    assert (s.nan, s.inf) == (0, 0)
    assert s.hist_counts.sum() == 4


def test_warnings_are_capped() -> None:
    weights = {f"t{i}": torch.tensor([NAN, 1.0]) for i in range(13)}
    warnings = stats_from_tensors(weights).warnings()
    assert len(warnings) == 11
    assert warnings[-1] == "3 more tensors hold 3 NaN values; statistics ignore them."
    assert warnings[0] == "t0 holds 1 NaN value; statistics ignore it."


# opening models ---------------------------------------------------------------------------
def test_a_nan_state_dict_opens_with_a_warning(nan_mlp: Path) -> None:
    analysis = run_job(open_model(str(nan_mlp), arch="zoo:mlp"))
    assert analysis.stats.tensors["1.weight"].nan == 3
    assert analysis.stats.tensors["1.weight"].inf == 1
    assert analysis.stats.tensors["3.bias"].inf == 2
    assert analysis.warnings == analysis.graph.warnings
    assert "1.weight holds 3 NaN and 1 Inf values; statistics ignore them." in analysis.warnings
    assert "3.bias holds 2 Inf values; statistics ignore them." in analysis.warnings
    assert analysis.graph.summary()["warnings"] == analysis.warnings


def test_cli_inspect_reports_nonfinite_weights(nan_mlp: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["inspect", str(nan_mlp), "--arch", "zoo:mlp", "--json", "--stats"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(w.startswith("1.weight holds 3 NaN and 1 Inf values") for w in data["warnings"])
    assert any(w.startswith("3.bias holds 2 Inf values") for w in data["warnings"])
    tensors = {t["name"]: t for t in data["weights"]["tensors"]}
    assert (tensors["1.weight"]["nan"], tensors["1.weight"]["inf"]) == (3, 1)
    assert data["weights"]["summary"]["nan"] == 3
    assert data["weights"]["summary"]["inf"] == 3
    assert all(math.isfinite(tensors["1.weight"][k]) for k in ("min", "max", "mean", "std"))
    # and the plain text form
    assert main(["inspect", str(nan_mlp), "--arch", "zoo:mlp"]) == 0
    assert "warning: 1.weight holds 3 NaN and 1 Inf values" in capsys.readouterr().out


def test_histogram_counts_exclude_nonfinite_values(nan_mlp: Path) -> None:
    analysis = run_job(open_model(str(nan_mlp), arch="zoo:mlp"))
    w = analysis.stats.tensors["1.weight"]
    assert w.hist_counts.sum() == w.numel - 4
    total = analysis.stats.summary
    assert total.hist_counts.sum() == total.numel - 6
    assert np.isfinite(total.hist_edges).all()


def test_an_onnx_model_with_a_nan_initializer_opens(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    from workbench.cli import main

    path = nan_onnx(tmp_path / "nan.onnx")
    analysis = run_job(open_model(str(path)))
    fc = analysis.stats.tensors["fc.w"]
    assert (fc.nan, fc.inf, fc.hist_counts.sum()) == (2, 1, 29)
    assert "fc.w holds 2 NaN and 1 Inf values; statistics ignore them." in analysis.warnings
    assert main(["inspect", str(path), "--json"]) == 0
    assert any(w.startswith("fc.w holds 2 NaN") for w in
               json.loads(capsys.readouterr().out)["warnings"])


def test_nonfinite_weights_finds_the_same_tensors_as_the_stats(nan_mlp: Path,
                                                               tmp_path: Path) -> None:
    analysis = run_job(open_model(str(nan_mlp), arch="zoo:mlp"))
    assert nonfinite_weights(analysis.variant) == analysis.stats.nonfinite_tensors() == {
        "1.weight": (3, 1), "3.bias": (0, 2)}
    onnx_analysis = run_job(open_model(str(nan_onnx(tmp_path / "n.onnx"))))
    assert nonfinite_weights(onnx_analysis.variant) == {"fc.w": (2, 1)}
    assert nonfinite_weights(build_zoo("mlp")) == {}


# passes -----------------------------------------------------------------------------------
class Negate(Pass):
    """A test pass that copes with any value (x -> -x)."""

    name = "test.negate"
    title = "Negate"
    handles_nonfinite = True

    @dataclass
    class Params:
        factor: float = param(1.0, min=0.0, max=10.0)
        steps: int = param(1, min=1, max=100)
        anything: float = param(0.0, allow_nonfinite=True)

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        model = self.clone_model(variant)
        with torch.no_grad():
            for p in model.parameters():
                p.neg_()
        return PassOutput(model)


class Refuses(Negate):
    name = "test.refuses"
    handles_nonfinite = False


def _nan_analysis(path: Path) -> Analysis:
    return run_job(open_model(str(path), arch="zoo:mlp"))


def test_a_pass_refuses_nonfinite_weights_by_default(nan_mlp: Path) -> None:
    analysis = _nan_analysis(nan_mlp)
    stamp = fingerprint(analysis.variant)
    for source in (analysis, analysis.variant):  # from the stats, or by scanning
        with pytest.raises(PassError) as info:
            apply_pass(Refuses(), source)
        assert str(info.value) == (
            "test.refuses cannot run on weights holding NaN or Inf values, and "
            f"{analysis.variant.name} has them in 1.weight (3 NaN and 1 Inf), "
            "3.bias (2 Inf).")
    assert fingerprint(analysis.variant) == stamp
    result = apply_pass(Negate(), analysis)
    assert result.variant.parent == analysis.variant.id


@pytest.mark.parametrize("pass_name", ["prune.magnitude", "prune.nm", "quantize.kmeans",
                                       "quantize.torch_dynamic", "convert.onnx"])
def test_builtin_passes_refuse_nonfinite_weights(nan_mlp: Path, pass_name: str) -> None:
    analysis = _nan_analysis(nan_mlp)
    with pytest.raises(PassError, match=r"cannot run on weights holding NaN or Inf values.*"
                                        r"1\.weight \(3 NaN and 1 Inf\)"):
        apply_pass(discover().get(pass_name), analysis)


def test_many_bad_tensors_are_tallied() -> None:
    v = build_zoo("lenet5")
    with torch.no_grad():
        for p in v.model.parameters():
            p.view(-1)[0] = NAN
    with pytest.raises(PassError, match=r"\((1 NaN)\), \d+ more tensors\.$"):
        apply_pass(Refuses(), v)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"factor": "nan"}, "factor must be a finite number, not nan"),
        ({"factor": NAN}, "factor must be a finite number, not nan"),
        ({"factor": "inf"}, "factor must be a finite number, not inf"),
        ({"factor": -INF}, "factor must be a finite number, not -inf"),
        ({"steps": INF}, "steps must be an int, not inf"),
        ({"steps": "nan"}, "steps must be an int"),
    ],
)
def test_nonfinite_params_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        parse_params(Negate, values)


def test_a_param_may_allow_nonfinite_values() -> None:
    assert math.isinf(parse_params(Negate, {"anything": "inf"}).anything)
    spec = {s.name: s for s in Negate.param_specs()}
    assert spec["anything"].allow_nonfinite
    assert not spec["factor"].allow_nonfinite
    assert Negate.describe()["handles_nonfinite"] is True


def test_a_params_instance_is_checked_too() -> None:
    with pytest.raises(InvalidParameterError, match="factor must be a finite number"):
        apply_pass(Negate(), build_zoo("mlp"), Negate.Params(factor=NAN))
