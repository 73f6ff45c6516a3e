"""The job behind `workbench inspect`: load and describe a model, and read its weights only as
far as asked (their statistics with `--stats`, else only a check for NaN and Inf)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.graph.analysis import open_model
from workbench.core.graph.describe import describe
from workbench.core.graph.finite_check import weight_warnings
from workbench.core.graph.layergraph import LayerGraph
from workbench.core.graph.stats import WeightStats
from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import Variant


@dataclass(frozen=True)
class Inspection:
    """A loaded variant, its layer graph and, when asked for, its weight statistics."""

    variant: Variant
    graph: LayerGraph
    stats: WeightStats | None


def inspect_model(source: str, stats: bool = False, cancel: CancelToken | None = None,
                  **load_options: Any) -> Job[Inspection]:
    """Load `source` and describe it; its graph's warnings are `open_model`'s (NaN and Inf
    weights included), but without `stats` the weights are only checked, not measured."""
    if stats:
        analysis = yield from open_model(source, cancel, **load_options)
        return Inspection(analysis.variant, analysis.graph, analysis.stats)
    cancel = cancel or CancelToken()
    yield Progress(0.05, f"Loading {source}…")
    variant = load_model(source, **load_options)
    cancel.check()
    yield Progress(0.4, "Building the layer graph…")
    graph = describe(variant)
    cancel.check()
    yield Progress(0.8, "Checking the weights for NaN and Inf…")
    graph.warnings.extend(w for w in weight_warnings(variant) if w not in graph.warnings)
    yield Progress(1.0, "Done")
    return Inspection(variant, graph, None)
