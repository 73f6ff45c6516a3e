"""What changed between two layer graphs: nodes added, removed, reshaped; ops gained or lost."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from workbench.core.graph.layergraph import LayerGraph

log = logging.getLogger(__name__)


@dataclass
class GraphDiff:
    added: list[str] = field(default_factory=list)  # node names only in the second graph
    removed: list[str] = field(default_factory=list)  # node names only in the first graph
    changed: list[dict[str, Any]] = field(default_factory=list)  # same name, new shape/params
    ops_added: dict[str, int] = field(default_factory=dict)
    ops_removed: dict[str, int] = field(default_factory=dict)
    comparable: bool = True  # False when too few node names line up (e.g. torch vs ONNX)

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "ops_added": self.ops_added, "ops_removed": self.ops_removed}


def diff_graphs(before: LayerGraph, after: LayerGraph) -> GraphDiff:
    """Line nodes up by name and compare their output shapes and parameter counts."""
    a = {n.name: n for n in before.nodes}
    b = {n.name: n for n in after.nodes}
    diff = GraphDiff()
    diff.added = [name for name in b if name not in a]
    diff.comparable = len(diff.added) < 0.8 * max(len(b), 1)
    diff.removed = [name for name in a if name not in b]
    for name, nb in b.items():
        na = a.get(name)
        if na is None:
            continue
        if na.output_shape != nb.output_shape or na.params != nb.params or na.op != nb.op:
            diff.changed.append({
                "name": name, "op": nb.op,
                "shape_before": list(na.output_shape) if na.output_shape else None,
                "shape_after": list(nb.output_shape) if nb.output_shape else None,
                "params_before": na.params, "params_after": nb.params})
    ca, cb = Counter(n.op for n in before.nodes), Counter(n.op for n in after.nodes)
    diff.ops_added = dict(cb - ca)
    diff.ops_removed = dict(ca - cb)
    return diff
