"""Channel shuffles that cannot be traced: keep whole every channel group they touch.

(The fallback of `prune_gather`, which prunes through shuffles in models `torch.fx` can
trace.)

A channel shuffle (ShuffleNet's `view(b, g, c/g, h, w) -> transpose -> view(b, c, h, w)`)
interleaves channels. Torch-Pruning's dependency graph reads its two reshapes as a flatten
and fails on them (ZeroDivisionError or a split offset out of range). While the graph is
built, each shuffle found in the model runs instead as one opaque autograd op, which
Torch-Pruning treats as channel-preserving; every group that reaches such an op is then
kept whole, because its identity index mapping would be wrong. Channels that never cross a
shuffle (inside a ShuffleNet branch, the stem, the last convolution) are still pruned.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

OPAQUE_NAME = "OpaqueChannelShuffle"


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, *rest = x.shape
    return x.reshape(b, groups, c // groups, *rest).transpose(1, 2).reshape(b, c, *rest)


class OpaqueChannelShuffle(torch.autograd.Function):
    """A channel shuffle as a single autograd node (its grad_fn names it)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, groups: int) -> torch.Tensor:
        ctx.groups = groups
        return _shuffle(x, groups)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        # the inverse of shuffling c channels in g groups is shuffling them in c/g groups
        return _shuffle(grad, grad.shape[1] // ctx.groups), None


def _opaque(x: torch.Tensor, groups: int) -> torch.Tensor:
    return OpaqueChannelShuffle.apply(x, groups)


@contextmanager
def opaque_channel_shuffles(model: nn.Module) -> Iterator[int]:
    """Within the block, the model's channel shuffles run as `OpaqueChannelShuffle`.

    Found: a module-level function named `channel_shuffle(x, groups)` in the Python module
    defining any of the model's layers (torchvision's ShuffleNetV2 and the usual idiom),
    and `nn.ChannelShuffle` layers. Yields how many places were patched.
    """
    patched: list[tuple[Any, str, Any]] = []
    for py_module in {sys.modules.get(type(m).__module__) for m in model.modules()}:
        fn = getattr(py_module, "channel_shuffle", None)
        if py_module is not None and callable(fn) and not isinstance(fn, type):
            patched.append((py_module, "channel_shuffle", fn))
    shuffles = [m for m in model.modules() if isinstance(m, nn.ChannelShuffle)]
    try:
        for owner, attr, _ in patched:
            setattr(owner, attr, _opaque)
        for m in shuffles:
            m.forward = _bound(m.groups)  # type: ignore[method-assign,assignment]
        yield len(patched) + len(shuffles)
    finally:
        for owner, attr, fn in patched:
            setattr(owner, attr, fn)
        for m in shuffles:
            del m.forward


def _bound(groups: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: _opaque(x, groups)


@contextmanager
def checked_splits() -> Iterator[list[nn.Module]]:
    """While a dependency graph is built, drop the index mapping of every split (chunk)
    whose channel sizes Torch-Pruning inferred wrong; yields those splits' graph nodes,
    whose groups must be kept whole.

    (Torch-Pruning infers a chunk's sizes from the layers after it; behind a channel
    shuffle it gets them wrong, and its split mapping then indexes out of range.)
    """
    from torch_pruning.dependency import graph as tp_graph
    from torch_pruning.dependency import shape_infer

    original = shape_infer.init_shape_information
    bad: list[nn.Module] = []

    def init_shape_information(graph: Any) -> None:
        original(graph)
        for module, node in graph.module2node.items():
            offsets = getattr(module, "offsets", None)
            if type(module).__name__ != "_SplitOp" or offsets is None:
                continue
            sizes = getattr(node.grad_fn, "_saved_self_sym_sizes", None)
            dim = getattr(node.grad_fn, "_saved_dim", 1)
            total = int(sizes[dim]) if sizes is not None and dim == 1 else None
            if len(offsets) != len(node.outputs) + 1 or (
                    total is not None and offsets[-1] != total):
                module.offsets = None  # no mapping: the group stays whole instead
                bad.append(module)

    tp_graph.shape_infer.init_shape_information = init_shape_information
    try:
        yield bad
    finally:
        tp_graph.shape_infer.init_shape_information = original


def shuffle_ops(graph: Any) -> list[nn.Module]:
    """The dependency graph's nodes for the opaque shuffles."""
    return [m for m in graph.module2node if OPAQUE_NAME in str(getattr(m, "_grad_fn", ""))]
