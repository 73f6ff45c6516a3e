"""The int8 passes' disk caches: the pre-processed model and the parent's reference outputs
are made once and reused by a later run (or process), and a changed input misses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from tests.conftest import make_onnx_mlp
from workbench.core.model import reference_outputs
from workbench.core.passes import quant_preprocess
from workbench.core.session.session import Session


@pytest.fixture
def preprocess_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source paths ONNX Runtime's quant_pre_process really ran on."""
    from onnxruntime.quantization import shape_inference

    runs: list[str] = []
    real = shape_inference.quant_pre_process

    def counting(src: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(str(src))
        return real(src, *args, **kwargs)

    monkeypatch.setattr(shape_inference, "quant_pre_process", counting)
    return runs


def _mlp(tmp_path: Path, hidden: int = 16) -> Any:
    return onnx.load(str(make_onnx_mlp(tmp_path / f"mlp{hidden}.onnx", hidden=hidden)))


def test_the_preprocessed_model_is_reused_from_disk(tmp_path: Path,
                                                    preprocess_runs: list[str]) -> None:
    model = _mlp(tmp_path)
    first_dir, again_dir = tmp_path / "first", tmp_path / "again"
    first_dir.mkdir()
    again_dir.mkdir()
    first, info = quant_preprocess.preprocess(model, str(first_dir), [])
    assert info["cached"] is False
    assert len(preprocess_runs) == 1
    again, info_again = quant_preprocess.preprocess(model, str(again_dir), [])
    assert len(preprocess_runs) == 1  # not run again
    assert info_again == {**info, "cached": True}
    assert Path(again).parent == again_dir
    assert onnx.load(again).SerializeToString() == onnx.load(first).SerializeToString()


def test_a_changed_model_or_exclude_misses(tmp_path: Path, preprocess_runs: list[str]) -> None:
    model = _mlp(tmp_path)
    quant_preprocess.preprocess(model, str(tmp_path), [])
    assert len(preprocess_runs) == 1
    other = _mlp(tmp_path, hidden=12)  # another variant: other bytes
    _, info = quant_preprocess.preprocess(other, str(tmp_path), [])
    assert info["cached"] is False
    assert len(preprocess_runs) == 2
    keep = ["/fc1/MatMul"]  # another exclude: the graph may keep the node unfused
    _, info = quant_preprocess.preprocess(model, str(tmp_path), keep)
    assert info["cached"] is False
    assert quant_preprocess.preprocess_key(model, keep) != quant_preprocess.preprocess_key(
        model, [])
    _, info = quant_preprocess.preprocess(model, str(tmp_path), keep)
    assert info["cached"] is True
    assert quant_preprocess.preprocess_key(model, keep * 2) == quant_preprocess.preprocess_key(
        model, keep)  # the same set of names: the same key


def test_the_pass_reports_the_cached_preprocessing(tmp_path: Path,
                                                   preprocess_runs: list[str]) -> None:
    session = Session(remember_recent=False)
    parent = session.run(session.open(str(make_onnx_mlp(tmp_path / "m.onnx")))).id
    params = {"measure_latency": False}
    first = session.run(session.apply("quantize.ort_dynamic", params, parent)).report.details
    runs = len(preprocess_runs)
    again = session.run(session.apply("quantize.ort_dynamic", {**params, "per_channel": False},
                                      parent)).report.details
    assert first["preprocess"]["cached"] is False
    assert again["preprocess"] == {**first["preprocess"], "cached": True}
    assert len(preprocess_runs) == runs
    assert again["quantized_nodes"] == first["quantized_nodes"]


def test_reference_outputs_are_read_back_by_a_later_process(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from workbench.core.model.loaders import load_model
    from workbench.core.model.runtime import clear_session_cache
    from workbench.core.model.sample_inputs import sample_inputs

    runs: list[int] = []
    real = reference_outputs.run_samples

    def counting(run: Any, samples: Any) -> Any:
        runs.append(len(samples))
        return real(run, samples)

    monkeypatch.setattr(reference_outputs, "run_samples", counting)
    variant = load_model(str(make_onnx_mlp(tmp_path / "m.onnx")))
    samples = sample_inputs(variant, 8, seed=3)
    reference_outputs.clear_reference_outputs()
    first = reference_outputs.reference_outputs(variant, samples)
    assert runs == [8]
    reference_outputs.clear_reference_outputs()  # a later process: only the disk is left
    clear_session_cache()
    again = reference_outputs.reference_outputs(variant, samples)
    assert runs == [8]
    assert not again.flags.writeable
    np.testing.assert_array_equal(again, first)
    reference_outputs.clear_reference_outputs()
    other = reference_outputs.reference_outputs(variant, sample_inputs(variant, 8, seed=4))
    assert runs == [8, 8]  # other inputs: computed
    assert not np.array_equal(other, first)
    changed = load_model(str(make_onnx_mlp(tmp_path / "m12.onnx", hidden=12)))
    reference_outputs.reference_outputs(changed, samples)
    assert runs == [8, 8, 8]  # another model: computed


def test_a_damaged_reference_entry_is_recomputed(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.model import artifact_cache
    from workbench.core.model.loaders import load_model
    from workbench.core.model.sample_inputs import sample_inputs

    variant = load_model(str(make_onnx_mlp(tmp_path / "m.onnx")))
    samples = sample_inputs(variant, 4, seed=3)
    reference_outputs.clear_reference_outputs()
    first = reference_outputs.reference_outputs(variant, samples)
    key = reference_outputs.disk_key(variant, reference_outputs.inputs_digest(samples))
    path = artifact_cache.entry_path(key)
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    reference_outputs.clear_reference_outputs()
    again = reference_outputs.reference_outputs(variant, samples)
    np.testing.assert_allclose(again, first, rtol=1e-6)
    assert artifact_cache.load_onnx(key) is not None  # stored afresh


def test_torch_outputs_go_to_disk_only_once_the_content_hash_is_known() -> None:
    from onnx import numpy_helper

    from workbench.core.model import artifact_cache
    from workbench.core.model.sample_inputs import sample_inputs
    from workbench.core.model.zoo import build_zoo

    variant = build_zoo("mlp")
    samples = sample_inputs(variant, 4, seed=2)
    digest = reference_outputs.inputs_digest(samples)
    assert reference_outputs.disk_key(variant, digest) is None  # not hashed just for this
    assert variant.content_hash is not None  # an export computes it
    key = reference_outputs.disk_key(variant, digest)
    assert key is not None
    reference_outputs.clear_reference_outputs()
    first = reference_outputs.reference_outputs(variant, samples)
    found = artifact_cache.load_onnx(key)
    assert found is not None
    np.testing.assert_array_equal(numpy_helper.to_array(found[0].graph.initializer[0]),
                                  first)
