"""Channel shuffles pruned through: the shuffle becomes an explicit channel gather.

A channel shuffle (ShuffleNet's `view -> transpose -> view`) is a fixed permutation of the
channels, and the `chunk(2)` after it cuts the shuffled tensor in halves. Pruning across it
in place is impossible: the shuffle of a pruned tensor is not the pruned shuffle, and the
two halves of a chunk would lose different numbers of channels. So, before pruning, the
model is traced with `torch.fx`, and every shuffle (with the chunk that follows it, if any)
becomes `ChannelGather` layers: output channel `j` reads input channel `index[j]`.

Torch-Pruning then sees each gather as a pass-through layer whose index mapping follows
`index` (installed on the dependency edges), so a group removes the right channels on both
sides; the gathers' indices are recomputed from the channels that survive. Gathers that
read one tensor share a record of which of its channels are alive, and together they read
all of them, so every removal reaches a gather.
"""

from __future__ import annotations

import logging
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


class ChannelGather(nn.Module):
    """Output channel `j` is input channel `index[j]` (a shuffle, a split, or both)."""

    index: torch.Tensor

    def __init__(self, index: torch.Tensor, in_channels: int) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.register_buffer("index", index.to(torch.long).clone())
        self.state: _GatherState | None = None  # while Torch-Pruning works on it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={len(self.index)}"


def shuffle_permutation(channels: int, groups: int) -> torch.Tensor:
    """`index` of the gather equal to a channel shuffle of `channels` in `groups` groups."""
    return torch.arange(channels).reshape(groups, channels // groups).t().reshape(-1)


# --- the model: shuffles (and their chunks) become gathers ---------------------------------

def shuffle_functions(model: nn.Module) -> list[Callable[..., Any]]:
    """Module-level `channel_shuffle(x, groups)` functions the model's layers can call."""
    found: list[Callable[..., Any]] = []
    for py_module in {sys.modules.get(type(m).__module__) for m in model.modules()}:
        fn = getattr(py_module, "channel_shuffle", None)
        if py_module is not None and callable(fn) and not isinstance(fn, type):
            found.append(fn)
    return found


def with_gathers(model: nn.Module, example: tuple[Any, ...]) -> torch.fx.GraphModule | None:
    """`model` traced, with its channel shuffles as `ChannelGather` layers; None when it
    has none, or cannot be traced (the caller then keeps shuffled channels whole)."""
    from torch.fx.passes.shape_prop import ShapeProp

    functions = shuffle_functions(model)
    if not functions and not any(isinstance(m, nn.ChannelShuffle) for m in model.modules()):
        return None
    try:
        tracer = torch.fx.Tracer(autowrap_functions=tuple(functions))
        graph = tracer.trace(model)
        gm = torch.fx.GraphModule(tracer.root, graph, type(model).__name__)
        ShapeProp(gm).propagate(*example)
    except Exception as exc:  # untraceable code: data-dependent control flow and the like
        log.info("channel shuffles kept whole: the model cannot be traced (%s)", exc)
        return None
    count = 0
    for node in list(gm.graph.nodes):
        shuffle = _shuffle_args(gm, node, functions)
        if shuffle is None:
            continue
        source, groups = shuffle
        meta = source.meta.get("tensor_meta")
        if meta is None or len(meta.shape) < 2 or meta.shape[1] % groups:
            continue
        perm = shuffle_permutation(int(meta.shape[1]), groups)
        count += _replace(gm, node, source, perm, _scope(node))
    if not count:
        return None
    gm.graph.lint()
    gm.recompile()
    log.debug("%d channel shuffles became gathers", count)
    return gm


def _shuffle_args(gm: torch.fx.GraphModule, node: torch.fx.Node,
                  functions: list[Callable[..., Any]]) -> tuple[torch.fx.Node, int] | None:
    if node.op == "call_function" and node.target in functions:
        groups = node.args[1] if len(node.args) > 1 else node.kwargs.get("groups")
    elif node.op == "call_module" and isinstance(gm.get_submodule(str(node.target)),
                                                   nn.ChannelShuffle):
        groups = int(getattr(gm.get_submodule(str(node.target)), "groups", 0))
    else:
        return None
    source = node.args[0]
    if not isinstance(source, torch.fx.Node) or not isinstance(groups, int) or groups < 1:
        return None
    return source, groups


def _scope(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    paths = [str(v[0] if isinstance(v, tuple) else v) for v in stack.values()]
    return paths[-1] if paths else ""


def _chunk_of(node: torch.fx.Node) -> tuple[torch.fx.Node, int] | None:
    """The `chunk(n, dim=1)` that is `node`'s only user, with n, if that is so."""
    if len(node.users) != 1:
        return None
    user = next(iter(node.users))
    is_chunk = (user.op == "call_method" and user.target == "chunk") or (
        user.op == "call_function" and user.target is torch.chunk)
    if not is_chunk:
        return None
    chunks = user.args[1] if len(user.args) > 1 else user.kwargs.get("chunks")
    dim = user.args[2] if len(user.args) > 2 else user.kwargs.get("dim", 0)
    if dim != 1 or not isinstance(chunks, int) or not all(
            u.op == "call_function" and u.target is operator.getitem for u in user.users):
        return None
    return user, chunks


def _replace(gm: torch.fx.GraphModule, node: torch.fx.Node, source: torch.fx.Node,
             perm: torch.Tensor, scope: str) -> int:
    """Replace the shuffle `node` (and its chunk) with gathers reading `source`."""
    prefix = f"{scope}." if scope else ""
    chunk = _chunk_of(node)
    if chunk is not None and len(perm) % chunk[1] == 0:
        chunk_node, n = chunk
        parts = perm.reshape(n, -1)
        for item in list(chunk_node.users):
            k = int(str(item.args[1]))
            new = _gather_node(gm, item, source, parts[k], len(perm),
                               f"{prefix}shuffle_part{k}")
            item.replace_all_uses_with(new)
            gm.graph.erase_node(item)
        gm.graph.erase_node(chunk_node)
    else:
        new = _gather_node(gm, node, source, perm, len(perm), f"{prefix}shuffle")
        node.replace_all_uses_with(new)
    gm.graph.erase_node(node)
    return 1


def _gather_node(gm: torch.fx.GraphModule, before: torch.fx.Node, source: torch.fx.Node,
                 index: torch.Tensor, in_channels: int, path: str) -> torch.fx.Node:
    name, k = path, 1
    while _exists(gm, name):
        k += 1
        name = f"{path}{k}"
    gm.add_submodule(name, ChannelGather(index, in_channels))
    with gm.graph.inserting_before(before):
        return gm.graph.call_module(name, (source,))


def _exists(gm: torch.fx.GraphModule, path: str) -> bool:
    try:
        gm.get_submodule(path)
    except AttributeError:
        return False
    return True


# --- Torch-Pruning: gathers as pass-through layers with an index mapping -------------------

@dataclass
class _Source:
    """Which channels of a tensor read by gathers are still there (original numbering)."""

    alive: list[bool]

    def current(self) -> list[int]:
        return [i for i, a in enumerate(self.alive) if a]


@dataclass
class _GatherState:
    index: list[int]  # original source channel of each original output channel
    source: _Source
    alive: list[bool] = field(default_factory=list)

    def current(self) -> list[int]:
        return [j for j, a in enumerate(self.alive) if a]


def gather_pruner() -> Any:
    """Torch-Pruning's pruning function for `ChannelGather` (register as customized)."""
    from torch_pruning.pruner.function import BasePruningFunc

    class GatherPruner(BasePruningFunc):
        def prune_out_channels(self, layer: nn.Module, idxs: Any) -> nn.Module:
            state = _state(layer)
            outs = state.current()
            for k in idxs:
                j = outs[int(k)]
                state.alive[j] = False
                state.source.alive[state.index[j]] = False
            return layer

        prune_in_channels = prune_out_channels  # a pass-through: in and out go together

        def get_out_channels(self, layer: nn.Module) -> int:
            assert isinstance(layer, ChannelGather)
            return sum(layer.state.alive) if layer.state else len(layer.index)

        def get_in_channels(self, layer: nn.Module) -> int:
            assert isinstance(layer, ChannelGather)
            return sum(layer.state.source.alive) if layer.state else layer.in_channels

    return GatherPruner()


def _state(layer: nn.Module) -> _GatherState:
    assert isinstance(layer, ChannelGather)
    assert layer.state is not None
    return layer.state


def install_gather_mappings(graph: Any) -> list[ChannelGather]:
    """Give every gather in Torch-Pruning's dependency `graph` its channel state and the
    index mappings of its edges; returns the gathers. Gathers whose readers of one tensor do
    not cover all its channels are returned too, but their groups must be kept whole."""
    nodes = [n for n in graph.module2node.values() if isinstance(n.module, ChannelGather)]
    sources: dict[Any, _Source] = {}
    for node in nodes:
        [in_node] = node.inputs or [None]
        if in_node not in sources:
            sources[in_node] = _Source([True] * node.module.in_channels)
        index = [int(i) for i in node.module.index]
        state = _GatherState(index, sources[in_node], [True] * len(index))
        node.module.state = state
        for dep in node.dependencies:
            if dep.target in node.inputs:
                _set_mapping(dep, _OutToIn(state))
        for parent in node.inputs:
            for dep in parent.dependencies:
                if dep.target is node:
                    _set_mapping(dep, _InToOut(state))
    return [n.module for n in nodes]


def uncovered_gathers(gathers: list[ChannelGather]) -> list[ChannelGather]:
    """Gathers reading a tensor whose channels the gathers together do not all read."""
    read: dict[int, set[int]] = {}
    for g in gathers:
        read.setdefault(id(_state(g).source), set()).update(_state(g).index)
    return [g for g in gathers
            if len(read[id(_state(g).source)]) < len(_state(g).source.alive)]


def finish_gathers(gathers: list[ChannelGather]) -> None:
    """Recompute each gather's index from the channels that survived; drop the state."""
    for g in gathers:
        state = _state(g)
        rank = {orig: k for k, orig in enumerate(state.source.current())}
        g.in_channels = len(rank)
        g.index = torch.tensor([rank[state.index[j]] for j in state.current()],
                               dtype=torch.long, device=g.index.device)
        g.state = None


def _set_mapping(dep: Any, mapping: Callable[[Any], Any]) -> None:
    from torch_pruning.dependency import constants

    free = constants.INDEX_MAPPING_PLACEHOLDER
    if dep.index_mapping[0] is free:
        dep.index_mapping[0] = mapping
    elif dep.index_mapping[1] is free:
        dep.index_mapping[1] = mapping
    else:  # both taken (a split feeding a concat feeding a gather): compose after them
        first = dep.index_mapping[1]
        dep.index_mapping[1] = lambda idxs: mapping(first(idxs))


class _InToOut:
    """Input channel (current numbering) -> the gather outputs reading it."""

    def __init__(self, state: _GatherState) -> None:
        self.state = state

    def __call__(self, idxs: Any) -> list[Any]:
        from torch_pruning._helpers import _HybridIndex

        src = self.state.source.current()
        out_pos = {j: k for k, j in enumerate(self.state.current())}
        readers: dict[int, list[int]] = {}
        for j, orig in enumerate(self.state.index):
            if j in out_pos:
                readers.setdefault(orig, []).append(out_pos[j])
        result = []
        for i in idxs:
            if int(i.idx) < len(src):
                result += [_HybridIndex(idx=k, root_idx=i.root_idx)
                           for k in readers.get(src[int(i.idx)], [])]
        return result


class _OutToIn:
    """Gather output channel (current numbering) -> the input channel it reads."""

    def __init__(self, state: _GatherState) -> None:
        self.state = state

    def __call__(self, idxs: Any) -> list[Any]:
        from torch_pruning._helpers import _HybridIndex

        outs = self.state.current()
        src_pos = {orig: k for k, orig in enumerate(self.state.source.current())}
        result = []
        for i in idxs:
            if int(i.idx) < len(outs):
                orig = self.state.index[outs[int(i.idx)]]
                if orig in src_pos:
                    result.append(_HybridIndex(idx=src_pos[orig], root_idx=i.root_idx))
        return result
