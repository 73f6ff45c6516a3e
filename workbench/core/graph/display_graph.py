"""Collapse a LayerGraph into the boxes drawn on screen: modules, nodes, inputs and outputs.

A collapsed module becomes one group box; the model's inputs and outputs become boxes of
their own (as Netron draws them). Everything here is headless: no Qt.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from workbench.core.graph.layergraph import LayerGraph, Node, op_category

log = logging.getLogger(__name__)

__all__ = [
    "GROUP_PREFIX",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "DisplayEdge",
    "DisplayGraph",
    "DisplayNode",
    "ModulePath",
    "ancestor_groups",
    "build_display_graph",
    "collapsible_modules",
    "constant_nodes",
    "default_expanded",
    "gc_paused",
    "group_id",
    "prepare_view",
]

ModulePath = tuple[str, ...]

GROUP_PREFIX = "module:"
INPUT_PREFIX = "input:"
OUTPUT_PREFIX = "output:"


def group_id(path: ModulePath) -> str:
    """The stable display id of the collapsed module at `path`."""
    return GROUP_PREFIX + ".".join(path)


def _shape_text(shape: tuple[int | str, ...] | None) -> str:
    if shape is None:
        return ""
    return "×".join(str(d) for d in shape) if shape else "scalar"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: these loops allocate many small acyclic objects (about 1/3 faster)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class DisplayNode:
    """A box on screen: one real node, a collapsed module (`is_group`) of several, or a model
    input or output (`io` is "input" or "output"; it has no members)."""

    id: str
    label: str
    op: str
    category: str
    is_group: bool
    module_path: ModulePath
    members: list[str]
    params: int = 0
    macs: int = 0
    output_shape: str = ""
    io: str = ""


@dataclass(frozen=True)
class DisplayEdge:
    """A deduplicated connection between two display nodes, labelled with a shape."""

    src: str
    dst: str
    label: str = ""


@dataclass
class DisplayGraph:
    """Display nodes (in the graph's topological order of their first member) and edges."""

    nodes: list[DisplayNode]
    edges: list[DisplayEdge]
    display_of: dict[str, str] = field(default_factory=dict)
    """Real node name -> id of the display node that shows it."""

    def __post_init__(self) -> None:
        self._by_id = {n.id: n for n in self.nodes}

    def node(self, display_id: str) -> DisplayNode:
        return self._by_id[display_id]

    def __contains__(self, display_id: object) -> bool:
        return display_id in self._by_id

    def __len__(self) -> int:
        return len(self.nodes)


def collapsible_modules(graph: LayerGraph) -> dict[ModulePath, int]:
    """Module paths worth a group box, with their member counts.

    A module qualifies when it holds more than one node and is not a mere wrapper whose single
    child module holds all of its nodes (the child is shown instead).
    """
    return graph.memo("collapsible_modules", lambda: _collapsible_modules(graph))


def _collapsible_modules(graph: LayerGraph) -> dict[ModulePath, int]:
    counts: dict[ModulePath, int] = {}
    for n in graph.nodes:
        mp = n.module_path
        for i in range(1, len(mp) + 1):
            p = mp[:i]
            counts[p] = counts.get(p, 0) + 1
    wrappers = {p[:-1] for p, c in counts.items() if len(p) > 1 and counts[p[:-1]] == c}
    return {p: c for p, c in counts.items() if c > 1 and p not in wrappers}


def _group_of(mp: ModulePath, groups: dict[ModulePath, int] | set[ModulePath],
              expanded: set[ModulePath]) -> ModulePath | None:
    for i in range(1, len(mp) + 1):
        p = mp[:i]
        if p in groups and p not in expanded:
            return p
    return None


def ancestor_groups(graph: LayerGraph, name: str) -> set[ModulePath]:
    """The collapsible modules that contain node `name` (expand them all to reveal it)."""
    groups = collapsible_modules(graph)
    mp = graph.node(name).module_path
    return {mp[:i] for i in range(1, len(mp) + 1) if mp[:i] in groups}


def build_display_graph(graph: LayerGraph, expanded: Iterable[ModulePath],
                        hidden: Iterable[str] = (), *, io: bool = True) -> DisplayGraph:
    """Merge every node under a collapsed module into one group node.

    A node is shown inside the outermost collapsible module on its path that is not in
    `expanded`; group ids are `group_id(path)` so they stay stable across rebuilds. Nodes in
    `hidden` (e.g. `constant_nodes`) are left out with their edges. With `io`, each model
    input and output that connects to a shown node gets a box (`INPUT_PREFIX` + its name
    first, `OUTPUT_PREFIX` + its name last).
    """
    key = ("display_graph", frozenset(expanded), frozenset(hidden), io)
    # the latest few, so the GUI thread finds the view a worker prepared
    cached: dict[Hashable, DisplayGraph] = graph.memo("display_graphs", dict)
    dg = cached.get(key)
    if dg is None:
        with gc_paused():
            dg = _build_display_graph(graph, set(key[1]), set(key[2]))
            dg = _with_io(graph, dg) if io else dg
        while len(cached) >= _CACHED_VIEWS:
            del cached[next(iter(cached))]
        cached[key] = dg
    return dg


_CACHED_VIEWS = 2
"""Display graphs kept per graph: the default view (prepared by the worker) and the latest."""


def prepare_view(graph: LayerGraph, max_visible: int = 300) -> DisplayGraph:
    """Compute, ahead and off the GUI thread, what the graph view's first paint needs.

    The view then only looks up the collapsed display graph: its first paint costs the boxes
    it shows, whatever the number of nodes folded inside them.
    """
    graph.memo("macs", lambda: graph.macs)  # the inspector's summary looks these up
    graph.memo("op_counts", graph.op_counts)
    return build_display_graph(graph, default_expanded(graph, max_visible),
                               constant_nodes(graph))


def _with_io(graph: LayerGraph, dg: DisplayGraph) -> DisplayGraph:
    """`dg` with boxes for the model's inputs (first) and outputs (last), and their edges."""
    if not graph.inputs and not graph.outputs:
        return dg
    consumers: dict[str, list[str]] = {}
    producer: dict[str, str] = {}
    for n in graph.nodes:
        for t in n.inputs:
            consumers.setdefault(t.name, []).append(n.name)
        for t in n.outputs:
            producer[t.name] = n.name
    heads: list[DisplayNode] = []
    tails: list[DisplayNode] = []
    edges: list[DisplayEdge] = []
    for kind, tensors, out in (("input", graph.inputs, heads), ("output", graph.outputs, tails)):
        for t in tensors:
            did = (INPUT_PREFIX if kind == "input" else OUTPUT_PREFIX) + t.name
            if did in dg:
                continue
            if kind == "input":
                ends = {dg.display_of[c] for c in consumers.get(t.name, ())
                        if c in dg.display_of}
                new = [DisplayEdge(did, e, _shape_text(t.shape)) for e in sorted(ends)]
            else:
                src = dg.display_of.get(producer.get(t.name, ""))
                new = [DisplayEdge(src, did, _shape_text(t.shape))] if src else []
            if new:
                edges += new
                out.append(DisplayNode(
                    id=did, label=t.name, op=kind.capitalize(), category="other",
                    is_group=False, module_path=(), members=[],
                    output_shape=_shape_text(t.shape), io=kind))
    if not heads and not tails:
        return dg
    return DisplayGraph([*heads, *dg.nodes, *tails], [*dg.edges, *edges], dg.display_of)


def constant_nodes(graph: LayerGraph) -> frozenset[str]:
    """Nodes that compute only from weights and constants, never from a graph input.

    ONNX files often build weights this way (Unsqueeze of a scale, ConstantOfShape); like
    Netron, the view can fold them away so the data path stays readable.
    """
    return graph.memo("constant_nodes", lambda: frozenset(_constant_nodes(graph)))


def _constant_nodes(graph: LayerGraph) -> set[str]:
    producer = {t.name: n.name for n in graph.nodes for t in n.outputs}
    constant: set[str] = set()
    for n in graph.nodes:  # topological order
        params = set(n.param_names)
        if all(t.name in params or producer.get(t.name) in constant for t in n.inputs):
            constant.add(n.name)
    return constant


def _build_display_graph(graph: LayerGraph, expanded: set[ModulePath],
                         hidden: set[str]) -> DisplayGraph:
    groups = collapsible_modules(graph)
    nodes: list[DisplayNode] = []
    by_id: dict[str, DisplayNode] = {}
    display_of: dict[str, str] = {}
    last_member: dict[str, Node] = {}
    categories: dict[str, str] = {}
    for n in graph.nodes:
        if n.name in hidden:
            continue
        p = _group_of(n.module_path, groups, expanded)
        if p is None:
            category = categories.get(n.op)
            if category is None:
                category = categories[n.op] = op_category(n.op)
            dn = DisplayNode(
                id=n.name, label=n.name, op=n.op, category=category, is_group=False,
                module_path=n.module_path, members=[n.name], params=n.params, macs=n.macs,
                output_shape=_shape_text(n.output_shape) if n.outputs else "",
            )
            nodes.append(dn)
            by_id[dn.id] = dn
        else:
            gid = group_id(p)
            group = by_id.get(gid)
            if group is None:
                group = DisplayNode(
                    id=gid, label="", op=graph.module_types.get(p) or "Module",
                    category="group", is_group=True, module_path=p, members=[],
                )
                nodes.append(group)
                by_id[gid] = group
            dn = group
            dn.members.append(n.name)
            dn.params += n.params
            dn.macs += n.macs
            last_member[gid] = n
        display_of[n.name] = dn.id
    for gid, last in last_member.items():
        dn = by_id[gid]
        dn.label = f"{'.'.join(dn.module_path)} ({dn.op}) · {len(dn.members)} nodes"
        dn.output_shape = _shape_text(last.output_shape) if last.outputs else ""

    edges: dict[tuple[str, str], DisplayEdge] = {}
    for e in graph.edges:
        s = display_of.get(e.src)
        d = display_of.get(e.dst)
        if s is None or d is None or s == d or (s, d) in edges:
            continue
        edges[(s, d)] = DisplayEdge(s, d, _shape_text(e.shape))
    return DisplayGraph(nodes, list(edges.values()), display_of)


def _count_visible(graph: LayerGraph, groups: dict[ModulePath, int],
                   expanded: set[ModulePath]) -> int:
    seen_groups: set[ModulePath] = set()
    singles = 0
    for n in graph.nodes:
        p = _group_of(n.module_path, groups, expanded)
        if p is None:
            singles += 1
        else:
            seen_groups.add(p)
    return singles + len(seen_groups)


def default_expanded(graph: LayerGraph, max_visible: int = 300) -> set[ModulePath]:
    """Modules to expand at first: all of them on small graphs, else level by level.

    Levels (the number of collapsible ancestors) are opened breadth-first while the number of
    visible boxes stays at or under `max_visible`, so large graphs start collapsed.
    """
    return set(graph.memo(("default_expanded", max_visible),
                          lambda: frozenset(_default_expanded(graph, max_visible))))


def _default_expanded(graph: LayerGraph, max_visible: int) -> set[ModulePath]:
    groups = collapsible_modules(graph)
    if len(graph.nodes) <= max_visible:
        return set(groups)
    level = {p: sum(1 for i in range(1, len(p)) if p[:i] in groups) for p in groups}
    expanded: set[ModulePath] = set()
    for lv in range(max(level.values(), default=-1) + 1):
        trial = expanded | {p for p, v in level.items() if v == lv}
        if _count_visible(graph, groups, trial) > max_visible:
            break
        expanded = trial
    return expanded

