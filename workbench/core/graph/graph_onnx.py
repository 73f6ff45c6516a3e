"""Build a LayerGraph from an ONNX model, with shapes from onnx's own shape inference."""

from __future__ import annotations

import logging
import math
from typing import Any

from workbench.core.graph.display_graph import gc_paused
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.core.graph.macs import ONNX_MAC_OPS, onnx_node_macs

log = logging.getLogger(__name__)


def onnx_layer_graph(model: Any, input_shapes: dict[str, tuple[int, ...]] | None = None
                     ) -> LayerGraph:
    """Describe `model` (an `onnx.ModelProto`).

    Free input dimensions take their size from `input_shapes` (the variant's declared
    inputs) or else 1, so that MACs are counted for a concrete input.
    """
    with gc_paused():  # many small acyclic objects: the cyclic GC only slows this down
        return _onnx_layer_graph(model, input_shapes)


def _onnx_layer_graph(model: Any, input_shapes: dict[str, tuple[int, ...]] | None
                      ) -> LayerGraph:
    import onnx
    from onnx import helper

    warnings: list[str] = []
    graph = model.graph
    fixed = _fix_free_dims(model, input_shapes or {})
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception as exc:  # shape inference is best effort
        log.debug("ONNX shape inference failed", exc_info=True)
        warnings.append(f"Shape inference failed: {str(exc).splitlines()[0]}")
        inferred = model
    infos: dict[str, TensorInfo] = {}
    dtypes = _DtypeNames(helper)
    read_info = _TensorInfoReader(dtypes)
    for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        infos[vi.name] = read_info(vi)
    del inferred  # a second copy of every node: drop it before the graph is built
    # each protobuf field read costs a lookup: read every node's fields once (a slice is
    # the quickest copy of a repeated field)
    protos = [(n, n.name, n.op_type, n.domain, n.input[:], n.output[:]) for n in graph.node]
    static = _StaticShapes()
    if not all(static(infos.get(t)) for *_, outs in protos for t in outs if t):
        _fill_symbolic_shapes(fixed, infos, dtypes)
    init_sizes: dict[str, int] = {}
    init_bytes = 0
    for init in graph.initializer:
        shape = tuple(int(d) for d in init.dims)
        init_sizes[init.name] = math.prod(shape)
        init_bytes += init_sizes[init.name] * dtypes.itemsize(init.data_type)
        infos.setdefault(init.name, TensorInfo(init.name, shape, dtypes(init.data_type)))

    nodes: list[Node] = []
    used_names: set[str] = set()
    scopes: dict[str, tuple[str, ...]] = {}  # a scope's module path, by its text
    for i, (n, raw_name, op_type, domain, in_names, out_names) in enumerate(protos):
        first_out = out_names[0] if out_names else ""
        name = raw_name or first_out or f"{op_type}_{i}"
        if name in used_names:
            name = f"{name}_{i}"
        used_names.add(name)
        param_names = [t for t in in_names if t in init_sizes]
        op = op_type if not domain or domain == "ai.onnx" else f"{domain}.{op_type}"
        node = Node(
            name=name,
            op=op,
            inputs=[infos.get(t) or TensorInfo(t) for t in in_names if t],
            outputs=[infos.get(t) or TensorInfo(t) for t in out_names if t],
            attributes=_attributes(n.attribute, helper) if n.attribute else {},
            params=sum(init_sizes[t] for t in param_names) if param_names else 0,
            param_names=param_names,
            param_shapes={t: s for t in param_names if (s := infos[t].shape) is not None}
            if param_names else {},
            module_path=_scope_of(raw_name, first_out, scopes),
        )
        if op.rsplit(".", 1)[-1] in ONNX_MAC_OPS:  # every other op counts 0
            node.macs = onnx_node_macs(node)
        nodes.append(node)
    real_inputs = [infos.get(i.name, TensorInfo(i.name)) for i in graph.input
                   if i.name not in init_sizes]
    return LayerGraph(
        format="onnx",
        nodes=nodes,
        edges=edges_from_nodes(nodes),
        inputs=real_inputs,
        outputs=[infos.get(o.name, TensorInfo(o.name)) for o in graph.output],
        parameters=sum(init_sizes.values()),
        size_bytes=init_bytes,
        warnings=warnings,
    )


def _static(info: TensorInfo | None) -> bool:
    return info is not None and info.shape is not None and all(
        isinstance(d, int) for d in info.shape)


def _fill_symbolic_shapes(model: Any, infos: dict[str, TensorInfo], dtypes: _DtypeNames
                          ) -> None:
    """Fill the shapes onnx's inference left free with ONNX Runtime's symbolic inference.

    onnx cannot fold shape arithmetic such as `channels // groups` (a Div on a Shape) into
    a Reshape's target, so after a TorchScript-exported channel shuffle every later tensor
    has a free size and no MACs; ONNX Runtime's inference evaluates that arithmetic.
    """
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True,
                                                       guess_output_rank=True)
    except Exception:
        log.debug("symbolic shape inference failed", exc_info=True)
        return
    if inferred is None:
        return
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        info = _tensor_info(vi, dtypes)
        if _static(info) and not _static(infos.get(vi.name)):
            infos[vi.name] = info


def _fix_free_dims(model: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    """A copy of `model` whose symbolic input dimensions are concrete (for MACs).

    A named free dimension (`batch`, `sequence`) takes the same size wherever it appears in
    the graph's recorded shapes, so exporter-written value_info stays consistent.
    """
    import onnx

    inits = {i.name for i in model.graph.initializer}
    if all(d.HasField("dim_value") for i in model.graph.input if i.name not in inits
           for d in i.type.tensor_type.shape.dim):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    named: dict[str, int] = {}
    for inp in copy.graph.input:
        if inp.name in inits:
            continue
        given = shapes.get(inp.name)
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                size = int(given[i]) if given is not None and i < len(given) else 1
                if d.dim_param:
                    named.setdefault(d.dim_param, size)
                d.Clear()
                d.dim_value = size
    if named:
        for vi in (*copy.graph.value_info, *copy.graph.output):
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param in named:
                    size = named[d.dim_param]
                    d.Clear()
                    d.dim_value = size
    return copy


class _DtypeNames:
    """numpy dtype names (and item sizes) of ONNX element types, looked up once per type."""

    def __init__(self, helper: Any) -> None:
        self._helper = helper
        self._names: dict[int, str | None] = {0: None}
        self._sizes: dict[int, int] = {}

    def __call__(self, elem_type: int) -> str | None:
        name = self._names.get(elem_type, "")
        if name == "":
            name = self._names[elem_type] = str(self._helper.tensor_dtype_to_np_dtype(elem_type))
        return name

    def itemsize(self, elem_type: int) -> int:
        size = self._sizes.get(elem_type)
        if size is None:
            size = self._sizes[elem_type] = int(
                self._helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
        return size


def _tensor_info(vi: Any, dtypes: _DtypeNames) -> TensorInfo:
    t = vi.type.tensor_type
    shape: tuple[int | str, ...] | None = None
    if t.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                      for d in t.shape.dim)
    return TensorInfo(vi.name, shape, dtypes(t.elem_type))


class _TensorInfoReader:
    """`_tensor_info`, read once per distinct type: a big graph repeats a few shapes, and
    the serialized type is a quicker key than reading its dimensions one by one."""

    def __init__(self, dtypes: _DtypeNames) -> None:
        self._dtypes = dtypes
        self._by_type: dict[bytes, TensorInfo] = {}

    def __call__(self, vi: Any) -> TensorInfo:
        key = vi.type.SerializeToString()
        known = self._by_type.get(key)
        if known is None:
            known = self._by_type[key] = _tensor_info(vi, self._dtypes)
        return known if known.name == vi.name else TensorInfo(vi.name, known.shape, known.dtype)


class _StaticShapes:
    """Whether a tensor's shape is known and every dimension a number, once per shape."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[int | str, ...], bool] = {}

    def __call__(self, info: TensorInfo | None) -> bool:
        if info is None or info.shape is None:
            return False
        known = self._shapes.get(info.shape)
        if known is None:
            known = self._shapes[info.shape] = all(isinstance(d, int) for d in info.shape)
        return known


# AttributeProto types read directly (the rest go through onnx.helper)
_FLOAT, _INT, _FLOATS, _INTS = 1, 2, 6, 7


def _attributes(attrs: Any, helper: Any) -> dict[str, Any]:
    """A node's attributes by name, as `_attr_value` reads them (numbers read directly)."""
    out: dict[str, Any] = {}
    for a in attrs:
        kind = a.type
        if a.ref_attr_name or kind not in (_INT, _INTS, _FLOAT, _FLOATS):
            out[a.name] = _attr_value(a, helper)
        elif kind == _INT:
            out[a.name] = a.i
        elif kind == _INTS:
            out[a.name] = a.ints[:16]
        elif kind == _FLOAT:
            out[a.name] = a.f
        else:
            out[a.name] = a.floats[:16]
    return out


def _attr_value(attr: Any, helper: Any) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value
                ][:16] if all(not hasattr(v, "ListFields") for v in value) else "<tensors>"
    if hasattr(value, "ListFields"):
        return f"<{type(value).__name__}>"
    return value


def _scope_of(node_name: str, output_name: str, scopes: dict[str, tuple[str, ...]]
              ) -> tuple[str, ...]:
    """`_scope`, split once per scope: the nodes of a module share everything before the
    last `/` of their names (`/layer1/0/conv1` of `/layer1/0/conv1/Conv`)."""
    head, slash, tail = node_name.rpartition("/")
    if not (slash and tail):
        return _scope(node_name, output_name)
    path = scopes.get(head)
    if path is None:
        path = scopes[head] = tuple(p for p in head.split("/") if p)
    return path


def _scope(node_name: str, output_name: str) -> tuple[str, ...]:
    """Module path from a scoped name such as `/layer1/0/conv1/Conv` or `conv1/7x7_s2`."""
    for name in (node_name, output_name):
        if "/" in name:
            parts = [p for p in name.split("/") if p]
            return tuple(parts[:-1])
    for name in (node_name, output_name):
        if "." in name and not name.replace(".", "").isdigit():
            parts = [p for p in name.split(".") if p]
            return tuple(parts[:-1])
    return ()
