"""The peer suite: real architectures nobody here wrote, through every format and pass.

torchvision and timm models with random weights are opened as ONNX, as a `.pt2` and as a
safetensors state dict with `--arch`; their MACs are checked against FlopCounterMode, and
`prune.structured` 0.5, `quantize.ort_dynamic`, `quantize.auto` and `convert.onnx` run on
them. Outside the default run: `pytest -m peers tests/peers -s` (it prints a results table).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.graph.macs import flop_counter_macs
from workbench.core.model.onnx_export import export_onnx, ort_parity
from workbench.core.model.torchvision_shim import import_torchvision
from workbench.core.session.session import Session

pytestmark = pytest.mark.peers

# name, builder ("tv:" torchvision.models, "timm:"), input size, arch kwargs
ARCHS: list[tuple[str, str, int, dict[str, Any]]] = [
    ("resnet18", "tv:resnet18", 96, {}),
    ("resnet50", "tv:resnet50", 96, {}),
    ("mobilenet_v2", "tv:mobilenet_v2", 96, {}),
    ("mobilenet_v3_small", "tv:mobilenet_v3_small", 96, {}),
    ("efficientnet_b0", "tv:efficientnet_b0", 96, {}),
    ("regnet_y_400mf", "tv:regnet_y_400mf", 96, {}),
    ("shufflenet_v2_x1_0", "tv:shufflenet_v2_x1_0", 96, {}),
    ("squeezenet1_1", "tv:squeezenet1_1", 96, {}),
    ("densenet121", "tv:densenet121", 96, {}),
    ("googlenet", "tv:googlenet", 96, {"aux_logits": False, "init_weights": False}),
    ("deit_tiny", "timm:deit_tiny_patch16_224", 224, {}),
    ("mobilevit_xxs", "timm:mobilevit_xxs", 256, {}),
    ("ghostnet_100", "timm:ghostnet_100", 96, {}),
]
RESULTS: dict[str, dict[str, str]] = {}


def _build(builder: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    kind, _, name = builder.partition(":")
    if kind == "tv":
        model = getattr(import_torchvision().models, name)(weights=None, **kwargs)
    else:
        timm = pytest.importorskip("timm")
        model = timm.create_model(name, pretrained=False, **kwargs)
    return model.eval()


def _arch_spec(builder: str, kwargs: dict[str, Any]) -> str:
    kind, _, name = builder.partition(":")
    if kind == "timm":
        kwargs = {"model_name": name, "pretrained": False, **kwargs}
    base = f"torchvision.models:{name}" if kind == "tv" else "timm:create_model"
    args = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in kwargs.items())
    return base + (f"?{args}" if args else "")


@pytest.fixture(scope="module")
def peers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


def _record(name: str, key: str, value: str) -> None:
    RESULTS.setdefault(name, {})[key] = value


def _step(name: str, key: str, fn: Callable[[], str]) -> None:
    try:
        _record(name, key, fn())
    except Exception as exc:
        _record(name, key, f"FAIL {type(exc).__name__}")
        raise


@pytest.mark.parametrize(("name", "builder", "size", "kwargs"), ARCHS,
                         ids=[a[0] for a in ARCHS])
def test_peer(name: str, builder: str, size: int, kwargs: dict[str, Any],
              peers_dir: Path, perf_figure: Callable[[str], None]) -> None:
    from safetensors.torch import save_file

    model = _build(builder, kwargs)
    x = torch.randn(1, 3, size, size)
    params = sum(p.numel() for p in model.parameters())
    reference = flop_counter_macs(model, (x,))
    folder = peers_dir / name
    folder.mkdir(exist_ok=True)
    pt2 = folder / f"{name}.pt2"
    torch.export.save(torch.export.export(model, (x,)), pt2)
    weights = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))

    session = Session(remember_recent=False)
    shape = (1, 3, size, size)
    torch_entry = session.run(session.open(str(weights), arch=_arch_spec(builder, kwargs),
                                           trust=True, input_shape=shape))
    onnx_path = folder / f"{name}.onnx"
    session.run(session.export(str(onnx_path), torch_entry.id))
    opened = {
        "pt2": session.run(session.open(str(pt2))),
        "onnx": session.run(session.open(str(onnx_path))),
        "state dict": torch_entry,
    }
    ratios = []
    for fmt, entry in opened.items():
        graph = entry.analysis.graph
        if fmt != "onnx":  # the ONNX export may fold BatchNorm into convolutions
            assert graph.parameters == params, f"{fmt}: parameters"
        ratios.append(graph.macs / reference)
    _record(name, "MACs / FCM", " ".join(f"{r:.3f}" for r in ratios))
    assert all(abs(r - 1) <= 0.02 for r in ratios), ratios

    editable = torch_entry

    def prune() -> str:
        result = session.run(session.apply("prune.structured", {"ratio": 0.5},
                                           editable.id))
        ratio = result.report.after["macs"] / result.report.before["macs"]
        assert ratio <= 0.4, f"MACs only down to {ratio:.2f}x"
        session.run(session.export(str(folder / "pruned.onnx"), result.variant.id))
        pruned = result.variant
        parity = ort_parity(pruned, export_onnx(pruned).model, pruned.example_inputs())
        assert parity < 1e-4, f"ONNX Runtime differs from torch by {parity:.1e}"
        return f"{ratio:.2f}x MACs, parity {parity:.0e}"

    def quant(pass_name: str) -> Callable[[], str]:
        def run() -> str:
            result = session.run(session.apply(pass_name, {}, torch_entry.id))
            fid = result.report.details.get("fidelity") or {}
            latency = result.report.details.get("latency") or {}
            speed = f" {latency['speedup']:.2f}x" if latency.get("speedup") else ""
            return f"cos {fid.get('cosine', float('nan')):.4f}{speed}"
        return run

    def convert() -> str:
        result = session.run(session.apply("convert.onnx", {}, torch_entry.id))
        parity = result.report.details.get("parity_max_abs_diff",
                                           result.report.details.get("parity"))
        return f"parity {parity:.1e}" if isinstance(parity, float) else "ok"

    failures = []
    for key, fn in (("prune.structured 0.5", prune), ("ort_dynamic", quant("quantize.ort_dynamic")),
                    ("quantize.auto", quant("quantize.auto")), ("convert.onnx", convert)):
        try:
            _step(name, key, fn)
        except Exception as exc:
            failures.append(f"{key}: {type(exc).__name__}: {str(exc)[:200]}")
    perf_figure(f"peers {name:<20} " + " | ".join(f"{k}: {v}" for k, v in
                                                  RESULTS[name].items()))
    assert not failures, failures


def test_zz_print_the_table(perf_figure: Callable[[str], None]) -> None:
    """The results as a Markdown table (the README's peer table comes from it)."""
    if not RESULTS:
        pytest.skip("no peer ran")
    keys = ["MACs / FCM", "prune.structured 0.5", "ort_dynamic", "quantize.auto",
            "convert.onnx"]
    perf_figure("| model | " + " | ".join(keys) + " |")
    perf_figure("|---" * (len(keys) + 1) + "|")
    for name, row in RESULTS.items():
        perf_figure(f"| {name} | " + " | ".join(row.get(k, "–") for k in keys) + " |")


importlib.import_module("safetensors")  # a dependency of the suite, fail early if missing
