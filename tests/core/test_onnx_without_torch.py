"""Opening and inspecting an ONNX file never imports torch or onnxruntime (checked in a fresh
process, since this test process has imported them already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workbench.core.graph.stats import stats_from_tensors, weight_stats
from workbench.core.model.loaders import load_model

REPO = Path(__file__).resolve().parents[2]
DENSENET = Path(onnx.__file__).parent / "backend/test/data/light/light_densenet121.onnx"

CHECK = """
import contextlib, io, json, sys
from workbench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["inspect", sys.argv[1], "--json"])
report = json.loads(out.getvalue())
print(json.dumps({"code": code, "nodes": report["nodes"], "layers": len(report["layers"]),
                  "heavy": sorted(m for m in ("torch", "onnxruntime") if m in sys.modules)}))
"""


def _inspect_in_fresh_process(model: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK, str(model)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not DENSENET.exists(), reason="onnx's light densenet121 is not installed")
def test_inspect_onnx_imports_neither_torch_nor_onnxruntime() -> None:
    result = _inspect_in_fresh_process(DENSENET)
    assert (result["code"], result["nodes"], result["layers"]) == (0, 1746, 1746)
    assert result["heavy"] == []


def test_fp16_initializers_stay_float16_and_match_float32(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((32, 300)).astype(np.float16)
    w[3, :7] = 0
    init = numpy_helper.from_array(w, "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 300])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 32])
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
                              "g", [x], [y], [init])
    path = tmp_path / "fp16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    variant = load_model(str(path))
    stats = weight_stats(variant)
    s = stats.tensors["w"]
    ref = stats_from_tensors({"w": w.astype(np.float32)}).tensors["w"]
    assert (s.min, s.max, s.sparsity) == (ref.min, ref.max, ref.sparsity)
    assert s.mean == pytest.approx(ref.mean, abs=1e-6)
    assert s.std == pytest.approx(ref.std, rel=1e-6)
    np.testing.assert_array_equal(s.hist_counts, ref.hist_counts)
    assert s.channel_min is not None
    np.testing.assert_array_equal(s.channel_min, w.astype(np.float32).min(axis=1))
    assert s.sparsity == pytest.approx(7 / w.size)


def test_big_tensors_on_threads_match_numpy() -> None:
    """Tensors above the threading threshold (and rows longer than a chunk) give numpy's
    figures, in the order they were given."""
    rng = np.random.default_rng(6)
    weights = {"conv": rng.standard_normal((64, 64, 9, 9)).astype(np.float32),
               "long": rng.uniform(-3, 1, (2, 200_000)).astype(np.float32),
               "vec": rng.standard_normal(300_000)}  # float64 stays float64
    weights["conv"][weights["conv"] > 2.5] = 0
    stats = stats_from_tensors(weights, bins=50)
    assert list(stats.tensors) == ["conv", "long", "vec"]
    for name, a in weights.items():
        s = stats.tensors[name]
        assert (s.min, s.max) == (a.min(), a.max())
        assert s.mean == pytest.approx(a.mean(), abs=1e-6)
        assert s.std == pytest.approx(a.std(), rel=1e-5)
        assert s.sparsity == np.mean(a == 0)
        counts, _ = np.histogram(a, bins=50, range=(a.min(), a.max()))
        assert np.abs(s.hist_counts - counts).sum() <= 4
        assert s.hist_counts.sum() == a.size
        if a.ndim >= 2:
            flat = a.reshape(a.shape[0], -1)
            np.testing.assert_array_equal(s.channel_min, flat.min(axis=1))
            np.testing.assert_array_equal(s.channel_max, flat.max(axis=1))
    both = np.concatenate([a.reshape(-1) for a in weights.values()])
    assert stats.summary.mean == pytest.approx(both.mean(), abs=1e-6)
    assert stats.summary.std == pytest.approx(both.std(), rel=1e-5)


def test_bfloat16_initializers_are_measured_and_shapes_are_not(tmp_path: Path) -> None:
    import ml_dtypes

    w = np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10)
    init = numpy_helper.from_array(w.astype(ml_dtypes.bfloat16), "w")
    shape = numpy_helper.from_array(np.array([1, 4], np.int64), "shape")
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 4])
    nodes = [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1),
             helper.make_node("Reshape", ["g", "shape"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], [init, shape])
    path = tmp_path / "bf16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    stats = weight_stats(load_model(str(path)))
    assert list(stats.tensors) == ["w"]
    s = stats.tensors["w"]
    assert (s.min, s.max, s.numel) == (-1.0, 1.0, 40)
    assert s.mean == pytest.approx(0.0, abs=1e-3)
