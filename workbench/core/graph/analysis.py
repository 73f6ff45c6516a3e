"""Open a model and analyse it: the job behind File ▸ Open and `workbench inspect`."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.core.graph.describe import describe
from workbench.core.graph.display_graph import prepare_view
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


PREVIEW_WAIT_S = 2.0
"""How long an opening job waits for the window to draw its graph before the statistics."""


@dataclass(frozen=True)
class GraphReady:
    """The payload of an opening job's step: the layer graph is built and its first view
    prepared (`prepare_view`); the weight statistics come next. The window draws the graph
    then and sets `drawn`: the job waits for that (at most `PREVIEW_WAIT_S`), so that the
    statistics do not compete with the first paint for the GIL."""

    name: str
    graph: LayerGraph
    drawn: threading.Event = field(default_factory=threading.Event)


def analyse(variant: Variant, cancel: CancelToken | None = None, *, preview: bool = False
            ) -> Job[Analysis]:
    """Describe and measure an already loaded variant; with `preview`, a step carries the
    graph (`GraphReady`) before the statistics are taken."""
    cancel = cancel or CancelToken()
    yield Progress(0.4, "Building the layer graph…")
    graph = describe(variant)
    cancel.check()
    if preview:
        prepare_view(graph)
        ready = GraphReady(variant.name, graph)
        yield Progress(0.8, "Computing weight statistics…", ready)
        deadline = time.monotonic() + PREVIEW_WAIT_S
        while not (ready.drawn.wait(0.02) or cancel.cancelled or time.monotonic() > deadline):
            pass
        cancel.check()
    else:
        yield Progress(0.8, "Computing weight statistics…")
    stats = weight_stats(variant, cancel=cancel)
    # NaN/Inf weights open with a warning (the Inspector's and `inspect --json`'s)
    graph.warnings.extend(w for w in stats.warnings() if w not in graph.warnings)
    cancel.check()
    yield Progress(1.0, "Done")
    return Analysis(variant, graph, stats)


def open_model(source: str, cancel: CancelToken | None = None, *, preview: bool = False,
               **load_options: Any) -> Job[Analysis]:
    """Load `source` and analyse it, as a job (`preview`: see `analyse`)."""
    cancel = cancel or CancelToken()
    yield Progress(0.05, f"Loading {source}…")
    variant = load_model(source, **load_options)
    cancel.check()
    result = yield from analyse(variant, cancel, preview=preview)
    return result
