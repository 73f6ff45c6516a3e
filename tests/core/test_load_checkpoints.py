"""Real checkpoints: factory functions, constructor arguments and non-strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.core import errors
from workbench.core.model.arch_spec import parse_arch, parse_arch_kwargs
from workbench.core.model.loaders import load_model
from workbench.core.model.torchvision_shim import import_torchvision
from workbench.core.session.recipe import Recipe

GOOGLENET = "torchvision.models:googlenet"
AUX_KEYS = {f"{aux}.{part}" for aux in ("aux1", "aux2") for part in (
    "conv.conv.weight", "conv.bn.weight", "conv.bn.bias", "conv.bn.running_mean",
    "conv.bn.running_var", "conv.bn.num_batches_tracked", "fc1.weight", "fc1.bias",
    "fc2.weight", "fc2.bias")}


@pytest.fixture(scope="module")
def googlenet_with_aux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A googlenet state dict saved with its two auxiliary heads."""
    tv = import_torchvision()
    torch.manual_seed(0)
    model = tv.models.googlenet(weights=None, aux_logits=True, init_weights=False,
                                num_classes=10)
    path = tmp_path_factory.mktemp("ckpt") / "googlenet.pt"
    torch.save(model.state_dict(), path)
    return path


def test_aux_heads_are_listed_when_not_strict(googlenet_with_aux: Path) -> None:
    arch = f"{GOOGLENET}?aux_logits=false&num_classes=10&init_weights=false"
    with pytest.raises(errors.ArchitectureMismatchError,
                       match=r"20 unexpected key.*--strict false.*--arch-kwargs"):
        load_model(str(googlenet_with_aux), arch=arch, trust=True)
    variant = load_model(str(googlenet_with_aux), arch=arch, trust=True, strict=False)
    assert not hasattr(variant.model, "aux1") or variant.model.aux1 is None
    (warning,) = variant.metadata["load_warnings"]
    assert warning.startswith("20 checkpoint tensor(s) not in the model were ignored")
    assert {k.strip() for k in warning.split(": ", 1)[1].split(",")} == AUX_KEYS
    saved = torch.load(googlenet_with_aux, weights_only=True)
    for name, tensor in variant.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert variant.metadata["load_options"] == {
        "arch": GOOGLENET, "trust": True, "strict": False,
        "arch_kwargs": {"aux_logits": False, "num_classes": 10, "init_weights": False}}


def test_aux_heads_load_strictly_when_built(googlenet_with_aux: Path) -> None:
    variant = load_model(str(googlenet_with_aux), arch=f"{GOOGLENET}?aux_logits=true",
                         arch_kwargs={"num_classes": 10, "init_weights": False}, trust=True)
    assert "load_warnings" not in variant.metadata
    assert variant.model.aux1 is not None
    with torch.no_grad():
        assert variant.model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_an_import_path_still_needs_trust(googlenet_with_aux: Path) -> None:
    with pytest.raises(errors.TrustRequiredError, match="import path"):
        load_model(str(googlenet_with_aux), arch=f"{GOOGLENET}?aux_logits=true")


def test_a_factory_function(tmp_path: Path) -> None:
    tv = import_torchvision()
    path = tmp_path / "r18.pt"
    torch.save(tv.models.resnet18(weights=None, num_classes=7).state_dict(), path)
    variant = load_model(str(path), arch="torchvision.models:resnet18",
                         arch_kwargs={"num_classes": 7}, trust=True, input_shape=(1, 3, 32, 32))
    assert variant.model.fc.out_features == 7
    with pytest.raises(errors.ArchitectureMismatchError, match=r"shape mismatch.*fc\.weight"):
        load_model(str(path), arch="torchvision.models:resnet18", trust=True)
    variant = load_model(str(path), arch="torchvision.models:resnet18", trust=True,
                         strict=False)
    assert variant.metadata["load_warnings"] == [
        "2 checkpoint tensor(s) of the wrong shape were ignored: fc.weight (7, 512) vs "
        "(1000, 512), fc.bias (7,) vs (1000,)"]
    with pytest.raises(errors.ArchitectureMismatchError, match="cannot be built with wings"):
        load_model(str(path), arch="torchvision.models:resnet18?wings=2", trust=True)
    with pytest.raises(errors.ArchitectureMismatchError, match="not a model class"):
        load_model(str(path), arch="json:JSONDecoder", trust=True)  # a class, not a model
    with pytest.raises(errors.ArchitectureMismatchError, match="returned a str"):
        load_model(str(path), arch="os.path:basename?p=x", trust=True)


def test_nothing_matching_is_refused_even_when_not_strict(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"a.weight": torch.zeros(2)}, path)
    with pytest.raises(errors.ArchitectureMismatchError, match="none of its 1 tensors"):
        load_model(str(path), arch="mlp", strict=False)


def test_zoo_models_take_no_constructor_arguments(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(errors.InvalidParameterError, match="takes no constructor arguments"):
        load_model(str(path), arch="mlp?width=3")


def test_inline_arguments_are_json_scalars() -> None:
    name, kwargs = parse_arch("pkg.mod:f?a=true&b=null&c=3&d=0.5&e=relu&f=&g=-2e3")
    assert name == "pkg.mod:f"
    assert kwargs == {"a": True, "b": None, "c": 3, "d": 0.5, "e": "relu", "f": "", "g": -2000.0}
    assert parse_arch("mlp") == ("mlp", {})


@pytest.mark.parametrize(("arch", "message"), [
    ("pkg:f?a", "is not key=value"),
    ("pkg:f?a=1&a=2", "given twice"),
    ("pkg:f?1a=2", "not an argument name"),
    ("?a=1", "names no architecture"),
    ("pkg:f?a=NaN", "not a finite number"),
    ("pkg:f?a=" + "x" * 1001, "longer than 1000"),
    ("pkg:f?" + "&".join(f"k{i}=1" for i in range(33)), "at most 32"),
])
def test_bad_inline_arguments(arch: str, message: str) -> None:
    with pytest.raises(errors.InvalidParameterError, match=message):
        parse_arch(arch)


@pytest.mark.parametrize(("text", "message"), [
    ("{aux_logits: false}", "is not JSON"),
    ('["aux_logits"]', "must be an object"),
    ('{"a": [1, 2]}', "not a list"),
    ('{"a": {"b": 1}}', "not a object"),
    ('{"not a name": 1}', "not an argument name"),
    ("x" * 10_001, "longer than 10000"),
])
def test_bad_arch_kwargs_json(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidParameterError, match=message):
        parse_arch_kwargs(text)


def test_inline_and_json_arguments_must_agree(googlenet_with_aux: Path) -> None:
    with pytest.raises(errors.InvalidParameterError, match="aux_logits is given twice"):
        load_model(str(googlenet_with_aux), arch=f"{GOOGLENET}?aux_logits=true",
                   arch_kwargs={"aux_logits": False}, trust=True)


def test_recipe_round_trip_keeps_arch_kwargs_and_strict(googlenet_with_aux: Path,
                                                         tmp_path: Path) -> None:
    variant = load_model(str(googlenet_with_aux), arch=f"{GOOGLENET}?aux_logits=false",
                         arch_kwargs={"num_classes": 10, "init_weights": False}, trust=True,
                         strict=False)
    recipe = Recipe.of(variant)
    expected = {"arch": GOOGLENET, "strict": False,
                "arch_kwargs": {"aux_logits": False, "num_classes": 10, "init_weights": False}}
    assert recipe.load == expected
    for name in ("r.yaml", "r.json"):
        recipe.save(tmp_path / name)
        again = Recipe.load_file(tmp_path / name)
        assert again.load == expected
    replayed = again.replay(trust=True).variant
    assert replayed.metadata["load_warnings"] == variant.metadata["load_warnings"]


@pytest.mark.parametrize(("load", "message"), [
    ({"arch_kwargs": {"a": [1]}}, "load.arch_kwargs.a"),
    ({"arch_kwargs": {"bad name": 1}}, "load.arch_kwargs"),
    ({"arch_kwargs": "aux_logits=false"}, "load.arch_kwargs"),
    ({"strict": "no"}, "load.strict"),
])
def test_recipe_schema_checks_the_load_section(load: dict, message: str) -> None:
    data = {"workbench_recipe": 1, "source": "m.pt", "load": {"arch": "mlp", **load}}
    with pytest.raises(errors.InvalidParameterError, match=message):
        Recipe.from_json(data)


def test_cli_inspect_with_arch_kwargs_and_strict_false(googlenet_with_aux: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    args = ["inspect", str(googlenet_with_aux), "--arch", GOOGLENET, "--trust",
            "--arch-kwargs", '{"aux_logits": false, "num_classes": 10, "init_weights": false}']
    assert main(args) == 2  # strict by default: the aux heads do not fit
    err = capsys.readouterr().err
    assert "20 unexpected key(s)" in err
    assert "--strict false" in err
    assert main([*args, "--strict", "false", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (warning,) = data["load_warnings"]
    assert "aux1.fc2.bias" in warning
    assert "aux2.conv.conv.weight" in warning
    assert main([*args, "--strict", "false"]) == 0
    assert "load warning: 20 checkpoint tensor(s) not in the model were ignored" in (
        capsys.readouterr().out)
    assert main([*args[:-1], "{aux_logits: false}"]) == 2
    assert "--arch-kwargs is not JSON" in capsys.readouterr().err
    assert main([*args, "--strict", "maybe"]) == 2
    assert "'maybe' is not true or false" in capsys.readouterr().err
