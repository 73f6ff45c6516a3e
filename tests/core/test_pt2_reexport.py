"""A model opened from a `.pt2` exports again: to ONNX (for ORT benchmarks and int8) and out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from workbench.core.model.loaders import exported_program_of, load_model
from workbench.core.model.onnx_export import clear_export_cache, export_onnx
from workbench.core.model.runtime import run_variant
from workbench.core.model.zoo import build_zoo


def test_a_pt2_variant_exports_to_onnx_and_matches(tmp_path: Path) -> None:
    source = build_zoo("resnet-mini")
    x = source.example_inputs()
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(source.model.eval(), x), path)
    variant = load_model(str(path))
    assert exported_program_of(variant.model) is not None
    clear_export_cache()
    exported = export_onnx(variant)
    import onnxruntime as ort

    session = ort.InferenceSession(exported.model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x[0].numpy()})[0]
    with torch.no_grad():
        want = source.model(*x).numpy()
    assert np.abs(got - want).max() < 1e-4
    assert np.allclose(run_variant(variant, x), want, atol=1e-4)
    copy = torch.nn.Module()
    assert exported_program_of(copy) is None  # only the loaded module is paired
