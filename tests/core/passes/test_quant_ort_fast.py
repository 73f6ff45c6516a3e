"""Fast int8 from torch: the cached export is reused, progress moves through real steps,
cancel works between them, and the parent's reference outputs are computed once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken, Progress
from workbench.core.model import onnx_export, onnx_export_fast, reference_outputs
from workbench.core.session.session import Session

STEPS = ("Exporting to ONNX", "Pre-processing", "Quantizing", "Checking the int8 model",
         "Timing int8")


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the variants the TorchScript exporter really ran on; caches start empty."""
    calls: list[str] = []
    real = onnx_export_fast._export_torchscript

    def counting(variant: Any, *args: Any) -> Any:
        calls.append(variant.name)
        return real(variant, *args)

    monkeypatch.setattr(onnx_export_fast, "_export_torchscript", counting)
    onnx_export.clear_export_cache()
    reference_outputs.clear_reference_outputs()
    yield calls
    onnx_export.clear_export_cache()


def _session() -> tuple[Session, str]:
    session = Session(remember_recent=False)
    return session, session.run(session.open("zoo:resnet-mini")).id


def test_the_export_is_made_once_and_named_in_the_report(exports: list[str]) -> None:
    session, parent = _session()
    first = session.run(session.apply("quantize.ort_dynamic", {}, parent)).report.details
    assert exports == ["zoo:resnet-mini"]
    assert first["exporter"] == "torchscript"
    assert first["export_cached"] is False
    assert first["export"] == (f"Exported to ONNX with the torchscript exporter in "
                               f"{first['export_seconds']:.1f} s.")
    assert set(first["step_seconds"]) == {"export", "preprocess", "quantize", "verify",
                                          "measure"}
    again = session.run(session.apply("quantize.ort_dynamic", {"per_channel": False},
                                      parent)).report.details
    assert exports == ["zoo:resnet-mini"]  # the second pass reuses the export
    assert again["exporter"] == "torchscript"
    assert again["export_cached"] == "memory"
    assert again["export"].startswith("Reused the cached ONNX export (from memory in ")
    onnx_export.clear_export_cache()  # a new process, as far as the memory cache knows
    third = session.run(session.apply("quantize.ort_dynamic", {}, parent)).report.details
    assert exports == ["zoo:resnet-mini"]
    assert third["export_cached"] == "disk"


def test_progress_moves_through_the_steps_in_order(exports: list[str]) -> None:
    session, parent = _session()
    seen: list[Progress] = []
    session.run(session.apply("quantize.ort_dynamic", {}, parent), seen.append)
    messages = [p.message for p in seen]
    starts = [next(k for k, m in enumerate(messages) if m.startswith(step)) for step in STEPS]
    assert starts == sorted(starts)
    assert any(m.startswith("Exporting to ONNX: tracing with the TorchScript") for m in messages)
    assert any(m.startswith("Exporting to ONNX: checking the TorchScript graph")
               for m in messages)
    fractions = [p.fraction for p in seen if p.fraction is not None]
    assert fractions == sorted(fractions)
    assert len({round(f, 2) for f in fractions}) >= 8  # not stuck at one figure


def test_cancel_stops_between_steps(exports: list[str]) -> None:
    session, parent = _session()
    token = CancelToken()
    seen: list[str] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.message)
        if p.message.startswith("Quantizing"):
            token.cancel()

    with pytest.raises(CancelledError):
        session.run(session.apply("quantize.ort_dynamic", {}, parent), on_progress, token)
    assert seen[-1].startswith("Quantizing")  # nothing after the step that saw the cancel
    assert len(session.workspace) == 1  # no half-made variant


def test_fidelity_runs_on_the_checked_float_export(exports: list[str]) -> None:
    """Eager torch never runs the 32 fidelity samples: ONNX Runtime runs the float export,
    which was checked against torch, several times quicker."""
    session, parent = _session()
    model = session.entry(parent).analysis.variant.model
    batches: list[int] = []
    hook = model.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    try:
        report = session.run(session.apply("quantize.ort_dynamic", {"measure_latency": False},
                                           parent)).report.details
    finally:
        hook.remove()
    assert batches
    assert 32 not in batches
    assert report["fidelity"]["samples"] == 32
    assert report["fidelity"]["cosine"] > 0.99


def test_reference_outputs_are_memoised_per_variant_and_inputs() -> None:
    from workbench.core.model.sample_inputs import sample_inputs
    from workbench.core.model.zoo import build_zoo

    variant = build_zoo("resnet-mini")
    reference_outputs.clear_reference_outputs()
    calls: list[int] = []
    hook = variant.model.register_forward_hook(lambda m, args, out: calls.append(1))
    try:
        samples = sample_inputs(variant, 4, seed=5)
        first = reference_outputs.reference_outputs(variant, samples)
        again = reference_outputs.reference_outputs(variant, sample_inputs(variant, 4, seed=5))
        assert again is first
        assert not first.flags.writeable
        assert len(calls) == 1
        other = reference_outputs.reference_outputs(variant, sample_inputs(variant, 4, seed=6))
        assert other is not first
        assert len(calls) == 2
    finally:
        hook.remove()
    with torch.no_grad():
        direct = variant.model(samples[0][0]).numpy()
    np.testing.assert_allclose(first[:1], direct, atol=1e-5)


def test_exclude_names_from_convert_onnx_select_its_export(exports: list[str]) -> None:
    """Node names recorded from convert.onnx's (dynamo) export make the pass quantize that
    export rather than the TorchScript one, which names its nodes differently."""
    from workbench.core.model.zoo import build_zoo
    from workbench.core.passes.base import PassContext, parse_params
    from workbench.core.passes.quant_ort import OrtDynamicQuantize

    v = build_zoo("mlp")
    fast = {n.name for n in onnx_export.export_onnx(v, fast=True).model.graph.node}
    dynamo = {n.name for n in onnx_export.export_onnx(v).model.graph.node
              if n.op_type in ("Gemm", "MatMul")}
    name = sorted(dynamo - fast)[0]
    params = parse_params(OrtDynamicQuantize, {"exclude": [name], "measure_latency": False})
    out = OrtDynamicQuantize().run(v, params, PassContext())
    assert out.details["exporter"] == "dynamo"
    assert out.details["excluded"] == [name]
    assert out.details["export_cached"] == "memory"
