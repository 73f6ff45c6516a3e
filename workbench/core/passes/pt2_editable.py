"""An editable module from a `.pt2` program, for passes that change layer shapes.

`ExportedProgram.module()` returns a GraphModule that calls ATen ops (`aten.conv2d`,
`aten.linear`, `aten.batch_norm`, `aten.layer_norm`) on parameters held by plain
containers, so nothing in it is an `nn.Conv2d` that Torch-Pruning could shrink. Here each
such call becomes a call to a real layer built around the same parameter objects, at the
path the parameters came from (`layer1.0.conv1`); the rest of the graph is unchanged.
Flattening views with a constant feature count (`view(x, [batch, 512])`) read `-1` instead,
so they follow a pruned channel count.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from workbench.core.errors import WorkbenchError


class NotEditableError(WorkbenchError):
    """The exported program cannot be turned back into editable layers."""


def _aten() -> dict[Any, str]:
    aten = torch.ops.aten
    return {aten.conv1d.default: "conv", aten.conv2d.default: "conv",
            aten.conv3d.default: "conv", aten.linear.default: "linear",
            aten.batch_norm.default: "batch_norm", aten.layer_norm.default: "layer_norm"}


def has_editable_layers(gm: nn.Module) -> bool:
    """Whether the graph calls a convolution or linear op on its own weights."""
    kinds = _aten()
    graph: Any = getattr(gm, "graph", None)
    return graph is not None and any(
        node.op == "call_function" and kinds.get(node.target) in ("conv", "linear")
        for node in graph.nodes)


def editable_module(gm: fx.GraphModule) -> fx.GraphModule:
    """A new GraphModule whose conv / linear / norm calls go through real `nn` layers.

    The parameters are shared with `gm` (clone first). Raises `NotEditableError` when the
    program holds no such op on its own weights.
    """
    graph = gm.graph
    kinds = _aten()
    made: dict[str, nn.Module] = {}
    for node in list(graph.nodes):
        kind = kinds.get(node.target) if node.op == "call_function" else None
        if kind is None:
            continue
        layer, path, inp = _layer(gm, node, kind, made)
        if layer is None:
            continue
        made[path] = layer
        with graph.inserting_before(node):
            call = graph.call_module(path, (inp,))
        call.meta = dict(node.meta)
        node.replace_all_uses_with(call)
        graph.erase_node(node)
    if not any(isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) for m in made.values()):
        raise NotEditableError("the exported program holds no convolution or linear op on "
                               "weights of its own, so there is nothing to rebuild.")
    _free_flatten_views(graph)
    for node in list(graph.nodes):
        if node.op == "get_attr" and not node.users:
            graph.erase_node(node)
    root = nn.Module()
    for name, child in gm.named_children():
        root.add_module(name, child)
    for path, layer in made.items():  # replaces the plain container that held the weights
        _set_submodule(root, path, layer)
    for node in graph.nodes:  # what the graph still reads directly (cls tokens, buffers)
        if node.op == "get_attr":
            _copy_attr(gm, root, node.target)
    out = fx.GraphModule(root, graph, class_name="EditableProgram")
    out.graph.lint()
    return out.eval()  # the program ran its norms on running statistics


def _layer(gm: fx.GraphModule, node: fx.Node, kind: str, made: dict[str, nn.Module]
           ) -> tuple[nn.Module | None, str, Any]:
    args: list[Any] = list(node.args)
    inp, weight = args[0], args[1]
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None, "", inp  # weights computed in the graph: leave the op as it is
    target = str(weight.target)
    path = target.rsplit(".", 1)[0] if "." in target else f"{target}_layer"
    if path in made:
        return made[path], path, inp
    if path in dict(gm.named_parameters()):
        path = f"{path}_layer"
    w = gm.get_parameter(target) if _is_param(gm, target) else None
    if w is None:
        return None, "", inp

    def attr(i: int) -> Any:
        a = args[i] if i < len(args) else None
        return gm.get_parameter(str(a.target)) if isinstance(a, fx.Node) and _is_param(
            gm, str(a.target)) else (_buffer(gm, a) if isinstance(a, fx.Node) else None)

    if kind == "conv":
        layer = _conv(w, attr(2), args)
    elif kind == "linear":
        layer = nn.Linear(w.shape[1], w.shape[0], bias=attr(2) is not None)
        layer.weight, layer.bias = w, attr(2)
    elif kind == "batch_norm":
        ndim = _ndim(inp)
        if ndim is None or args[5]:  # training-mode statistics: leave it
            return None, "", inp
        cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
        layer = cls[ndim](w.shape[0], eps=float(args[7]), momentum=float(args[6]))
        layer.weight, layer.bias = w, attr(2)
        layer.running_mean, layer.running_var = attr(3), attr(4)
        layer.eval()
    else:  # layer_norm(input, normalized_shape, weight, bias, eps)
        weight = args[2]
        if not isinstance(weight, fx.Node) or not _is_param(gm, str(weight.target)):
            return None, "", inp
        w = gm.get_parameter(str(weight.target))
        path = str(weight.target).rsplit(".", 1)[0]
        layer = nn.LayerNorm(list(args[1]), eps=float(args[4]) if len(args) > 4 else 1e-5,
                             bias=attr(3) is not None)
        layer.weight, layer.bias = w, attr(3)
    return layer, path, inp


def _conv(w: nn.Parameter, bias: Any, args: list[Any]) -> nn.Module:
    dims = w.ndim - 2
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]

    def arg(i: int, default: Any) -> Any:
        return args[i] if i < len(args) else default

    groups = int(arg(6, 1))
    kernel: Any = tuple(w.shape[2:])
    layer = cls(w.shape[1] * groups, w.shape[0], kernel, stride=arg(3, 1),
                padding=arg(4, 0), dilation=arg(5, 1), groups=groups, bias=bias is not None)
    layer.weight, layer.bias = w, bias
    return layer


def _is_param(gm: nn.Module, target: str) -> bool:
    try:
        gm.get_parameter(target)
    except AttributeError:
        return False
    return True


def _buffer(gm: nn.Module, node: fx.Node) -> Any:
    try:
        return gm.get_buffer(str(node.target))
    except AttributeError:
        return None


def _ndim(node: Any) -> int | None:
    val = node.meta.get("val") if isinstance(node, fx.Node) else None
    return int(val.ndim) if val is not None else None


def _free_flatten_views(graph: fx.Graph) -> None:
    """`view(x, [batch, n])` -> `view(x, [batch, -1])`: the feature count may shrink."""
    aten = torch.ops.aten
    for node in graph.nodes:
        if node.op != "call_function" or node.target not in (
                aten.view.default, aten.reshape.default, aten._unsafe_view.default):
            continue
        shape = list(node.args[1])
        if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != -1:
            node.args = (node.args[0], [shape[0], -1])


def _set_submodule(root: nn.Module, path: str, layer: nn.Module) -> None:
    *parents, leaf = path.split(".")
    owner = root
    for name in parents:
        if not hasattr(owner, name):
            owner.add_module(name, nn.Module())
        owner = getattr(owner, name)
    if hasattr(owner, leaf):
        delattr(owner, leaf)
    owner.add_module(leaf, layer)


def _copy_attr(src: nn.Module, dst: nn.Module, target: str) -> None:
    *parents, leaf = target.split(".")
    owner_src, owner_dst = src, dst
    for name in parents:
        owner_src = getattr(owner_src, name)
        if not hasattr(owner_dst, name):
            owner_dst.add_module(name, nn.Module())
        owner_dst = getattr(owner_dst, name)
    if hasattr(owner_dst, leaf) and getattr(owner_dst, leaf) is getattr(owner_src, leaf):
        return
    value = getattr(owner_src, leaf)
    if isinstance(value, nn.Parameter):
        owner_dst.register_parameter(leaf, value)
    elif isinstance(value, torch.Tensor):
        owner_dst.register_buffer(leaf, value)
    else:
        setattr(owner_dst, leaf, value)
