"""Build a LayerGraph from a PyTorch module.

Capture is by `torch.export` (which handles transformers), then `torch.fx` with shape
propagation, then TorchScript's own graph, and last the module tree alone.
"""

from __future__ import annotations

import logging
from typing import Any

from workbench.core.errors import first_line
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.core.graph.macs import torch_module_macs, torch_op_macs
from workbench.core.graph.torch_attributes import literal_attributes, module_attributes
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)
_SKIP_TARGETS = {"getitem", "_assert_tensor_metadata", "sym_size", "_set_grad_enabled"}


def torch_layer_graph(variant: Variant) -> LayerGraph:
    """Describe a torch variant; shapes and MACs use its declared example inputs."""
    import torch

    model = variant.model
    params, size = _totals(model)
    warnings: list[str] = []
    if not variant.inputs:
        warnings.append("No input shape given: the graph shows the module tree only.")
        return _module_tree_graph(model, params, size, warnings)
    args = _fit_exported_inputs(model, variant.example_inputs(), warnings)
    if isinstance(model, torch.jit.ScriptModule):
        graph = _torchscript_graph(model, args, params, size, warnings)
        if graph is not None:
            return graph
        return _module_tree_graph(model, params, size, warnings)
    try:
        return _export_graph(model, args, variant, params, size, warnings)
    except Exception as exc:
        log.debug("torch.export of %s failed", variant.name, exc_info=True)
        warnings.append(f"torch.export failed ({first_line(exc)}); used torch.fx.")
    try:
        return _fx_graph(model, args, variant, params, size, warnings)
    except Exception as exc:
        log.debug("torch.fx capture of %s failed", variant.name, exc_info=True)
        warnings.append(f"torch.fx failed ({first_line(exc)}); showing the module tree.")
    return _module_tree_graph(model, params, size, warnings)


def _fit_exported_inputs(model: Any, args: tuple[Any, ...], warnings: list[str]
                         ) -> tuple[Any, ...]:
    """Inputs a torch.export module accepts: its static sizes, its dynamic sizes' ranges.

    The module of a loaded .pt2 asserts the shapes it was exported with (a guard per
    static size and per dynamic size's bounds); a declared shape that breaks one would
    fail every capture, so the graph is captured at the nearest shape it accepts.
    """
    import torch

    if not isinstance(model, torch.fx.GraphModule) or not hasattr(model, "_in_spec"):
        return args
    vals = [n.meta.get("val") for n in model.graph.nodes if n.op == "placeholder"]
    if len(vals) != len(args):
        return args
    ranges = getattr(model, "range_constraints", None) or {}
    fitted = []
    for i, (arg, val) in enumerate(zip(args, vals, strict=True)):
        if not isinstance(arg, torch.Tensor) or not isinstance(val, torch.Tensor) or (
                val.dim() != arg.dim()):
            fitted.append(arg)
            continue
        shape = tuple(_accepted_size(d, int(a), ranges)
                      for d, a in zip(val.shape, arg.shape, strict=True))
        if shape == tuple(arg.shape):
            fitted.append(arg)
            continue
        gen = torch.Generator().manual_seed(i)
        fitted.append(torch.randn(shape, generator=gen, dtype=arg.dtype)
                      if arg.dtype.is_floating_point else torch.zeros(shape, dtype=arg.dtype))
        warnings.append(f"The exported program does not accept input {i} as "
                        f"{'x'.join(map(str, arg.shape))}; the graph is captured at "
                        f"{'x'.join(map(str, shape))}.")
    return tuple(fitted)


def _accepted_size(dim: Any, wanted: int, ranges: dict[Any, Any]) -> int:
    """`wanted` if the exported dimension `dim` allows it, else the nearest it allows."""
    if isinstance(dim, int):
        return dim
    bounds = ranges.get(getattr(getattr(dim, "node", None), "expr", None))
    if bounds is None:
        return wanted
    low, high = _finite_int(bounds.lower), _finite_int(bounds.upper)
    if low is not None and wanted < low:
        return low
    if high is not None and wanted > high:
        return high
    return wanted


def _finite_int(bound: Any) -> int | None:
    """A range bound as an int; None for torch's and sympy's infinities."""
    if isinstance(bound, int):
        return bound
    return int(bound) if getattr(bound, "is_Integer", False) else None


def _totals(model: Any) -> tuple[int, int]:
    """Parameter count and bytes, packed int8 weights of quantized layers included."""
    import torch

    params = sum(p.numel() for p in model.parameters())
    size = sum(t.numel() * t.element_size() for t in _tensors(model))
    seen: set[int] = set()

    def packed(value: Any) -> None:
        nonlocal params, size
        if isinstance(value, torch.Tensor):
            if id(value) not in seen:
                seen.add(id(value))
                params += value.numel()
                size += value.numel() * value.element_size()
        elif isinstance(value, (tuple, list)):
            for v in value:
                packed(v)

    for key, value in model.state_dict().items():
        if "_packed_params" in key:
            packed(value)
    for module in model.modules():  # dynamic-quantized LSTM/GRU keep ScriptObjects
        if hasattr(module, "_all_weight_values") and callable(getattr(module, "_weight_bias",
                                                                      None)):
            try:
                weights = module._weight_bias()
            except Exception:
                log.debug("cannot unpack the weights of %s", type(module).__name__, exc_info=True)
                continue
            for group in weights.values() if isinstance(weights, dict) else [weights]:
                packed(list(group.values()) if isinstance(group, dict) else group)
    return params, size


def _tensors(model: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for t in (*model.parameters(), *model.buffers()):
        seen.setdefault(id(t), t)
    return list(seen.values())


def _module_types(model: Any) -> dict[tuple[str, ...], str]:
    return {tuple(name.split(".")): type(m).__name__ for name, m in model.named_modules() if name}


def _meta_info(name: str, val: Any) -> TensorInfo:
    if isinstance(val, (list, tuple)):
        val = val[0] if val else None
    shape = getattr(val, "shape", None)
    if shape is None:
        return TensorInfo(name)
    dims = tuple(int(d) if str(d).lstrip("-").isdigit() else str(d) for d in shape)
    return TensorInfo(name, dims, str(getattr(val, "dtype", "")).removeprefix("torch."))


def _export_graph(model: Any, args: tuple[Any, ...], variant: Variant, params: int, size: int,
                  warnings: list[str]) -> LayerGraph:
    import torch
    from torch.utils.flop_counter import flop_registry

    with torch.no_grad():
        program = torch.export.export(model, args, strict=False)
    sig = program.graph_signature
    param_of = dict(sig.inputs_to_parameters)
    sizes = {name: t.numel() for name, t in program.state_dict.items()}
    nodes: list[Node] = []
    for fx_node in program.graph.nodes:
        if fx_node.op != "call_function":
            continue
        target = fx_node.target
        short = getattr(target, "__name__", str(target)).split(".")[0]
        if short in _SKIP_TARGETS:
            continue
        node_inputs: list[TensorInfo] = []
        param_names: list[str] = []
        param_shapes: dict[str, tuple[int | str, ...]] = {}
        for arg in fx_node.all_input_nodes:
            real = _through_getitem(arg)
            info = _meta_info(real.name, real.meta.get("val"))
            node_inputs.append(info)
            if real.op == "placeholder" and real.name in param_of:
                param_names.append(param_of[real.name])
                if info.shape is not None:
                    param_shapes[param_of[real.name]] = info.shape
        outputs = [_meta_info(fx_node.name, fx_node.meta.get("val"))]
        stack = fx_node.meta.get("nn_module_stack") or {}
        path: tuple[str, ...] = ()
        mtype = None
        if stack:
            fqn, mcls = list(stack.values())[-1]
            path = _clean_path(fqn)
            mtype = getattr(mcls, "__name__", str(mcls)).rsplit(".", 1)[-1]
        op = f"aten.{short}" if "aten" in str(target) or hasattr(target, "_schema") else short
        node = Node(
            name=fx_node.name, op=op, inputs=node_inputs, outputs=outputs,
            attributes=literal_attributes(target, fx_node.args, fx_node.kwargs),
            params=sum(sizes.get(p, 0) for p in param_names), param_names=param_names,
            param_shapes=param_shapes, module_path=path, module_type=mtype,
        )
        node.macs = torch_op_macs(short, node) or _export_macs(fx_node, flop_registry)
        nodes.append(node)
    _drop_getitem_inputs(nodes)
    inputs = [_meta_info(n.name, n.meta.get("val")) for n in program.graph.nodes
              if n.op == "placeholder" and n.name in sig.user_inputs]
    return LayerGraph("torch", nodes, edges_from_nodes(nodes), inputs=inputs,
                      outputs=nodes[-1].outputs if nodes else [], parameters=params,
                      size_bytes=size, module_types=_module_types(model), warnings=warnings)


def _through_getitem(node: Any) -> Any:
    """`getitem` nodes unpack tuples; edges should start at the producing op."""
    import operator

    while node.op == "call_function" and node.target is operator.getitem:
        node = node.args[0]
    return node


def _drop_getitem_inputs(nodes: list[Node]) -> None:
    """Drop inputs named after skipped `getitem` nodes (the producing op feeds them)."""
    names = {n.name for n in nodes}
    for n in nodes:
        n.inputs = [t for t in n.inputs if t.name in names or not t.name.startswith("getitem")]


def _clean_path(fqn: str) -> tuple[str, ...]:
    fqn = fqn.removeprefix("L['self'].").removeprefix("L__self__.")
    parts = []
    for p in fqn.replace("[", ".").replace("]", "").split("."):
        p = p.strip("'\"")
        if p and p != "L['self']":
            parts.append(p.removeprefix("_modules.").strip("'\""))
    return tuple(parts)


def _export_macs(fx_node: Any, registry: dict[Any, Any]) -> int:
    """MACs from torch's own FLOP formulas, applied to the recorded fake tensors."""
    import torch

    target = fx_node.target
    packet = getattr(target, "overloadpacket", None)
    if packet is None or packet not in registry:
        return 0

    def val(a: Any) -> Any:
        return a.meta.get("val") if isinstance(a, torch.fx.Node) else a

    try:
        args = torch.fx.node.map_aggregate(fx_node.args, val)
        kwargs = torch.fx.node.map_aggregate(fx_node.kwargs, val)
        flops = registry[packet](*args, **kwargs, out_val=fx_node.meta.get("val"))
    except Exception:
        log.debug("no FLOP count for %s", fx_node.name, exc_info=True)
        return 0
    return int(flops) // 2


def _fx_graph(model: Any, args: tuple[Any, ...], variant: Variant, params: int, size: int,
              warnings: list[str]) -> LayerGraph:
    import torch

    gm = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        _quiet_shape_prop(gm).propagate(*args)
    modules = dict(gm.named_modules())
    nodes: list[Node] = []
    for fx_node in gm.graph.nodes:
        if fx_node.op in ("placeholder", "output", "get_attr"):
            continue
        meta = fx_node.meta.get("tensor_meta")
        out = TensorInfo(fx_node.name, tuple(meta.shape), str(meta.dtype).removeprefix(
            "torch.")) if meta is not None and hasattr(meta, "shape") else TensorInfo(
            fx_node.name)
        ins = []
        for a in fx_node.all_input_nodes:
            m = a.meta.get("tensor_meta")
            ins.append(TensorInfo(a.name, tuple(m.shape)) if m is not None and hasattr(
                m, "shape") else TensorInfo(a.name))
        n_params, names, mtype = 0, [], None
        shapes: dict[str, tuple[int | str, ...]] = {}
        path: tuple[str, ...] = ()
        if fx_node.op == "call_module":
            mod = modules[fx_node.target]
            mtype = type(mod).__name__
            op = mtype
            path = tuple(str(fx_node.target).split("."))
            attrs = module_attributes(mod)
            for pname, p in mod.named_parameters():
                names.append(f"{fx_node.target}.{pname}")
                shapes[names[-1]] = tuple(p.shape)
                n_params += p.numel()
        else:
            op = getattr(fx_node.target, "__name__", str(fx_node.target))
            attrs = literal_attributes(fx_node.target, fx_node.args, fx_node.kwargs)
        node = Node(fx_node.name, op, ins, [out], attributes=attrs, params=n_params,
                    param_names=names, param_shapes=shapes, module_path=path,
                    module_type=mtype)
        node.macs = (torch_module_macs(modules.get(fx_node.target), node)
                     if fx_node.op == "call_module" else torch_op_macs(op, node))
        nodes.append(node)
    inputs = [TensorInfo(s.name, tuple(getattr(a, "shape", s.shape)), s.dtype)
              for s, a in zip(variant.inputs, args, strict=False)]
    return LayerGraph("torch", nodes, edges_from_nodes(nodes), inputs=inputs,
                      outputs=nodes[-1].outputs if nodes else [], parameters=params,
                      size_bytes=size, module_types=_module_types(model), warnings=warnings)


def _quiet_shape_prop(gm: Any) -> Any:
    """torch's ShapeProp without its `traceback.print_exc()` on a failing node."""
    import torch
    from torch.fx.node import map_aggregate
    from torch.fx.passes.shape_prop import ShapeProp, _extract_tensor_metadata

    class QuietShapeProp(ShapeProp):
        def run_node(self, n: Any) -> Any:
            result = torch.fx.Interpreter.run_node(self, n)
            found = False

            def meta(obj: Any) -> Any:
                nonlocal found
                if isinstance(obj, torch.Tensor):
                    found = True
                    return _extract_tensor_metadata(obj)
                return obj

            tensor_meta = map_aggregate(result, meta)
            if found:
                n.meta["tensor_meta"] = tensor_meta
            n.meta["type"] = type(result)
            return result

    return QuietShapeProp(gm)


def _torchscript_graph(model: Any, args: tuple[Any, ...], params: int, size: int,
                       warnings: list[str]) -> LayerGraph | None:
    import torch

    try:
        graph = model.inlined_graph
        torch._C._jit_pass_inline(graph)
    except Exception as exc:
        log.debug("TorchScript graph unavailable", exc_info=True)
        warnings.append(f"TorchScript graph unavailable: {first_line(exc)}")
        return None
    nodes: list[Node] = []
    for i, jn in enumerate(graph.nodes()):
        kind = jn.kind()
        if kind.startswith("prim::") and kind not in ("prim::CallMethod",):
            continue
        outs = [TensorInfo(o.debugName(), _jit_shape(o)) for o in jn.outputs()]
        ins = [TensorInfo(v.debugName(), _jit_shape(v)) for v in jn.inputs()]
        scope = jn.scopeName()
        path = tuple(p.split("(")[0] for p in scope.split("/") if p and p != "__module")
        nodes.append(Node(f"{kind.split('::')[-1]}_{i}", kind.replace("::", "."), ins, outs,
                          module_path=tuple(p.removeprefix("__module.") for p in path)))
    if not nodes:
        return None
    warnings.append("TorchScript graph: shapes and MACs are not recorded.")
    del args
    return LayerGraph("torchscript", nodes, edges_from_nodes(nodes), parameters=params,
                      size_bytes=size, warnings=warnings)


def _jit_shape(value: Any) -> tuple[int | str, ...] | None:
    try:
        sizes = value.type().sizes()
    except Exception:
        log.debug("no static sizes for a TorchScript value", exc_info=True)
        return None
    return tuple(sizes) if sizes is not None else None


def _module_tree_graph(model: Any, params: int, size: int, warnings: list[str]) -> LayerGraph:
    """One node per leaf module, chained in definition order."""
    nodes = []
    prev: TensorInfo | None = None
    for name, mod in model.named_modules():
        if not name or any(True for _ in mod.children()):
            continue
        out = TensorInfo(f"{name}:out")
        own = list(mod.named_parameters(recurse=False))
        nodes.append(Node(name, type(mod).__name__, [prev] if prev else [], [out],
                          attributes=module_attributes(mod),
                          params=sum(p.numel() for _, p in own),
                          param_names=[f"{name}.{p}" for p, _ in own],
                          param_shapes={f"{name}.{p}": tuple(t.shape) for p, t in own},
                          module_path=tuple(name.split(".")), module_type=type(mod).__name__))
        prev = out
    return LayerGraph("torch", nodes, edges_from_nodes(nodes), parameters=params,
                      size_bytes=size, module_types=_module_types(model), warnings=warnings)
