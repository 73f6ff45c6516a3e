"""`workbench inspect` without `--stats` checks the weights for NaN and Inf from the raw bytes
and warns exactly as the full statistics would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workbench.core.graph import finite_check
from workbench.core.graph.finite_check import onnx_floats_finite, weight_warnings
from workbench.core.graph.stats import weight_stats
from workbench.core.model.loaders import load_model


def chain_onnx(path: Path, weights: list[np.ndarray], extra: list[onnx.TensorProto] = ()
               ) -> Path:
    """MatMuls in a chain, one per weight (square, the same size), plus `extra` initializers."""
    size = weights[0].shape[0]
    elem = helper.np_dtype_to_tensor_dtype(weights[0].dtype)
    nodes, cur = [], "x"
    for i, _ in enumerate(weights):
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"h{i}"], name=f"/l{i}/MatMul"))
        cur = f"h{i}"
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", elem, [1, size])],
        [helper.make_tensor_value_info(cur, elem, [1, size])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)] + list(extra))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10)
    onnx.save(model, path)
    return path


def _weights(n: int, dtype: type = np.float32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((6, 6)).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_finite_weights_pass_and_any_nan_or_inf_is_found(tmp_path: Path, dtype: type) -> None:
    ws = _weights(5, dtype)
    assert onnx_floats_finite(load_model(str(chain_onnx(tmp_path / "ok.onnx", ws))).model)
    for bad in (np.nan, np.inf, -np.inf):
        hurt = [w.copy() for w in ws]
        hurt[3][2, 4] = bad
        model = load_model(str(chain_onnx(tmp_path / "bad.onnx", hurt))).model
        assert not onnx_floats_finite(model)


def test_small_tensors_are_checked_in_batches(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(finite_check, "BATCH_BYTES", 400)  # a few 6x6 tensors a batch
    ws = _weights(40)
    assert onnx_floats_finite(load_model(str(chain_onnx(tmp_path / "ok.onnx", ws))).model)
    for i in (0, 7, 20, 39):  # in the first batch, later ones, the last (never flushed)
        hurt = [w.copy() for w in ws]
        hurt[i][0, 0] = np.nan
        assert not onnx_floats_finite(load_model(str(chain_onnx(tmp_path / "b.onnx", hurt))
                                                 ).model)


def test_the_quick_check_defers_when_it_cannot_tell(tmp_path: Path) -> None:
    ints = numpy_helper.from_array(np.arange(12, dtype=np.int8), "maybe_quantized")
    path = chain_onnx(tmp_path / "q.onnx", _weights(2), [ints])
    assert not onnx_floats_finite(load_model(str(path)).model)  # int8: maybe a weight
    shape = numpy_helper.from_array(np.array([1, 6], dtype=np.int64), "shape")
    path = chain_onnx(tmp_path / "s.onnx", _weights(2), [shape])
    assert onnx_floats_finite(load_model(str(path)).model)  # int64: never a weight
    listed = helper.make_tensor("listed", TensorProto.FLOAT, [2], [1.0, 2.0])  # float_data
    path = chain_onnx(tmp_path / "f.onnx", _weights(2), [listed])
    assert not onnx_floats_finite(load_model(str(path)).model)


@pytest.mark.parametrize("bad_tensors", [0, 1, 3, 14])
def test_warnings_are_those_of_the_full_statistics(tmp_path: Path, bad_tensors: int) -> None:
    ws = _weights(16)
    for i in range(bad_tensors):
        ws[i][i % 6, :2] = np.nan
        ws[i][5, 5] = np.inf if i % 2 else -np.inf
    variant = load_model(str(chain_onnx(tmp_path / "m.onnx", ws)))
    expected = weight_stats(variant).warnings()
    assert len(expected) == min(bad_tensors, 11)  # ten named, then a tally
    assert weight_warnings(variant) == expected


def test_inspect_without_stats_warns_but_measures_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main
    from workbench.core.graph import stats

    ws = _weights(3)
    ws[1][0, 0] = np.nan
    path = chain_onnx(tmp_path / "nan.onnx", ws)
    assert main(["inspect", str(path), "--json", "--stats"]) == 0
    with_stats = json.loads(capsys.readouterr().out)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("weight statistics measured without --stats")

    monkeypatch.setattr(stats, "stats_from_tensors", refuse)
    assert main(["inspect", str(path), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["warnings"] == with_stats["warnings"] == [
        "w1 holds 1 NaN value; statistics ignore it."]
    assert "weights" not in plain
    assert {k: v for k, v in with_stats.items() if k != "weights"} == plain
