"""Open a model and analyse it: the job behind File ▸ Open and `workbench inspect`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.graph.describe import describe
from workbench.core.graph.layergraph import LayerGraph
from workbench.core.graph.stats import WeightStats, weight_stats
from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """A variant with its layer graph and weight statistics."""

    variant: Variant
    graph: LayerGraph
    stats: WeightStats

    @property
    def warnings(self) -> list[str]:
        """What the user should know about the model (the graph summary's "warnings")."""
        return self.graph.warnings


def analyse(variant: Variant, cancel: CancelToken | None = None) -> Job[Analysis]:
    """Describe and measure an already loaded variant."""
    cancel = cancel or CancelToken()
    yield Progress(0.4, "Building the layer graph…")
    graph = describe(variant)
    cancel.check()
    yield Progress(0.8, "Computing weight statistics…")
    stats = weight_stats(variant)
    # NaN/Inf weights open with a warning (the Inspector's and `inspect --json`'s)
    graph.warnings.extend(w for w in stats.warnings() if w not in graph.warnings)
    cancel.check()
    yield Progress(1.0, "Done")
    return Analysis(variant, graph, stats)


def open_model(source: str, cancel: CancelToken | None = None, **load_options: Any
               ) -> Job[Analysis]:
    """Load `source` and analyse it, as a job."""
    cancel = cancel or CancelToken()
    yield Progress(0.05, f"Loading {source}…")
    variant = load_model(source, **load_options)
    cancel.check()
    result = yield from analyse(variant, cancel)
    return result
