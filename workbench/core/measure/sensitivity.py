"""Per-layer sensitivity: how much the model suffers when one layer alone is degraded.

For every prunable layer (the Conv / Linear modules that `prune.magnitude` would touch,
named as its `ignore` parameter takes them) a copy of the model gets that layer's weight
magnitude-pruned at `ratio` (exactly what `prune.magnitude` with scope "layer" does to it),
or fake-quantized to int8 (symmetric, per output channel, levels -127..127), and is scored:

* `accuracy`: top-1 accuracy on a dataset split (`training.evaluate`); drop = before − after.
* `loss`: the loss on that split (regression data); drop = after − before.
* `fidelity`: mean cosine similarity of the outputs to the untouched model's on real sample
  inputs (digits where they fit, else seeded random ones); drop = 1 − cosine.

`metric="auto"` takes accuracy for a classification dataset that fits the model, loss for a
regression one, and fidelity without a (fitting) dataset. One deep copy of the model is
made; each layer's weight is restored after it is scored. The input variant never changes.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.events import SensitivityRowDone
from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.model.variant import Variant, set_mode
from workbench.core.train.data import Dataset

log = logging.getLogger(__name__)

METHODS = ("prune", "int8")
METRICS = ("auto", "accuracy", "loss", "fidelity")
LAYER_TYPES = ["conv", "linear"]


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer's score with only it degraded, against the untouched model's."""

    layer: str  # module name, as a pass's `ignore` list takes it
    params: int  # parameters of the module (weight and bias)
    baseline: float  # metric of the untouched model
    score: float  # metric with this layer degraded
    drop: float  # how much worse (positive: worse), in the metric's units
    metric: str = "accuracy"
    module_type: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sensitivity(variant: Variant, data: Dataset | None = None, method: str = "prune",
                ratio: float = 0.5, metric: str = "auto", cancel: CancelToken | None = None,
                split: str = "val", samples: int = 64, device: str = "cpu"
                ) -> Job[list[LayerSensitivity]]:
    """Score each prunable layer alone; returns rows sorted most sensitive first.

    `ratio` is the share of the layer's weights pruned (ignored for "int8"); `samples` is
    the number of sample inputs the fidelity metric uses. The scoring runs on `device`
    (the working copy of the model goes there).
    """
    import torch

    from workbench.core.devices import job_device
    from workbench.core.passes.prune_unstructured import (
        bake_existing_masks,
        select_layers,
        tensor_attr,
    )

    _check(variant, method, ratio, metric, samples)
    cancel = cancel or CancelToken()
    yield Progress(0.0, "Preparing…")
    device = job_device(device)
    model = set_mode(copy.deepcopy(variant.model), False).to(device)
    layers = select_layers(model, LAYER_TYPES, [])
    layers = [(n, m) for n, m in layers if tensor_attr(m).is_floating_point()]
    if not layers:
        raise InvalidParameterError(f"{variant.name} has no convolution or linear layer with "
                                    "float weights to analyse.")
    for _, m in layers:
        bake_existing_masks(m)  # an earlier non-permanent prune: work on the real weight
    work = dataclasses.replace(variant, model=model)
    metric, measure = _scorer(work, data, metric, split, samples, device)
    baseline = measure()
    rows: list[LayerSensitivity] = []
    n = len(layers)
    for i, (name, module) in enumerate(layers):
        cancel.wait_while_paused()
        cancel.check()
        weight = tensor_attr(module)
        saved = weight.detach().clone()
        with torch.no_grad():
            weight.copy_(prune_weight(saved, ratio) if method == "prune" else fake_int8(saved))
        try:
            score = measure()
        finally:
            with torch.no_grad():
                weight.copy_(saved)
        drop = score - baseline if metric == "loss" else baseline - score
        row = LayerSensitivity(name, sum(p.numel() for p in module.parameters(recurse=False)),
                               baseline, score, drop, metric, type(module).__name__)
        rows.append(row)
        yield Progress((i + 1) / n, f"{name}: drop {drop:+.4f} ({metric})",
                       SensitivityRowDone(row, i, n))
    rows.sort(key=lambda r: r.drop, reverse=True)
    return rows


def most_sensitive(rows: list[LayerSensitivity], k: int) -> list[str]:
    """The names of the (at most) `k` layers with the largest positive drop, for a pass's
    `ignore` list. Layers whose degradation does not hurt are never proposed."""
    ranked = sorted(rows, key=lambda r: r.drop, reverse=True)
    return [r.layer for r in ranked if r.drop > 0][:max(k, 0)]


# the two degradations ---------------------------------------------------------------------
def prune_weight(weight: Any, ratio: float) -> Any:
    """`weight` with its `round(ratio · n)` smallest-magnitude entries set to zero (the same
    selection `torch.nn.utils.prune.l1_unstructured` makes)."""
    import torch

    flat = weight.reshape(-1).clone()
    k = round(ratio * flat.numel())
    if k > 0:
        flat[torch.topk(flat.abs(), k, largest=False).indices] = 0
    return flat.reshape(weight.shape)


def fake_int8(weight: Any) -> Any:
    """Quantize-dequantize `weight` to symmetric int8, one scale per output channel."""
    w = weight.float().reshape(weight.shape[0], -1)
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)[:, None]
    q = (w / scale).round().clamp(-127, 127) * scale
    return q.reshape(weight.shape).to(weight.dtype)


# metrics ----------------------------------------------------------------------------------
def _check(variant: Variant, method: str, ratio: float, metric: str, samples: int) -> None:
    if variant.backend != "torch":
        raise InvalidParameterError(
            f"{variant.name} is {variant.backend}; sensitivity analysis changes torch weights "
            "layer by layer, so it needs a torch variant (analyse the model before export).")
    import torch

    if isinstance(variant.model, torch.jit.ScriptModule):
        raise InvalidParameterError(f"{variant.name} is TorchScript; sensitivity analysis "
                                    "needs an eager nn.Module.")
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, not "
                                    f"{method!r}.")
    if metric not in METRICS:
        raise InvalidParameterError(f"metric must be one of {', '.join(METRICS)}, not "
                                    f"{metric!r}.")
    if method == "prune" and not 0 < ratio <= 1:
        raise InvalidParameterError(f"ratio must be in (0, 1], not {ratio}.")
    if samples < 1:
        raise InvalidParameterError("samples must be at least 1.")


def _fits(variant: Variant, data: Dataset, device: str = "cpu") -> bool:
    """Whether the model's output is (N, classes ≥ the dataset's) on the dataset's inputs."""
    import torch

    try:
        with torch.no_grad():
            out = variant.model(data.x[:2].to(device, _dtype(variant.model)))
    except Exception:
        log.debug("%s does not run on the dataset's inputs", variant.name, exc_info=True)
        return False
    if data.task == "regression":
        return isinstance(out, torch.Tensor) and out.reshape(out.shape[0], -1).shape[1] == 1
    return isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] >= data.num_classes


def _dtype(model: Any) -> Any:
    import torch

    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _scorer(work: Variant, data: Dataset | None, metric: str, split: str, samples: int,
            device: str = "cpu") -> tuple[str, Any]:
    """(resolved metric, a function scoring `work`'s current weights, on `device`)."""
    from workbench.core.train.training import evaluate_model

    fits = data is not None and _fits(work, data, device)
    if metric == "auto":
        if data is not None and fits:
            metric = "loss" if data.task == "regression" else "accuracy"
        else:
            metric = "fidelity"
    if metric in ("accuracy", "loss"):
        if data is None:
            raise InvalidParameterError(f"The {metric} metric needs a dataset; pick one, or "
                                        "use the fidelity metric.")
        if not fits:
            raise InvalidParameterError(f"{data.name} does not fit {work.name}'s output; use "
                                        "the fidelity metric.")
        if metric == "accuracy" and data.task != "classification":
            raise InvalidParameterError(f"{data.name} is a regression dataset: use the loss "
                                        "metric.")
        if split not in data.splits or len(data.splits[split]) == 0:
            raise InvalidParameterError(f"{data.name} has no {split} split.")

        def measure() -> float:
            result = evaluate_model(work.model, data, split, device)
            value = result.loss if metric == "loss" else result.accuracy
            assert value is not None  # classification data (checked above) has an accuracy
            return float(value)

        return metric, measure
    return "fidelity", _fidelity_scorer(work, samples)


def _fidelity_scorer(work: Variant, samples: int) -> Any:
    import numpy as np

    from workbench.core.model.runtime import run_samples, run_torch
    from workbench.core.model.sample_inputs import sample_inputs

    inputs = sample_inputs(work, samples, seed=2)

    def outputs() -> np.ndarray:
        out = run_samples(lambda batch: run_torch(work, batch), inputs)
        return out.reshape(out.shape[0], -1).astype(np.float64)

    ref = outputs()
    ref_norm = np.linalg.norm(ref, axis=1)

    def measure() -> float:
        out = outputs()
        norms = ref_norm * np.linalg.norm(out, axis=1)
        dots = (ref * out).sum(axis=1)
        same = np.abs(ref - out).sum(axis=1) == 0
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0),
                       np.where(same, 1.0, 0.0))
        return float(cos.mean())

    return measure
