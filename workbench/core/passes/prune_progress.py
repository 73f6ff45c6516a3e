"""Progress (and cancel points) inside Torch-Pruning's long steps.

Torch-Pruning builds its dependency graph in four stages (trace the model, link the layers,
infer shapes, map concatenations and splits) and then prunes one channel group after
another; neither reports anything. `graph_progress` wraps the four stages for the length of
a `with` block (one job runs at a time), and `prune_groups` prunes group by group through
`BasePruner.step(interactive=True)`, so a run shows where it is, and can be cancelled
between stages and groups when it runs in-process (a child process is simply killed).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from workbench.core.jobs import CancelToken

Report = Callable[[float, str], None]

# (module attribute path, fraction when the stage starts, message)
_STAGES = (
    ("graph.DependencyGraph._trace", 0.12, "Dependency graph: tracing the model…"),
    ("graph.DependencyGraph._build_dependency", 0.25,
     "Dependency graph: linking {n} layers…"),
    ("shape_infer.init_shape_information", 0.35, "Dependency graph: inferring shapes…"),
    ("index_mapping.update_index_mapping", 0.4,
     "Dependency graph: mapping concatenations and splits…"),
)


@contextlib.contextmanager
def graph_progress(report: Report, cancel: CancelToken) -> Iterator[None]:
    """Report each stage of the dependency-graph build (and check `cancel` before it)."""
    from torch_pruning.dependency import graph, index_mapping, shape_infer

    owners = {"graph": graph, "shape_infer": shape_infer, "index_mapping": index_mapping}
    saved: list[tuple[Any, str, Any]] = []
    try:
        for path, fraction, message in _STAGES:
            first, *middle, attr = path.split(".")
            owner = functools.reduce(getattr, middle, owners[first])
            original = getattr(owner, attr)
            saved.append((owner, attr, original))
            setattr(owner, attr, _reporting(original, fraction, message, report, cancel))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def _reporting(fn: Any, fraction: float, message: str, report: Report,
               cancel: CancelToken) -> Any:
    calls = [0]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cancel.check()
        calls[0] += 1
        if calls[0] == 1:  # pruning calls some stages again, once per group
            count = next((len(a) for a in args if isinstance(a, dict)), None)
            report(fraction, message.format(n=count if count is not None else "the"))
        return fn(*args, **kwargs)

    return wrapper


def prune_groups(pruner: Any, total: int, report: Report, cancel: CancelToken) -> int:
    """`pruner.step()`, one group at a time with progress from 0.5 to 0.95; the number of
    groups pruned."""
    report(0.5, f"Pruning {total} channel groups…")
    done = 0
    for group in pruner.step(interactive=True):
        cancel.check()
        group.prune()
        done += 1
        report(0.5 + 0.45 * min(done / max(total, 1), 1.0),
               f"Pruned channel group {done} of at most {total}…")
    return done
