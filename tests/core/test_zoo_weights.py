"""The zoo's shipped weights: zoo:resnet-mini and zoo:lenet5 open trained on digits (>= 97% on
its validation split, as their labels say), and the untrained models stay one option away."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from workbench.cli import main
from workbench.core.errors import InvalidParameterError
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import ZOO, build_zoo
from workbench.core.session.recipe import Recipe
from workbench.core.session.session import Session

TRAINED = ["resnet-mini", "lenet5"]


@pytest.mark.parametrize("name", TRAINED)
def test_trained_zoo_models_score_on_the_digits_validation_split(name: str) -> None:
    session = Session(remember_recent=False)
    entry = session.run(session.open(f"zoo:{name}"))
    val = session.run(session.evaluate("digits", entry.id, split="val"))
    weights = ZOO[name].trained()
    assert weights is not None
    assert weights.dataset == "digits"
    assert val.accuracy >= 0.97
    assert val.accuracy == pytest.approx(weights.val_accuracy, abs=5e-4)  # the label is true
    test = session.run(session.evaluate("digits", entry.id, split="test"))
    assert test.accuracy == pytest.approx(weights.test_accuracy, abs=5e-4)
    assert entry.analysis.variant.metadata["trained_on"] == "digits"
    assert entry.analysis.variant.source == f"zoo:{name}"


def test_the_untrained_model_is_one_option_away() -> None:
    session = Session(remember_recent=False)
    entry = session.run(session.open("zoo:resnet-mini?trained=false"))
    untrained = entry.analysis.variant
    assert untrained.source == "zoo:resnet-mini?trained=false"  # recipes replay it untrained
    assert Recipe.of(untrained).source == "zoo:resnet-mini?trained=false"
    assert "trained_on" not in untrained.metadata
    seeded = build_zoo("resnet-mini", trained=False).model.state_dict()
    trained = build_zoo("resnet-mini").model.state_dict()
    own = untrained.model.state_dict()
    assert all(torch.equal(own[k], seeded[k]) for k in own)
    assert not torch.equal(own["fc.weight"], trained["fc.weight"])
    accuracy = session.run(session.evaluate("digits", entry.id, split="val")).accuracy
    assert accuracy < 0.5  # near chance: nothing learnt


def test_other_shapes_and_class_counts_build_untrained() -> None:
    small = build_zoo("resnet-mini", input_shape=(1, 1, 16, 16))
    fewer = build_zoo("lenet5", num_classes=3)
    assert "trained_on" not in small.metadata
    assert "trained_on" not in fewer.metadata
    assert torch.equal(small.model.fc.weight,
                       build_zoo("resnet-mini", trained=False).model.fc.weight)
    batched = build_zoo("lenet5", input_shape=(4, 1, 28, 28))  # the batch size does not matter
    assert batched.metadata["trained_on"] == "digits"


@pytest.mark.parametrize(("spec", "words"), [
    ("zoo:resnet-mini?trained=true", "takes 1×32×32 inputs"),  # with a 16×16 shape below
    ("zoo:mlp?trained=true", "ships no trained weights"),
    ("zoo:lenet5?colour=red", "one option"),
    ("zoo:lenet5?trained=maybe", "one option"),
])
def test_zoo_options_are_checked(spec: str, words: str) -> None:
    with pytest.raises(InvalidParameterError, match=words):
        build_zoo(spec, input_shape=(1, 1, 16, 16) if "resnet" in spec else None)


def test_the_shipped_file_is_a_plain_state_dict_of_the_architecture() -> None:
    weights = ZOO["lenet5"].trained()
    assert weights is not None
    joined = load_model(str(weights.path), arch="lenet5").model.state_dict()
    built = build_zoo("lenet5").model.state_dict()
    assert all(torch.equal(joined[k], built[k]) for k in built)


def test_the_zoo_lists_say_what_is_trained(capsys: Any) -> None:
    assert "(trained: digits, " in ZOO["resnet-mini"].label()
    assert "trained" not in ZOO["mlp"].label()
    assert main(["zoo", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["zoo:lenet5"]["trained_on"] == "digits"
    assert rows["zoo:lenet5"]["val_accuracy"] >= 0.97
    assert rows["zoo:mobilenet-mini"]["trained_on"] is None
    assert rows["zoo:minilm"]["pretrained"] is True
    assert main(["zoo"]) == 0
    text = capsys.readouterr().out
    assert "trained: digits" in text
    assert "?trained=false" in text
