"""Unstructured pruning: zero single weights by magnitude or at random.

Masks come from `torch.nn.utils.prune` (`l1_unstructured` / `random_unstructured` per layer,
`global_unstructured` across layers). With `permanent=True` (the default) the masks are baked
in with `prune.remove`, so the result is an ordinary module whose weights hold exact zeros.
With `permanent=False` the reparametrisation stays (`weight_orig` parameter + `weight_mask`
buffer + a forward pre-hook): the model runs, describes and deep-copies, but weight
statistics, which read parameters, see the dense `weight_orig`; the report's
`details["layers"]` always gives the effective sparsity.

`preview_sparsity` predicts the per-layer sparsity without touching the model, for a GUI
slider. The helpers here (`select_layers`, `effective_weight`, ...) are shared with the
N:M and structured pruning passes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from workbench.core.errors import InvalidParameterError
from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param, parse_params

log = logging.getLogger(__name__)

LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv": (nn.modules.conv._ConvNd,),
    "linear": (nn.Linear,),
    "embedding": (nn.Embedding, nn.EmbeddingBag),
}
_TYPES_HELP = f"module kinds to prune: any of {', '.join(LAYER_TYPES)}"
_IGNORE_HELP = "module names left untouched (a module's children too)"


# shared helpers ---------------------------------------------------------------------------
def check_layer_types(layer_types: list[str]) -> None:
    """Raise InvalidParameterError unless `layer_types` is a non-empty list of known kinds."""
    bad = [t for t in layer_types if t not in LAYER_TYPES]
    if bad or not layer_types:
        raise InvalidParameterError(
            f"layer_types must list some of {', '.join(LAYER_TYPES)}, not {layer_types!r}.")


def is_ignored(name: str, ignore: list[str]) -> bool:
    """True when module `name` is in `ignore` or inside an ignored module."""
    return any(name == ig or name.startswith(ig + ".") for ig in ignore)


def check_ignore(pass_name: str, model: nn.Module, ignore: list[str]) -> None:
    """Raise InvalidParameterError for ignore entries that name no module of `model`."""
    names = {name for name, _ in model.named_modules() if name}
    unknown = [ig for ig in ignore if ig not in names]
    if unknown:
        raise InvalidParameterError(
            f"{pass_name}: ignore names no module called {', '.join(map(repr, unknown))}.")


def has_weight(module: nn.Module) -> bool:
    w = getattr(module, "weight_orig", None)
    if w is None:
        w = getattr(module, "weight", None)
    return isinstance(w, torch.Tensor) and w.numel() > 0


def select_layers(model: nn.Module, layer_types: list[str], ignore: list[str]
                  ) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs of the chosen kinds that carry a weight, minus `ignore`."""
    kinds = tuple(cls for t in layer_types for cls in LAYER_TYPES.get(t, ()))
    return [(name, m) for name, m in model.named_modules()
            if name and isinstance(m, kinds) and has_weight(m) and not is_ignored(name, ignore)]


def tensor_attr(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """`module.<name>`, checked to be a tensor (a type checker sees `Tensor | Module`)."""
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is not a tensor")
    return value


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight a forward pass uses, also under a `torch.nn.utils.prune` reparametrisation."""
    orig = getattr(module, "weight_orig", None)
    mask = getattr(module, "weight_mask", None)
    if orig is not None and mask is not None:
        return (orig * mask).detach()
    return tensor_attr(module).detach()


def bake_existing_masks(module: nn.Module) -> None:
    """Make an earlier (non-permanent) prune of `module.weight` permanent."""
    if prune.is_pruned(module) and hasattr(module, "weight_orig"):
        prune.remove(module, "weight")


def detach_pruned_weight(module: nn.Module) -> None:
    """Replace the derived `weight` of a reparametrised module by a detached copy.

    `torch.nn.utils.prune` stores `weight = weight_orig * weight_mask` as a non-leaf tensor,
    which `copy.deepcopy` refuses; the forward pre-hook recomputes it on every call anyway.
    """
    if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
        with torch.no_grad():
            module.weight = tensor_attr(module, "weight_orig") * tensor_attr(module, "weight_mask")


def layer_sparsity(module: nn.Module) -> tuple[int, float]:
    """(weight count, share of exact zeros) of a module's effective weight."""
    w = effective_weight(module)
    n = w.numel()
    return n, float((w == 0).sum()) / max(n, 1)


def layer_rows(layers: list[tuple[str, nn.Module]]) -> list[dict[str, Any]]:
    rows = []
    for name, m in layers:
        n, s = layer_sparsity(m)
        rows.append({"name": name, "params": n, "sparsity": round(s, 6)})
    return rows


def overall_sparsity(rows: list[dict[str, Any]]) -> float:
    total = sum(r["params"] for r in rows)
    return sum(r["params"] * r["sparsity"] for r in rows) / total if total else 0.0


def random_masks(shapes: list[torch.Size], amount: float, generator: torch.Generator,
                 scope: str = "layer") -> list[torch.Tensor]:
    """Masks that zero a random `amount` of each shape (`layer`) or of all together
    (`global`), drawn from `generator`: torch's `RandomUnstructured` with a private one."""
    sizes = [s.numel() for s in shapes]
    groups = [[i] for i in range(len(shapes))] if scope == "layer" else [list(range(len(shapes)))]
    masks: list[torch.Tensor] = [torch.empty(0)] * len(shapes)
    for group in groups:
        total = sum(sizes[i] for i in group)
        flat = torch.ones(total)
        k = round(amount * total)
        if k:
            flat[torch.topk(torch.rand(total, generator=generator), k=k).indices] = 0
        for i, part in zip(group, flat.split([sizes[i] for i in group]), strict=True):
            masks[i] = part.view(shapes[i])
    return masks


# the passes ------------------------------------------------------------------------------
class MagnitudePrune(Pass):
    """Zero the weights of smallest magnitude (L1), per layer or across layers."""

    name = "prune.magnitude"
    title = "Magnitude pruning (unstructured)"
    category = "prune"
    backends = ("torch",)
    description = ("Sets the smallest-magnitude weights of each chosen layer to zero "
                   "(or the smallest across all chosen layers with scope=global). The "
                   "shapes stay; the zeros save size only once compressed or run on a "
                   "sparse kernel.")
    method = "l1"

    @dataclass
    class Params:
        sparsity: float = param(0.5, min=0.0, max=0.99, widget="slider",
                                help="share of each layer's weights set to zero")
        scope: str = param("layer", choices=("layer", "global"),
                           help="layer: every layer gets the same sparsity; global: one "
                                "threshold across all chosen layers")
        layer_types: list[str] = param(["conv", "linear"], help=_TYPES_HELP)
        ignore: list[str] = param([], widget="nodes", help=_IGNORE_HELP)
        permanent: bool = param(True, help="bake the zeros in (no masks left in the model)")

        def __post_init__(self) -> None:
            check_layer_types(self.layer_types)

    def requires(self, variant: Variant, params: Any) -> None:
        check_ignore(self.name, variant.model, params.ignore)
        if not select_layers(variant.model, params.layer_types, params.ignore):
            raise PassError(
                f"nothing to prune: {variant.name} has no {'/'.join(params.layer_types)} "
                "layer with weights" + (" outside the ignore list." if params.ignore else "."))

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        model = self.clone_model(variant)
        layers = select_layers(model, params.layer_types, params.ignore)
        for _, m in layers:
            bake_existing_masks(m)
        ctx.progress(0.1, f"Pruning {len(layers)} layers…")
        self._prune(layers, params)
        warnings: list[str] = []
        for _, m in layers:
            if params.permanent:
                prune.remove(m, "weight")
            else:
                detach_pruned_weight(m)
        if not params.permanent:
            warnings.append("permanent=False keeps weight_orig and weight_mask: weight "
                            "statistics show the dense weight_orig; see details for the "
                            "effective sparsity.")
        rows = layer_rows(layers)
        ctx.progress(1.0, "Done")
        return PassOutput(model=model, warnings=warnings, details={
            "layers": rows, "sparsity": round(overall_sparsity(rows), 6),
            "scope": params.scope, "method": self.method, "permanent": params.permanent})

    def _prune(self, layers: list[tuple[str, nn.Module]], params: Any) -> None:
        if self.method == "random":
            generator = torch.Generator().manual_seed(int(params.seed))
            weights = [tensor_attr(m) for _, m in layers]
            masks = random_masks([w.shape for w in weights], float(params.sparsity),
                                 generator, params.scope)
            for (_, m), w, mask in zip(layers, weights, masks, strict=True):
                prune.custom_from_mask(m, "weight", mask.to(w.device))
            return
        if params.scope == "global":
            prune.global_unstructured([(m, "weight") for _, m in layers],
                                      pruning_method=self._method_cls(),
                                      amount=float(params.sparsity))
            return
        fn = prune.l1_unstructured if self.method == "l1" else prune.random_unstructured
        for _, m in layers:
            fn(m, "weight", amount=float(params.sparsity))

    def _method_cls(self) -> type[prune.BasePruningMethod]:
        return prune.L1Unstructured if self.method == "l1" else prune.RandomUnstructured

    def preview(self, variant: Variant, params: Any) -> dict[str, float]:
        """Per-layer sparsity this pass would give (see `preview_sparsity`)."""
        return preview_sparsity(variant, params, type(self))


class RandomPrune(MagnitudePrune):
    """Zero a random share of the weights; reproducible through `seed`."""

    name = "prune.random"
    title = "Random pruning (unstructured)"
    description = ("Sets a random share of each chosen layer's weights to zero. A baseline "
                   "for magnitude pruning; the same seed gives the same mask.")
    method = "random"

    @dataclass
    class Params(MagnitudePrune.Params):
        seed: int = param(0, min=0, max=2**31 - 1, help="random seed of the mask")


def preview_sparsity(variant: Variant, params: Any,
                     pass_cls: type[MagnitudePrune] | None = None) -> dict[str, float]:
    """Module name -> sparsity that `prune.magnitude` (or `prune.random`) would give.

    Reads the weights only; the model is not changed. `params` is a Params instance or a
    mapping (validated like the pass's own parameters). Exact for magnitude pruning (up to
    ties at the global threshold); the expected value for random pruning. The sorted
    magnitudes are cached per variant, so moving a slider costs a few searches.
    """
    if pass_cls is None:
        pass_cls = RandomPrune if isinstance(params, RandomPrune.Params) else MagnitudePrune
    if isinstance(params, Mapping) or params is None:
        params = parse_params(pass_cls, params)
    names = tuple(name for name, _ in select_layers(variant.model, params.layer_types,
                                                    params.ignore))
    if not names:
        return {}
    table = _sorted_magnitudes(variant)
    amount = float(params.sparsity)
    out: dict[str, float] = {}
    if pass_cls.method == "random" or params.scope == "layer":
        for name in names:
            n, zeros = table.numel[name], table.zeros[name]
            if pass_cls.method == "random":
                expected = round(amount * n) if params.scope == "layer" else amount * n
                count = expected + zeros * (1 - expected / n)
            else:
                count = max(round(amount * n), zeros)
            out[name] = count / n
        return out
    total = sum(table.numel[name] for name in names)
    k = round(amount * total)
    if k == 0:
        return {name: table.zeros[name] / table.numel[name] for name in names}
    srt = table.sorted()
    if len(names) == len(srt):
        threshold = float(table.all_sorted()[k - 1])
    else:  # a subset of the layers: rank their magnitudes only
        threshold = float(torch.kthvalue(torch.cat([srt[name] for name in names]), k).values)
    for name in names:
        if threshold <= 0:
            count = table.zeros[name]
        else:
            count = int(torch.searchsorted(srt[name], threshold, right=True))
        out[name] = count / table.numel[name]
    return out


class _Magnitudes:
    """|w| of every conv/linear/embedding layer of one variant; sorted on first need."""

    def __init__(self, variant: Variant) -> None:
        layers = select_layers(variant.model, list(LAYER_TYPES), [])
        with torch.no_grad():
            self.abs = {name: effective_weight(m).abs().reshape(-1).float()
                        for name, m in layers}
        self.numel = {k: v.numel() for k, v in self.abs.items()}
        self.zeros = {k: int((v == 0).sum()) for k, v in self.abs.items()}
        self._sorted: dict[str, torch.Tensor] | None = None
        self._all: torch.Tensor | None = None

    def sorted(self) -> dict[str, torch.Tensor]:
        if self._sorted is None:
            self._sorted = {k: v.sort().values for k, v in self.abs.items()}
        return self._sorted

    def all_sorted(self) -> torch.Tensor:
        if self._all is None:
            self._all = torch.cat(list(self.sorted().values())).sort().values
        return self._all


_cache: dict[tuple[str, int], _Magnitudes] = {}


def _sorted_magnitudes(variant: Variant) -> _Magnitudes:
    key = (variant.id, id(variant.model))
    table = _cache.get(key)
    if table is None:
        table = _Magnitudes(variant)
        while len(_cache) >= 2:
            _cache.pop(next(iter(_cache)))
        _cache[key] = table
    return table
