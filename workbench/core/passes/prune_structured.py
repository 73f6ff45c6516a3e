"""Structured (channel) pruning with Torch-Pruning: physically remove filters and channels.

Torch-Pruning's `DependencyGraph` traces the model on its example inputs and groups every
layer whose channels must go together (a convolution, its BatchNorm, the next layer's input
channels, every branch of a residual add, the slices of a concatenation, depthwise convs).
`BasePruner` (alias `MetaPruner`) then ranks each group's channels by the chosen importance
and removes the weakest share. Every group that reaches a model output (the classifier's
outputs, say) is kept whole, so the output shape does not change; `ensures` checks it.

Around Torch-Pruning: attention heads stay equal and the attributes forward passes
reshape with follow (`prune_attention`); channel shuffles become explicit gathers pruned
through (`prune_gather`), or, in code torch.fx cannot trace, keep their groups whole
(`prune_shuffle`); channels tied across a concatenation go in lockstep (`prune_ties`); a
`.pt2` program is rebuilt into real layers first (`pt2_editable`); and a failure names the
layer to add to `ignore` (`prune_blame`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.core.errors import first_line
from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param
from workbench.core.passes.prune_attention import fused_qkv_blocks, mha_heads, sync_attention
from workbench.core.passes.prune_blame import blamed_graph_nodes, failing_module, ignore_hint
from workbench.core.passes.prune_gather import (
    ChannelGather,
    finish_gathers,
    gather_pruner,
    install_gather_mappings,
    uncovered_gathers,
    with_gathers,
)
from workbench.core.passes.prune_progress import graph_progress, prune_groups
from workbench.core.passes.prune_shuffle import (
    checked_splits,
    opaque_channel_shuffles,
    shuffle_ops,
)
from workbench.core.passes.prune_ties import tie_channel_groups
from workbench.core.passes.prune_unstructured import (
    bake_existing_masks,
    check_ignore,
    is_ignored,
)
from workbench.core.passes.pt2_editable import (
    NotEditableError,
    editable_module,
    has_editable_layers,
)

log = logging.getLogger(__name__)

_ROOT_TYPES: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear, nn.LSTM)
_REPORTED_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.Linear, nn.LSTM, nn.MultiheadAttention, nn.Embedding)
# Torch-Pruning's notice that it prunes cls/pos tokens along their last dim: what we want
_TP_NOISE = ("Unwrapped parameters detected",)
_IGNORE_HELP = ("module names whose output channels are kept (the layer producing the "
                "output is always kept)")


class StructuredPrune(Pass):
    """Remove whole channels (conv filters, linear features) and everything tied to them."""

    name = "prune.structured"
    title = "Channel pruning (structured)"
    category = "prune"
    backends = ("torch",)
    isolated = True  # Torch-Pruning can take all the memory there is (swin_t): a child
    description = ("Removes the least important channels of every prunable layer group, "
                   "with Torch-Pruning's dependency graph keeping residual adds, "
                   "concatenations, depthwise convolutions and attention heads consistent. "
                   "The model gets "
                   "smaller and faster; it usually needs fine-tuning to recover accuracy.")

    @dataclass
    class Params:
        ratio: float = param(0.5, min=0.0, max=0.9, widget="slider",
                             help="share of channels removed from each layer group")
        importance: str = param("l1", choices=("l1", "l2", "bn_scale", "random"),
                                help="how channels are ranked: weight L1/L2 norm, "
                                     "BatchNorm scale (L1 where a group has no BatchNorm), "
                                     "or at random")
        ignore: list[str] = param([], widget="nodes", help=_IGNORE_HELP)
        round_to: int = param(1, min=1, max=256,
                              help="keep channel counts a multiple of this (1: no rounding)")
        seed: int = param(0, min=0, max=2**31 - 1, help="random seed (importance=random)")

    def requires(self, variant: Variant, params: Any) -> None:
        model = variant.model
        if isinstance(model, torch.jit.ScriptModule):
            raise PassError(f"{self.name} needs an eager nn.Module; {variant.name} is "
                            "TorchScript.")
        check_ignore(self.name, model, params.ignore)
        if not variant.inputs:
            raise PassError(f"{self.name} traces the model and needs its input shape; "
                            f"{variant.name} has none.")
        if _is_program(model) and has_editable_layers(model):
            return  # rebuilt into real layers in run()
        if not any(isinstance(m, _ROOT_TYPES) and not is_ignored(name, params.ignore)
                   for name, m in model.named_modules() if name):
            raise PassError(f"nothing to prune: {variant.name} has no convolution or linear "
                            "layer" + (" outside the ignore list." if params.ignore else "."))

    def skeleton(self, variant: Variant, params: Any) -> nn.Module:
        """A copy of the model with real layers, its masks baked and its channel shuffles
        as gathers: what `run` prunes."""
        model = self.clone_model(variant)
        if _is_program(model):
            try:
                model = editable_module(model)
            except NotEditableError as exc:
                raise PassError(f"{self.name} cannot prune {variant.name}: {exc}") from exc
        was_training = model.training
        model.eval()  # tracing runs the model: BatchNorm statistics must not move
        for m in model.modules():
            bake_existing_masks(m)
        model = with_gathers(model, variant.example_inputs()) or model
        return model.train(was_training)

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch_pruning as tp

        model = self.skeleton(variant, params)
        was_training = model.training
        model.eval()
        example = variant.example_inputs()
        modules = dict(model.named_modules())
        before = _channels(model)
        direct, out_shapes = _output_layers(model, example)
        grad_flags = {n: p.requires_grad for n, p in model.named_parameters()}
        model.requires_grad_(True)  # tracing follows grad_fn
        fused = fused_qkv_blocks(model)
        num_heads = {m.qkv: int(m.num_heads) for m in fused}
        caught: list[warnings.WarningMessage] = []
        ctx.progress(0.1, "Building the dependency graph…")
        try:
            with warnings.catch_warnings(record=True) as caught, torch.enable_grad(), \
                    opaque_channel_shuffles(model), checked_splits() as bad_splits, \
                    blamed_graph_nodes() as blamed, graph_progress(ctx.progress, ctx.cancel):
                warnings.simplefilter("always")
                pruner = tp.pruner.BasePruner(
                    model, example, importance=_importance(params),
                    pruning_ratio=float(params.ratio),
                    ignored_layers=[modules[n] for n in (*params.ignore, *direct)],
                    round_to=params.round_to if params.round_to > 1 else None,
                    # fresh dicts: Torch-Pruning mutates its mutable defaults
                    in_channel_groups={}, out_channel_groups=mha_heads(model),
                    num_heads=num_heads, prune_head_dims=True, prune_num_heads=False,
                    pruning_ratio_dict={}, head_pruning_ratio_dict={},
                    customized_pruners={ChannelGather: gather_pruner()},
                    unwrapped_parameters=None)
                gathers = install_gather_mappings(pruner.DG)
                kept = list(dict.fromkeys((*direct, *_protect_outputs(pruner))))
                shuffled = _keep_whole(pruner, [*shuffle_ops(pruner.DG), *bad_splits,
                                                *uncovered_gathers(gathers)])
                tied = tie_channel_groups(pruner)
                groups = list(pruner.DG.get_all_groups(
                    ignored_layers=pruner.ignored_layers,
                    root_module_types=pruner.root_module_types))
                if not groups:
                    raise PassError(
                        f"nothing to prune: Torch-Pruning found no prunable channel group "
                        f"in {variant.name} (kept whole: "
                        f"{', '.join((*kept, *params.ignore)) or 'none'}; "
                        "GRU and other unsupported layers cannot be pruned).")
                ctx.cancel.check()
                prune_groups(pruner, len(groups), ctx.progress, ctx.cancel)
                finish_gathers(gathers)
        except AssertionError as exc:  # Torch-Pruning checks channel arithmetic by assert
            raise PassError(f"{self.name}: Torch-Pruning cannot prune {variant.name} at "
                            f"ratio {params.ratio}: {exc}") from exc
        except (ZeroDivisionError, IndexError, ValueError, KeyError, RuntimeError) as exc:
            why = f"{type(exc).__name__}: {first_line(exc)}"
            if blamed:
                raise PassError(
                    f"{self.name}: Torch-Pruning cannot follow the channels of "
                    f"{variant.name} after {blamed[0]} ({why}); add \"{blamed[0]}\" to the "
                    "ignore list (param `ignore`) to keep its channels.") from exc
            if isinstance(model, torch.fx.GraphModule) and variant.format == "pt2":
                raise PassError(
                    f"{self.name}: Torch-Pruning cannot group the channels of the program "
                    f"in {variant.name} ({why}): an exported program keeps attention and "
                    "reshapes as fixed-size ops; load the model from its code (--arch) to "
                    "prune it, or add the layers around them to the ignore list.") from exc
            raise PassError(
                f"{self.name}: Torch-Pruning cannot group the channels of {variant.name} "
                f"({why}); add the layers it fails on to the ignore list (param "
                "`ignore`).") from exc
        attention = sync_attention(model, fused, pruner.num_heads)
        for n, p in model.named_parameters():
            p.requires_grad_(grad_flags.get(n, True))
        model.train(was_training)
        after = _channels(model)
        rows: list[dict[str, Any]] = [
            {"name": n, "type": t, "before": b, "after": after.get(n, (t, 0))[1]}
            for n, (t, b) in before.items()]
        removed = sum(r["before"] - r["after"] for r in rows)
        out_warnings = sorted({first_line(w.message) for w in caught
                               if issubclass(w.category, UserWarning)
                               and not str(w.message).startswith(_TP_NOISE)})
        if shuffled:
            out_warnings.append(
                f"{len(shuffled)} layers kept their output channels because they cross a "
                f"channel shuffle, which Torch-Pruning cannot remap: {_few(shuffled)}.")
        if removed == 0:
            out_warnings.append(f"ratio {params.ratio} removed no channel.")
        ctx.progress(1.0, "Done")
        return PassOutput(model=model, warnings=out_warnings, details={
            "layers": rows, "channels_removed": removed, "groups": len(groups),
            "kept_whole": kept, "kept_for_shuffle": shuffled, "tied_channels": tied,
            "attention": attention, "importance": params.importance,
            "output_shapes": [list(shape) for shape in out_shapes]})

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        """The pruned model runs and returns the shapes the original did."""
        old = [tuple(shape) for shape in output.details["output_shapes"]]
        model = after.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                new = _shapes(model(*before.example_inputs()))
        except Exception as exc:
            with torch.no_grad():
                where, _ = failing_module(model, before.example_inputs())
            raise PassError(f"{self.name}: the pruned model no longer runs: "
                            f"{type(exc).__name__}: {first_line(exc)}"
                            f"{ignore_hint(where, model)}.") from exc
        finally:
            model.train(was_training)
        if old != new:
            raise PassError(f"{self.name} changed the output shape from {old} to {new}; add "
                            "the layers producing the output to ignore.")


def _is_program(model: nn.Module) -> bool:
    """A GraphModule of ATen calls from `ExportedProgram.module()`, with no real layers."""
    return isinstance(model, torch.fx.GraphModule) and not any(
        isinstance(m, _ROOT_TYPES) for m in model.modules())


def _importance(params: Any) -> Any:
    import torch_pruning as tp

    if params.importance == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if params.importance == "bn_scale":
        return _BNScaleOrL1()
    if params.importance == "random":
        return _SeededRandomImportance(params.seed)
    return tp.importance.GroupMagnitudeImportance(p=1)


class _BNScaleOrL1:
    """BatchNorm-scale importance; group L1 for groups without a BatchNorm."""

    def __init__(self) -> None:
        import torch_pruning as tp

        self.bn = tp.importance.BNScaleImportance()
        self.l1 = tp.importance.GroupMagnitudeImportance(p=1)

    def __call__(self, group: Any) -> Any:
        imp = self.bn(group)
        return imp if imp is not None and len(imp) else self.l1(group)


class _SeededRandomImportance:
    """Random channel ranking from a private generator (Torch-Pruning's uses the global one)."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, group: Any) -> torch.Tensor:
        _, idxs = group[0]
        return torch.rand(len(idxs), generator=self.generator)


def _protect_outputs(pruner: Any) -> list[str]:
    """Keep whole every channel group that reaches a model output; return its layers' names.

    Pruning such a group (the classifier's outputs, or a residual stream returned as is)
    would change the output shape. Torch-Pruning marks outputs with `_OutputOp` nodes; a
    group that holds an ignored layer is skipped whole, so ignoring them is enough.
    """
    from torch_pruning import ops

    return _keep_whole(pruner, [m for m in pruner.DG.module2node
                                if isinstance(m, ops._OutputOp)])


def _keep_whole(pruner: Any, blockers: list[nn.Module]) -> list[str]:
    """Keep whole every group that reaches one of the graph nodes `blockers`; return the
    names of the layers whose output channels are kept that way."""
    graph = pruner.DG
    if not blockers:
        return []
    blocking = set(blockers)
    kept: list[str] = []
    for group in graph.get_all_groups(ignored_layers=pruner.ignored_layers,
                                      root_module_types=pruner.root_module_types):
        if not any(dep.target.module in blocking for dep, _ in group):
            continue
        for dep, _ in group:
            module = dep.target.module
            if isinstance(module, _ROOT_TYPES) and graph.is_out_channel_pruning_fn(dep.handler):
                kept.append(graph._module2name[module])
    pruner.ignored_layers.extend(blockers)
    return list(dict.fromkeys(kept))


def _output_layers(model: nn.Module, example: tuple[Any, ...]
                   ) -> tuple[list[str], list[tuple[int, ...]]]:
    """Names of the conv/linear layers whose own output is returned, and the output shapes.

    (Torch-Pruning marks an output with an `_OutputOp` only when an operation follows the
    last layer; a classifier returned as is must be ignored by name.)
    """
    produced: dict[int, str] = {}
    names = {m: n for n, m in model.named_modules() if n}

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and module in names:
            produced[id(output)] = names[module]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _ROOT_TYPES)]
    try:
        with torch.no_grad():
            out = model(*example)
    finally:
        for h in handles:
            h.remove()
    names_out = [produced[id(t)] for t in _flatten(out) if id(t) in produced]
    return list(dict.fromkeys(names_out)), _shapes(out)


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    return []


def _shapes(out: Any) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in _flatten(out)]


def _channels(model: nn.Module) -> dict[str, tuple[str, int]]:
    """Module name -> (type, output channels) for the layers that define channel counts."""
    out: dict[str, tuple[str, int]] = {}
    for name, m in model.named_modules():
        if not name or not isinstance(m, _REPORTED_TYPES):
            continue
        if isinstance(m, nn.modules.conv._ConvNd):
            n = m.out_channels
        elif isinstance(m, nn.Linear):
            n = m.out_features
        elif isinstance(m, nn.LSTM):
            n = m.hidden_size
        elif isinstance(m, nn.MultiheadAttention):
            n = m.embed_dim
        else:
            assert isinstance(m, nn.Embedding)  # the last of _REPORTED_TYPES
            n = m.embedding_dim
        out[name] = (type(m).__name__, int(n))
    return out


def _few(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
