"""torchvision's classification models load beside the CPU torch, whatever its extension."""

from __future__ import annotations

import pytest
import torch

from workbench.core.model.loaders import load_model
from workbench.core.model.torchvision_shim import import_torchvision


def test_torchvision_models_build_and_run() -> None:
    tv = import_torchvision()
    model = tv.models.shufflenet_v2_x0_5(weights=None).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    assert import_torchvision() is tv  # a second import is the same module


def test_an_architecture_named_in_torchvision_loads(tmp_path: pytest.TempPathFactory) -> None:
    from safetensors.torch import save_file

    tv = import_torchvision()
    path = tmp_path / "squeezenet.safetensors"  # type: ignore[operator]
    save_file(tv.models.SqueezeNet().state_dict(), str(path))
    variant = load_model(str(path), arch="torchvision.models:SqueezeNet", trust=True,
                         input_shape=(1, 3, 64, 64))
    assert sum(p.numel() for p in variant.model.parameters()) == 1_248_424
