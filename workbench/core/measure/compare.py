"""Compare variants: a table, the accuracy/latency Pareto front, exports, and a diff.

`compare_table` reads what the workspace recorded for each entry: the analysis (parameters,
size, MACs, sparsity) and the results "accuracy" (a float), "benchmark" (a `BenchResult`, or
its JSON) and "latency_ms" (a float, used when there is no benchmark). Latency is the batch-1
record when there is one, else the smallest batch measured. The speed-up of a row is the
baseline's p50 over the row's p50; the baseline is the root of the row's lineage (following
`variant.parent` through the entries) unless one is given.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.graph.graph_diff import diff_graphs

log = logging.getLogger(__name__)

COLUMNS = ("name", "parameters", "size_bytes", "macs", "sparsity", "accuracy", "p50_ms",
           "p99_ms", "speedup")
_TITLES = {"name": "Variant", "parameters": "Params", "size_bytes": "Size (bytes)",
           "macs": "MACs", "sparsity": "Sparsity", "accuracy": "Accuracy",
           "p50_ms": "p50 ms", "p99_ms": "p99 ms", "speedup": "Speed-up"}


@dataclass
class ComparisonRow:
    """One variant's figures; None where nothing was measured."""

    id: str
    name: str
    parameters: int
    size_bytes: int
    macs: int
    sparsity: float
    accuracy: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    speedup: float | None = None
    batch: int | None = None  # batch size of the latency figures
    runtime: str | None = None
    baseline: str | None = None  # id of the variant the speed-up is measured against
    parent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_table(entries: Sequence[Any], baseline: str | None = None) -> list[ComparisonRow]:
    """One row per workspace entry, in order. `baseline` (a variant id) overrides the
    lineage root as the reference of every speed-up."""
    by_id = {e.id: e for e in entries}
    rows = []
    latency = {e.id: _latency(e.results) for e in entries}
    for e in entries:
        graph = e.analysis.graph
        variant = e.analysis.variant
        p50, p99, batch, runtime = latency[e.id]
        ref = baseline if baseline in by_id else measured_root(e, by_id, latency)
        ref_p50 = latency[ref][0]
        speedup = ref_p50 / p50 if ref_p50 and p50 else None
        accuracy = e.results.get("accuracy")
        rows.append(ComparisonRow(
            e.id, e.name, int(graph.parameters), int(graph.size_bytes), int(graph.macs),
            float(e.analysis.stats.summary.sparsity),
            float(accuracy) if isinstance(accuracy, (int, float)) else None,
            p50, p99, speedup, batch, runtime, ref, variant.parent))
    return rows


def lineage_root(entry: Any, by_id: dict[str, Any]) -> str:
    """The id of the oldest ancestor of `entry` that is among `by_id` (itself if none)."""
    current = entry
    seen = {entry.id}
    while True:
        parent = current.analysis.variant.parent
        if parent is None or parent not in by_id or parent in seen:
            return current.id
        seen.add(parent)
        current = by_id[parent]


def measured_root(entry: Any, by_id: dict[str, Any],
                  latency: dict[str, tuple[Any, ...]]) -> str:
    """The oldest ancestor of `entry` (itself included) that has a measured latency, so an
    unmeasured, untrained root does not hide every speed-up; the lineage root otherwise."""
    chain = [entry]
    seen = {entry.id}
    while True:
        parent = chain[-1].analysis.variant.parent
        if parent is None or parent not in by_id or parent in seen:
            break
        seen.add(parent)
        chain.append(by_id[parent])
    for e in reversed(chain):
        if latency[e.id][0]:
            return str(e.id)
    return str(chain[-1].id)


def _latency(results: dict[str, Any]) -> tuple[float | None, float | None, int | None,
                                               str | None]:
    """(p50, p99, batch, runtime) from a benchmark result (object or JSON) or latency_ms."""
    bench = results.get("benchmark")
    records: list[Any] = []
    if bench is not None:
        records = list(bench.get("records", []) if isinstance(bench, dict)
                       else getattr(bench, "records", []))
    if records:
        def get(r: Any, key: str) -> Any:
            return r.get(key) if isinstance(r, dict) else getattr(r, key, None)

        record = next((r for r in records if get(r, "batch") == 1),
                      min(records, key=lambda r: get(r, "batch")))
        return (float(get(record, "p50_ms")), float(get(record, "p99_ms")),
                int(get(record, "batch")), get(record, "runtime"))
    value = results.get("latency_ms")
    if isinstance(value, (int, float)):
        return float(value), None, None, None
    return None, None, None, None


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices (ascending) of the (latency, accuracy) points no other point dominates.

    A point dominates another when it is at least as fast and at least as accurate, and
    strictly better in one of the two. Identical points do not dominate each other, so all
    of them stay on the front. Points with a missing or NaN value are never on it.
    """
    valid = [(i, float(p[0]), float(p[1])) for i, p in enumerate(points)
             if p[0] is not None and p[1] is not None
             and not math.isnan(float(p[0])) and not math.isnan(float(p[1]))]
    front = []
    for i, lat, acc in valid:
        dominated = any(
            lat2 <= lat and acc2 >= acc and (lat2 < lat or acc2 > acc)
            for j, lat2, acc2 in valid if j != i)
        if not dominated:
            front.append(i)
    return front


def to_csv(rows: Sequence[ComparisonRow]) -> str:
    """The table as CSV (raw numbers; empty cells where nothing was measured)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(["" if getattr(r, c) is None else getattr(r, c) for c in COLUMNS])
    return out.getvalue()


def to_markdown(rows: Sequence[ComparisonRow]) -> str:
    """The table as a GitHub-flavoured Markdown table, with readable numbers."""
    lines = ["| " + " | ".join(_TITLES[c] for c in COLUMNS) + " |",
             "|" + "|".join(":---" if c == "name" else "---:" for c in COLUMNS) + "|"]
    for r in rows:
        cells = [r.name.replace("|", "\\|"), f"{r.parameters:,}", f"{r.size_bytes:,}",
                 f"{r.macs:,}", f"{r.sparsity:.1%}", _fmt(r.accuracy, "{:.2%}"),
                 _fmt(r.p50_ms, "{:.3f}"), _fmt(r.p99_ms, "{:.3f}"),
                 _fmt(r.speedup, "{:.2f}×")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


# diff ---------------------------------------------------------------------------------------
@dataclass
class VariantDiff:
    """What changed from variant A to variant B: graph nodes, ops, weights, totals."""

    a: str
    b: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # per node: shape, params
    ops_added: dict[str, int] = field(default_factory=dict)
    ops_removed: dict[str, int] = field(default_factory=dict)
    weights: list[dict[str, Any]] = field(default_factory=list)  # per weight tensor
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)  # parameters, size, MACs
    comparable: bool = True  # False when node names barely line up (torch against ONNX)

    @property
    def removed_channels(self) -> dict[str, int]:
        """Per changed node, how many output channels (axis 1) it lost."""
        out = {}
        for c in self.changed:
            before, after = c.get("shape_before"), c.get("shape_after")
            if (before and after and len(before) == len(after) and len(before) >= 2
                    and isinstance(before[1], int) and isinstance(after[1], int)
                    and after[1] < before[1]):
                out[c["name"]] = before[1] - after[1]
        return out

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "removed_channels": self.removed_channels}


def diff_variants(entry_a: Any, entry_b: Any) -> VariantDiff:
    """Diff two workspace entries (or analyses, or variants): graph nodes added, removed
    and reshaped (`graph_diff.diff_graphs`), op counts gained and lost, each weight
    tensor's shape and size, and the totals."""
    graph_a, variant_a = _graph(entry_a)
    graph_b, variant_b = _graph(entry_b)
    gd = diff_graphs(graph_a, graph_b)
    diff = VariantDiff(variant_a.name, variant_b.name, gd.added, gd.removed, gd.changed,
                       gd.ops_added, gd.ops_removed, comparable=gd.comparable)
    diff.weights = _weight_changes(_weights(variant_a), _weights(variant_b))
    diff.totals = {
        key: {"before": getattr(graph_a, key), "after": getattr(graph_b, key)}
        for key in ("parameters", "size_bytes", "macs")}
    return diff


def _graph(item: Any) -> tuple[Any, Any]:
    """(LayerGraph, Variant) of an Entry, an Analysis or a Variant."""
    analysis = getattr(item, "analysis", item)
    if hasattr(analysis, "graph"):
        return analysis.graph, analysis.variant
    from workbench.core.graph.describe import describe

    return describe(item), item


def _weights(variant: Any) -> dict[str, tuple[tuple[int, ...], int]]:
    """Weight name -> (shape, non-zero count), for torch parameters or ONNX initializers."""
    from workbench.core.graph.stats import named_weights

    return {name: (tuple(int(d) for d in t.shape), int((t != 0).sum()))
            for name, t in named_weights(variant).items()}


def _weight_changes(a: dict[str, tuple[tuple[int, ...], int]],
                    b: dict[str, tuple[tuple[int, ...], int]]) -> list[dict[str, Any]]:
    rows = []
    for name in [*a, *(n for n in b if n not in a)]:
        before, after = a.get(name), b.get(name)
        if before is not None and after is not None and before == after:
            continue
        rows.append({
            "name": name,
            "change": "added" if before is None else "removed" if after is None else "changed",
            "shape_before": list(before[0]) if before else None,
            "shape_after": list(after[0]) if after else None,
            "params_before": math.prod(before[0]) if before else 0,
            "params_after": math.prod(after[0]) if after else 0,
            "nonzero_before": before[1] if before else 0,
            "nonzero_after": after[1] if after else 0})
    return rows
