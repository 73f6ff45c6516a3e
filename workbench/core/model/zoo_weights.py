"""Trained weights shipped with the zoo: where they are, what they learnt, how they load.

Each `zoo_weights/STEM.safetensors` carries its provenance in the safetensors header
(dataset, input shape, class count, validation and test accuracy, the recipe that made it);
the recipe sits beside it as `STEM.yaml`. `tools/train_zoo_weights.py` remakes both with the
project's own trainer (`workbench run STEM.yaml`) at a fixed seed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import CorruptModelError

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).with_name("zoo_weights")


@dataclass(frozen=True)
class TrainedWeights:
    """One shipped weights file and what it was trained on."""

    path: Path
    dataset: str
    input_shape: tuple[int, ...]
    num_classes: int
    val_accuracy: float
    test_accuracy: float
    recipe: str

    def label(self) -> str:
        """Short provenance for lists: `digits, 98.9% val`."""
        return f"{self.dataset}, {self.val_accuracy:.1%} val"

    def fits(self, input_shape: tuple[int, ...], num_classes: int) -> bool:
        """Whether a model built for `input_shape` (batch first) and `num_classes` is the one
        these weights were trained as (the batch size does not matter)."""
        return (tuple(input_shape[1:]) == self.input_shape[1:]
                and num_classes == self.num_classes)


@functools.cache
def trained_weights(stem: str) -> TrainedWeights | None:
    """The shipped weights `stem` (such as `resnet-mini-digits`), or None if not installed."""
    path = WEIGHTS_DIR / f"{stem}.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        return TrainedWeights(
            path=path, dataset=meta["dataset"],
            input_shape=tuple(int(d) for d in meta["input_shape"].split(",")),
            num_classes=int(meta["num_classes"]), val_accuracy=float(meta["val_accuracy"]),
            test_accuracy=float(meta["test_accuracy"]), recipe=meta["recipe"])
    except Exception as exc:  # a damaged install: the zoo still works, untrained
        log.warning("Ignoring the zoo weights %s: %s", path.name, exc)
        return None


def load_trained(model: Any, weights: TrainedWeights) -> None:
    """Copy `weights` into `model` (stored as fp16 or fp32; loaded as the model's dtypes)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights.path))
    except Exception as exc:
        raise CorruptModelError(f"The zoo weights {weights.path.name} are unreadable: "
                                f"{exc}") from exc
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
