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


def test_a_model_package_that_imports_torchvision_loads_in_a_fresh_process(
        tmp_path: pytest.TempPathFactory) -> None:
    """timm imports torchvision: `--arch timm:create_model?...` works from a cold start."""
    import subprocess
    import sys

    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    path = tmp_path / "r10t.safetensors"  # type: ignore[operator]
    save_file(timm.create_model("resnet10t", pretrained=False).state_dict(), str(path))
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "inspect", str(path), "--trust", "--json",
         "--arch", "timm:create_model?model_name=resnet10t", "--input-shape", "1,3,32,32"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert '"parameters": 5435488' in done.stdout
