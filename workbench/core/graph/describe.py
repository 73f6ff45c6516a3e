"""`describe(variant)`: the LayerGraph of any variant, whatever its backend."""

from __future__ import annotations

import logging

from workbench.core.graph.layergraph import LayerGraph
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)


def describe(variant: Variant) -> LayerGraph:
    if variant.backend == "onnx":
        from workbench.core.graph.graph_onnx import onnx_layer_graph

        return onnx_layer_graph(variant.model, {s.name: s.shape for s in variant.inputs})
    from workbench.core.graph.graph_torch import torch_layer_graph

    return torch_layer_graph(variant)
