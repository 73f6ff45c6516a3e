"""A framework-neutral layer graph shared by the ONNX and PyTorch backends."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

T = TypeVar("T")

log = logging.getLogger(__name__)

# Op categories drive node colours in the GUI; keys are lower-cased op names.
_CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("quantize", ("quantize", "dequantize", "qlinear", "integer", "fake_quant")),
    ("attention", ("attention", "softmax", "scaled_dot_product")),
    ("conv", ("conv",)),
    ("linear", ("gemm", "matmul", "linear", "addmm", "bmm", "mm", "einsum", "embedding", "gather")),
    ("recurrent", ("lstm", "gru", "rnn")),
    ("norm", ("norm", "lrn", "batch_norm", "instancenorm")),
    ("activation", ("relu", "gelu", "sigmoid", "tanh", "silu", "swish", "elu", "clip",
                    "hardtanh", "hardswish", "hardsigmoid", "mish", "prelu", "softplus")),
    ("pool", ("pool", "adaptive_avg", "mean", "reduce")),
    ("elementwise", ("add", "mul", "sub", "div", "pow", "sqrt", "exp", "neg", "erf", "where",
                     "dropout", "abs", "sum", "max", "min")),
    ("shape", ("reshape", "view", "flatten", "transpose", "permute", "concat", "cat", "split",
               "slice", "squeeze", "unsqueeze", "shape", "expand", "tile", "pad", "constant",
               "cast", "identity", "to", "clone", "contiguous", "select", "getitem", "size",
               "resize", "upsample", "chunk", "stack", "_to_copy", "full", "zeros", "ones",
               "arange")),
)

CATEGORIES: tuple[str, ...] = (*(c for c, _ in _CATEGORY_KEYWORDS), "group", "other")


def op_category(op: str) -> str:
    """Return the display category of an op type (`Conv`, `aten.linear`, ...)."""
    name = op.lower().rsplit(".", 1)[-1]
    for category, words in _CATEGORY_KEYWORDS:
        if any(w == name or w in name for w in words if len(w) > 3) or name in words:
            return category
    return "other"


@dataclass(frozen=True)
class TensorInfo:
    """A tensor flowing between nodes: its name, shape (None if unknown) and dtype."""

    name: str
    shape: tuple[int | str, ...] | None = None
    dtype: str | None = None

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "×".join(str(d) for d in self.shape) if self.shape else "scalar"


@dataclass
class Node:
    """One operation of the graph."""

    name: str
    op: str
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    params: int = 0
    param_names: list[str] = field(default_factory=list)
    macs: int = 0
    module_path: tuple[str, ...] = ()
    module_type: str | None = None
    param_shapes: dict[str, tuple[int | str, ...]] = field(default_factory=dict)
    """Shape of each weight in `param_names` (when the backend knows it)."""

    @property
    def category(self) -> str:
        return op_category(self.op)

    @property
    def output_shape(self) -> tuple[int | str, ...] | None:
        return self.outputs[0].shape if self.outputs else None


@dataclass(frozen=True)
class Edge:
    """A tensor passed from `src` to `dst` (node names)."""

    src: str
    dst: str
    tensor: str
    shape: tuple[int | str, ...] | None = None


@dataclass
class LayerGraph:
    """Nodes in topological order, the edges between them, and totals."""

    format: str
    nodes: list[Node]
    edges: list[Edge]
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    parameters: int = 0
    size_bytes: int = 0
    module_types: dict[tuple[str, ...], str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_name = {n.name: n for n in self.nodes}
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, run once per `key` for this graph (derived views of big graphs).

        A graph is not changed after it is built, so what is derived from its nodes stays
        true; a worker can compute it ahead and the GUI thread then only looks it up.
        """
        try:
            return cast(T, self._memo[key])
        except KeyError:
            value = self._memo[key] = compute()
            return value

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    def node(self, name: str) -> Node:
        return self._by_name[name]

    def op_counts(self) -> dict[str, int]:
        return dict(Counter(n.op for n in self.nodes).most_common())

    def module_paths(self) -> set[tuple[str, ...]]:
        """Every module prefix that holds at least one node."""
        paths: set[tuple[str, ...]] = set()
        for n in self.nodes:
            for i in range(1, len(n.module_path) + 1):
                paths.add(n.module_path[:i])
        return paths

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by `workbench inspect`."""
        return {
            "format": self.format,
            "nodes": len(self.nodes),
            "edges": len(self.edges),
            "parameters": self.parameters,
            "size_bytes": self.size_bytes,
            "macs": self.macs,
            "inputs": [_tensor_json(t) for t in self.inputs],
            "outputs": [_tensor_json(t) for t in self.outputs],
            "op_counts": self.op_counts(),
            "layers": self._layers_json(),
            "warnings": self.warnings,
        }

    def _layers_json(self) -> list[dict[str, Any]]:
        modules: dict[tuple[str, ...], str] = {}  # a module's dotted name, joined once
        layers = []
        for n in self.nodes:
            module = modules.get(n.module_path)
            if module is None:
                module = modules[n.module_path] = ".".join(n.module_path)
            shape = n.output_shape
            layers.append({"name": n.name, "op": n.op, "module": module, "params": n.params,
                           "macs": n.macs,
                           "output_shape": list(shape) if shape is not None else None})
        return layers


def _tensor_json(t: TensorInfo) -> dict[str, Any]:
    return {"name": t.name, "shape": list(t.shape) if t.shape is not None else None,
            "dtype": t.dtype}


def edges_from_nodes(nodes: list[Node]) -> list[Edge]:
    """Connect every node input to the node that produced that tensor."""
    producer: dict[str, str] = {}
    for n in nodes:
        for t in n.outputs:
            producer[t.name] = n.name
    edges = []
    for n in nodes:
        for t in n.inputs:
            src = producer.get(t.name)
            if src is not None and src != n.name:
                edges.append(Edge(src, n.name, t.name, t.shape))
    return edges
