"""quantize.auto on zoo:resnet-mini with injected timings; the int8 latency guard of
quantize.ort_dynamic / ort_static; suggest_int8. No wall-clock figure is asserted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import pytest

from tests.conftest import make_onnx_mlp
from workbench.core.graph.analysis import Analysis, analyse
from workbench.core.jobs import run_job
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassContext, PassError, apply_pass
from workbench.core.passes.quant_auto import QuantizeAuto, _choose, suggest_int8
from workbench.core.passes.quant_ort import OrtDynamicQuantize, OrtStaticQuantize
from workbench.core.session.session import _pass_data


@pytest.fixture(scope="module")
def resnet() -> Analysis:
    # untrained: its static int8 keeps a cosine of 0.9999 on random inputs; the trained
    # weights score 0.98 there, below the gate, and this module tests the choice itself
    return run_job(analyse(build_zoo("resnet-mini", trained=False)))


def fixed_probe(ms: Mapping[str, float], seen: list[set[str]] | None = None) -> Any:
    """A latency probe that returns `ms` for the names it is asked about."""

    def probe(models: Mapping[str, Any], inputs: Any, threads: int, budget: float
              ) -> dict[str, float]:
        assert all(isinstance(m, onnx.ModelProto) for m in models.values())
        if seen is not None:
            seen.append(set(models))
        return {name: ms[name] for name in models}

    return probe


def _ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def test_keeps_the_fastest_candidate_and_tables_them_all(resnet: Analysis) -> None:
    auto = QuantizeAuto()
    seen: list[set[str]] = []
    auto.latency_probe = fixed_probe(
        {"float": 10.0, "dynamic": 34.0, "static": 4.0, "conv_float": 8.0}, seen)
    result = apply_pass(auto, resnet, {"samples": 16})
    d = result.report.details
    assert seen == [{"float", "dynamic", "static", "conv_float"}]  # timed together, once
    assert [r["name"] for r in d["candidates"]] == ["float", "dynamic", "static", "conv_float"]
    rows = {r["name"]: r for r in d["candidates"]}
    assert rows["static"]["kept"]
    assert not rows["dynamic"]["kept"]
    assert not rows["float"]["kept"]
    assert rows["dynamic"]["speedup"] == pytest.approx(10 / 34, abs=1e-3)
    assert rows["static"]["speedup"] == 2.5
    assert all(r["cosine"] >= 0.99 for r in d["candidates"])
    assert d["kept"] == "static"
    assert d["latency"] == {"parent_ms": 10.0, "child_ms": 4.0, "speedup": 2.5,
                            "threads": d["threads"]}
    ops = _ops(result.variant.model)
    assert ops["QuantizeLinear"] > 5
    assert "ConvInteger" not in ops
    for name in ("float", "dynamic", "static", "conv_float"):
        assert name in d["table"]
    assert any("Kept static int8: 2.50x faster" in w for w in result.report.warnings)


def test_a_cosine_of_one_rejects_every_int8_candidate(resnet: Analysis) -> None:
    auto = QuantizeAuto()
    auto.latency_probe = fixed_probe({"float": 10.0, "dynamic": 1.0, "conv_float": 2.0})
    result = apply_pass(auto, resnet, {"min_cosine": 1.0,
                                       "candidates": ["dynamic", "conv_float"]})
    d = result.report.details
    assert d["kept"] == "float"
    assert [r["kept"] for r in d["candidates"]] == [True, False, False]
    assert not set(_ops(result.variant.model)) & {"ConvInteger", "MatMulInteger",
                                                  "QuantizeLinear"}
    assert result.variant.backend == "onnx"
    assert any("No int8 candidate keeps a cosine of 1.0" in w and "exported to ONNX" in w
               for w in result.report.warnings)


def test_never_slower_than_float(tmp_path: Path) -> None:
    v = load_model(str(make_onnx_mlp(tmp_path / "mlp.onnx")))
    auto = QuantizeAuto()
    auto.latency_probe = fixed_probe({"float": 1.0, "dynamic": 1.02, "static": 3.0})
    result = apply_pass(auto, v, {"samples": 8})
    d = result.report.details
    assert d["kept"] == "float"
    rows = {r["name"]: r for r in d["candidates"]}
    assert rows["conv_float"]["skipped"] == "no convolutions"
    assert "ms" in rows["static"]
    assert "ms" in rows["dynamic"]
    assert result.variant.model.SerializeToString() == v.model.SerializeToString()
    assert any("faster than float" in w and "unchanged" in w for w in result.report.warnings)


def test_the_time_budget_skips_later_candidates(tmp_path: Path) -> None:
    v = load_model(str(make_onnx_mlp(tmp_path / "mlp.onnx")))
    ticks = iter(range(0, 10**6, 1000))
    auto = QuantizeAuto()
    auto.clock = lambda: float(next(ticks))  # every look at the clock: 1000 s later
    auto.latency_probe = fixed_probe({"float": 2.0, "dynamic": 1.0})
    result = apply_pass(auto, v, {"time_budget_s": 10})
    rows = {r["name"]: r for r in result.report.details["candidates"]}
    assert rows["static"]["skipped"] == "time budget spent"
    assert result.report.details["kept"] == "dynamic"  # the first always runs


def test_choose_takes_the_fastest_within_the_budget() -> None:
    rows = [{"name": "dynamic", "ms": 2.0, "speedup": 5.0},
            {"name": "static", "ms": 3.0, "speedup": 3.3},
            {"name": "conv_float", "ms": 9.5, "speedup": 1.03}, {"name": "x"}]
    cos = {"dynamic": 0.95, "static": 0.995, "conv_float": 0.9999}
    assert _choose(rows, cos, 0.99) == "static"
    assert _choose(rows, cos, 0.9) == "dynamic"
    assert _choose(rows, cos, 0.999) is None  # conv_float is within the noise of float


def test_the_accuracy_budget_outranks_speed() -> None:
    rows = [{"name": "dynamic", "ms": 2.0, "speedup": 5.0, "accuracy_drop": 3.0},
            {"name": "static", "ms": 3.0, "speedup": 3.3, "accuracy_drop": 0.5}]
    cos = {"dynamic": 0.999, "static": 0.999}
    assert _choose(rows, cos, 0.99) == "dynamic"  # no dataset: cosine only
    assert _choose(rows, cos, 0.99, 1.0) == "static"
    assert _choose(rows, cos, 0.99, 0.1) is None


def test_a_dataset_scores_every_candidate_on_its_validation_split(resnet: Analysis) -> None:
    auto = QuantizeAuto()
    auto.latency_probe = fixed_probe({"float": 10.0, "dynamic": 3.0, "static": 4.0,
                                      "conv_float": 8.0})
    digits = _pass_data(resnet.variant, "digits")  # what Session.apply puts in the context
    values = {"dataset": "digits", "max_accuracy_drop": 1.0, "min_cosine": 0.0, "samples": 16}
    with pytest.raises(PassError, match="was not loaded"):
        apply_pass(auto, resnet, values)
    result = apply_pass(auto, resnet, values, PassContext(data=digits))
    d = result.report.details
    assert d["dataset"] == "digits"
    assert d["max_accuracy_drop"] == 1.0
    rows = {r["name"]: r for r in d["candidates"]}
    assert rows["float"]["accuracy"] == d["float_accuracy"]
    for name in ("dynamic", "static", "conv_float"):
        assert 0.0 <= rows[name]["accuracy"] <= 1.0
        assert rows[name]["accuracy_drop"] == pytest.approx(
            100 * (d["float_accuracy"] - rows[name]["accuracy"]), abs=0.01)
    kept = rows[d["kept"]]
    assert kept["accuracy_drop"] <= 1.0
    faster_within = [r for r in rows.values() if r["name"] != "float"
                     and r["accuracy_drop"] <= 1.0]
    assert kept["ms"] == min(r["ms"] for r in faster_within) if faster_within else (
        d["kept"] == "float")
    assert "top-1" in d["table"]


@pytest.mark.parametrize("cls", [OrtDynamicQuantize, OrtStaticQuantize])
def test_int8_slower_than_float_is_said_in_words(resnet: Analysis, cls: type) -> None:
    q = cls()
    q.latency_probe = fixed_probe({"parent": 10.0, "child": 34.0})
    result = apply_pass(q, resnet, {"samples": 8} if cls is OrtStaticQuantize else {})
    assert result.report.details["latency"]["speedup"] == pytest.approx(0.294, abs=1e-3)
    slower = [w for w in result.report.warnings if "3.4x slower than float" in w]
    assert len(slower) == 1
    assert "quantize.auto" in slower[0]


def test_faster_int8_says_nothing_and_latency_can_be_off(tmp_path: Path) -> None:
    v = load_model(str(make_onnx_mlp(tmp_path / "mlp.onnx")))
    q = OrtDynamicQuantize()
    q.latency_probe = fixed_probe({"parent": 10.0, "child": 5.0})
    result = apply_pass(q, v, {})
    assert result.report.details["latency"]["speedup"] == 2.0
    assert not any("float" in w for w in result.report.warnings)
    off = apply_pass(q, v, {"measure_latency": False})
    assert "latency" not in off.report.details


def test_suggest_int8_for_convolution_heavy_models(resnet: Analysis, tmp_path: Path) -> None:
    text = suggest_int8(resnet)
    assert text is not None
    assert "quantize.ort_static" in text
    assert "100%" in text
    mlp = run_job(analyse(load_model(str(make_onnx_mlp(tmp_path / "mlp.onnx")))))
    assert suggest_int8(mlp) is None


def test_unknown_candidates_are_refused(tmp_path: Path) -> None:
    from workbench.core.errors import InvalidParameterError

    v = load_model(str(make_onnx_mlp(tmp_path / "mlp.onnx")))
    with pytest.raises(InvalidParameterError, match="unknown: fast"):
        apply_pass(QuantizeAuto(), v, {"candidates": ["fast"]})
