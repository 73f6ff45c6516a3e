"""Lay a DisplayGraph out in layers, top to bottom.

The layout is a compact Sugiyama pipeline (cycle breaking, longest-path layering, dummy nodes
for long edges, barycenter ordering, priority-weighted x placement). It is written by hand
because there is no maintained pure-Python Sugiyama library (grandalf is slow and unmaintained;
graphviz needs a system binary), and a 10,000-node graph must lay out in well under a second.
Collapsing modules into boxes lives in `display_graph` (re-exported here). No Qt.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from workbench.core.graph.display_graph import (
    GROUP_PREFIX,
    INPUT_PREFIX,
    OUTPUT_PREFIX,
    DisplayEdge,
    DisplayGraph,
    DisplayNode,
    ModulePath,
    ancestor_groups,
    build_display_graph,
    collapsible_modules,
    constant_nodes,
    default_expanded,
    gc_paused,
    group_id,
)

log = logging.getLogger(__name__)

__all__ = [
    "GROUP_PREFIX",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "DisplayEdge",
    "DisplayGraph",
    "DisplayNode",
    "EdgeRoute",
    "Layout",
    "ModulePath",
    "ancestor_groups",
    "build_display_graph",
    "collapsible_modules",
    "constant_nodes",
    "default_expanded",
    "default_node_size",
    "gc_paused",
    "group_id",
    "layered_layout",
]


@dataclass
class EdgeRoute:
    """How to draw one display edge: a polyline from `src` to `dst` (scene units)."""

    src: str
    dst: str
    label: str
    points: list[tuple[float, float]]


@dataclass
class Layout:
    """Centres and sizes of display nodes, their layer index, and the edge routes."""

    positions: dict[str, tuple[float, float]]
    sizes: dict[str, tuple[float, float]]
    layers: dict[str, int]
    edges: list[EdgeRoute]
    width: float
    height: float


def default_node_size(node: DisplayNode) -> tuple[float, float]:
    """A text-free size estimate: about 7 px per character, clamped."""
    if node.io:
        return float(min(max(7 * len(node.label) + 28, 64), 200)), 30.0
    if node.is_group:
        chars = max(len(node.op) + 10, min(len(".".join(node.module_path)), 30))
        return float(min(max(7 * chars + 24, 110), 240)), 46.0
    chars = max(len(node.op), min(len(node.label), 28))
    return float(min(max(7 * chars + 24, 96), 220)), 40.0


def _topological_rank(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Kahn's algorithm that favours low indices and breaks cycles at the lowest index left."""
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for u, v in pairs:
        succ[u].append(v)
        indeg[v] += 1
    heap = [i for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    done = [False] * n
    rank = [0] * n
    placed = 0
    nxt = 0
    while placed < n:
        if heap:
            v = heapq.heappop(heap)
            if done[v]:
                continue
        else:  # every node left sits on a cycle: break it at the lowest index
            while done[nxt]:
                nxt += 1
            v = nxt
        done[v] = True
        rank[v] = placed
        placed += 1
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0 and not done[w]:
                heapq.heappush(heap, w)
    return rank


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    vals: list[float] = []
    wts: list[float] = []
    cnts: list[int] = []
    for t, w in zip(targets, weights, strict=True):
        c = 1
        while vals and vals[-1] > t:
            pw = wts.pop()
            t = (vals.pop() * pw + t * w) / (pw + w)
            w += pw
            c += cnts.pop()
        vals.append(t)
        wts.append(w)
        cnts.append(c)
    out: list[float] = []
    for v, c in zip(vals, cnts, strict=True):
        out.extend([v] * c)
    return out


def layered_layout(
    dg: DisplayGraph,
    node_size: Callable[[DisplayNode], tuple[float, float]] | None = None,
    *,
    node_gap: float = 28.0,
    layer_gap: float = 42.0,
    sweeps: int = 4,
    x_passes: int = 3,
) -> Layout:
    """Lay `dg` out top to bottom; edges run downwards except those that close a cycle.

    `node_size` returns (width, height) of a node; the default estimates it from its text.
    `sweeps` down-and-up barycenter sweeps order the layers; `x_passes` alternating passes
    (down first) place nodes horizontally.
    """
    with gc_paused():
        return _layered_layout(dg, node_size, node_gap, layer_gap, sweeps, x_passes)


def _layered_layout(
    dg: DisplayGraph,
    node_size: Callable[[DisplayNode], tuple[float, float]] | None,
    node_gap: float,
    layer_gap: float,
    sweeps: int,
    x_passes: int,
) -> Layout:
    size_of = node_size or default_node_size
    n = len(dg.nodes)
    ids = [nd.id for nd in dg.nodes]
    sizes = [size_of(nd) for nd in dg.nodes]
    pairs, routes_in = _unique_edges(dg, {d: i for i, d in enumerate(ids)})
    rank, order, osucc, has_pred = _orient_edges(n, pairs)                  # 1. break cycles
    layer = _assign_layers(n, order, osucc, has_pred)                       # 2. layering
    h = _proper_hierarchy(order, osucc, layer, [w for w, _ in sizes])      # 3. dummy chains
    _reduce_crossings(h, sweeps)                                            # 4. ordering
    x, half = _place_x(h, node_gap, x_passes)                               # 5. x placement
    heights, ycen, top = _layer_rows(sizes, h.layer, h.nlayers, layer_gap)  # 6. y per layer
    left = min((x[v] - half[v] for v in range(h.total)), default=0.0)
    right = max((x[v] + half[v] for v in range(h.total)), default=0.0)
    for v in range(h.total):
        x[v] -= left
    routes = _route_edges(h, x, sizes, heights, ycen, rank, routes_in)      # 7. edge routes
    return Layout(
        positions={ids[v]: (x[v], ycen[layer[v]]) for v in range(n)},
        sizes={ids[v]: sizes[v] for v in range(n)},
        layers={ids[v]: layer[v] for v in range(n)},
        edges=routes,
        width=right - left,
        height=max(top - layer_gap, 0.0),
    )


_RouteIn = tuple[int, int, str, str, str]
"""An edge to route: source and target indices, then display ids and label."""


def _unique_edges(dg: DisplayGraph,
                  index: dict[str, int]) -> tuple[list[tuple[int, int]], list[_RouteIn]]:
    """Index pairs of the unique edges between distinct, known nodes, and what to route."""
    pairs: list[tuple[int, int]] = []
    routes_in: list[_RouteIn] = []
    seen: set[tuple[int, int]] = set()
    for e in dg.edges:
        u = index.get(e.src)
        v = index.get(e.dst)
        if u is None or v is None or u == v or (u, v) in seen:
            continue
        seen.add((u, v))
        pairs.append((u, v))
        routes_in.append((u, v, e.src, e.dst, e.label))
    return pairs, routes_in


def _orient_edges(
    n: int, pairs: list[tuple[int, int]],
) -> tuple[list[int], list[int], list[list[int]], list[bool]]:
    """Orient every edge along a topological order (breaking cycles).

    Returns the rank of each node, the nodes in rank order, the oriented successors and
    whether each node has an oriented predecessor.
    """
    rank = (list(range(n)) if all(u < v for u, v in pairs) else _topological_rank(n, pairs))
    order = sorted(range(n), key=rank.__getitem__)
    osucc: list[list[int]] = [[] for _ in range(n)]
    has_pred = [False] * n
    oriented: set[tuple[int, int]] = set()
    for u, v in pairs:
        a, b = (u, v) if rank[u] < rank[v] else (v, u)
        if (a, b) not in oriented:
            oriented.add((a, b))
            osucc[a].append(b)
            has_pred[b] = True
    return rank, order, osucc, has_pred


def _assign_layers(n: int, order: list[int], osucc: list[list[int]],
                   has_pred: list[bool]) -> list[int]:
    """Longest-path layering, then pull sources (constants, side inputs) down to their users."""
    layer = [0] * n
    for v in order:
        nl = layer[v] + 1
        for w in osucc[v]:
            if layer[w] < nl:
                layer[w] = nl
    for v in range(n):
        if not has_pred[v] and osucc[v]:
            layer[v] = min(layer[w] for w in osucc[v]) - 1
    return layer


@dataclass
class _Hierarchy:
    """A proper layered graph: the real nodes, then dummy nodes that split long edges.

    Every edge joins adjacent layers. Lists are indexed by node (real ones first).
    """

    layer: list[int]
    width: list[float]
    dummy: list[bool]
    up: list[list[int]]
    """Neighbours one layer above."""
    down: list[list[int]]
    """Neighbours one layer below."""
    layers: list[list[int]]
    """The nodes of each layer, left to right."""
    chain: dict[int, list[int]]
    """Real node -> the dummy chain that carries all of its long edges (bundled)."""

    @property
    def total(self) -> int:
        return len(self.layer)

    @property
    def nlayers(self) -> int:
        return len(self.layers)

    def add_chain(self, a: int, far: int) -> list[int]:
        """Append dummies below node `a` for the `far - 1` layers its longest edge crosses."""
        la = self.layer[a]
        ds = []
        prev = a
        for k in range(1, far):
            d = len(self.layer)
            self.layer.append(la + k)
            self.width.append(0.0)
            self.dummy.append(True)
            self.up.append([prev])
            self.down.append([])
            self.down[prev].append(d)
            self.layers[la + k].append(d)
            ds.append(d)
            prev = d
        return ds


def _proper_hierarchy(order: list[int], osucc: list[list[int]], layer: list[int],
                      width: list[float]) -> _Hierarchy:
    """Split every long edge: a dummy chain per source carries all of its long edges.

    `layer` and `width` are extended in place with the dummies.
    """
    n = len(layer)
    h = _Hierarchy(layer, width, [False] * n, [[] for _ in range(n)], [[] for _ in range(n)],
                   [[] for _ in range(max(layer, default=-1) + 1)], {})
    up, down = h.up, h.down
    for a in order:
        h.layers[layer[a]].append(a)
    for a in order:
        la = layer[a]
        far = 0
        for b in osucc[a]:
            span = layer[b] - la
            if span == 1:
                down[a].append(b)
                up[b].append(a)
            elif span > far:
                far = span
        if far:
            ds = h.chain[a] = h.add_chain(a, far)
            for b in osucc[a]:
                span = layer[b] - la
                if span > 1:
                    d = ds[span - 2]
                    down[d].append(b)
                    up[b].append(d)
    return h


def _sweep(nlayers: int, downward: bool) -> range:
    """The layers a sweep visits: all but the first going down, all but the last going up."""
    return range(1, nlayers) if downward else range(nlayers - 2, -1, -1)


def _reduce_crossings(h: _Hierarchy, sweeps: int) -> None:
    """Reorder `h.layers` by barycenter sweeps, down and up, `sweeps` times each."""
    pos = [0.0] * h.total
    for nodes in h.layers:
        for i, v in enumerate(nodes):
            pos[v] = float(i)
    for sweep in range(2 * sweeps):
        downward = sweep % 2 == 0
        _barycenter_sweep(h.layers, h.up if downward else h.down, pos,
                          _sweep(h.nlayers, downward))


def _barycenter_sweep(layers: list[list[int]], nbrs: list[list[int]], pos: list[float],
                      visit: range) -> None:
    """Sort each visited layer by the mean position of its nodes' neighbours in `nbrs`.

    A node without neighbours keeps its own position as its key; `pos` follows the new order.
    """
    for li in visit:
        nodes = layers[li]
        if len(nodes) < 2:
            continue
        keyed = []
        for v in nodes:
            nb = nbrs[v]
            if nb:
                s = 0.0
                for u in nb:
                    s += pos[u]
                keyed.append((s / len(nb), pos[v], v))
            else:
                keyed.append((pos[v], pos[v], v))
        keyed.sort()
        layers[li] = nodes = [k[2] for k in keyed]
        for i, v in enumerate(nodes):
            pos[v] = float(i)


def _place_x(h: _Hierarchy, node_gap: float, x_passes: int) -> tuple[list[float], list[float]]:
    """Centre x of every node, and half its width.

    Pack each layer, then pull nodes towards their neighbours (alternating down and up),
    keeping their order and gaps by isotonic regression on offset targets.
    """
    half = [w / 2 for w in h.width]
    x, offsets = _pack_layers(h, half, node_gap)
    pull_up = _attraction(h.up, h.dummy)
    pull_down = _attraction(h.down, h.dummy)
    for sweep in range(x_passes):
        downward = sweep % 2 == 0
        _pull_sweep(h.layers, offsets, pull_up if downward else pull_down, x,
                    _sweep(h.nlayers, downward))
    return x, half


def _pack_layers(h: _Hierarchy, half: list[float],
                 node_gap: float) -> tuple[list[float], list[list[float]]]:
    """Each layer packed left to right and centred on 0; returns x and each node's offset."""
    x = [0.0] * h.total
    dummy = h.dummy
    offsets: list[list[float]] = []
    for nodes in h.layers:
        offs = [0.0]
        for a, b in pairwise(nodes):
            gap = (node_gap if not (dummy[a] or dummy[b])
                   else 10.0 if dummy[a] and dummy[b] else 0.65 * node_gap)
            offs.append(offs[-1] + half[a] + half[b] + gap)
        offsets.append(offs)
        shift = offs[-1] / 2
        for v, o in zip(nodes, offs, strict=True):
            x[v] = o - shift
    return x, offsets


_Pull = tuple[int, list[int], list[float], float, float]
"""How a node is pulled: its only neighbour (or -1), neighbours, weights, their sum, stiffness."""


def _attraction(nbrs: list[list[int]], dummy: list[bool]) -> list[_Pull]:
    """The pull on each node from its neighbours on one side.

    A real node follows its real neighbours when it has any, so a main path stays straight
    and skip connections bend around it; dummies yield to real nodes but keep chains straight.
    """
    out = []
    for v in range(len(nbrs)):
        nb = nbrs[v]
        if not dummy[v]:
            real = [u for u in nb if not dummy[u]]
            nb = real or nb
            ws = [1.0] * len(nb)
            stiff = float(len(nb)) if nb else 0.01
        else:
            ws = [8.0 if dummy[u] else 2.0 for u in nb]
            stiff = 0.01
        out.append((nb[0] if len(nb) == 1 else -1, nb, ws, sum(ws), stiff))
    return out


def _pull_sweep(layers: list[list[int]], offsets: list[list[float]], pull: list[_Pull],
                x: list[float], visit: range) -> None:
    """Move each visited layer's nodes towards their pull, keeping order and packing gaps."""
    for li in visit:
        nodes = layers[li]
        if len(nodes) == 1:
            v = nodes[0]
            one, nb, ws, sw, _ = pull[v]
            if one >= 0:
                x[v] = x[one]
            elif nb:
                x[v] = sum(w * x[u] for u, w in zip(nb, ws, strict=True)) / sw
            continue
        targets = []
        stiffs = []
        for v, o in zip(nodes, offsets[li], strict=True):
            one, nb, ws, sw, stiff = pull[v]
            if one >= 0:
                targets.append(x[one] - o)
            elif nb:
                targets.append(sum(w * x[u] for u, w in zip(nb, ws, strict=True)) / sw - o)
            else:
                targets.append(x[v] - o)
            stiffs.append(stiff)
        if any(a > b for a, b in pairwise(targets)):
            targets = _isotonic(targets, stiffs)
        for v, t, o in zip(nodes, targets, offsets[li], strict=True):
            x[v] = t + o


def _layer_rows(sizes: list[tuple[float, float]], layer: list[int], nlayers: int,
                layer_gap: float) -> tuple[list[float], list[float], float]:
    """Each layer's height (its tallest real node) and centre y, and the y below the last."""
    heights = [0.0] * nlayers
    for v in range(len(sizes)):
        hv = sizes[v][1]
        if hv > heights[layer[v]]:
            heights[layer[v]] = hv
    ycen = [0.0] * nlayers
    top = 0.0
    for li in range(nlayers):
        ycen[li] = top + heights[li] / 2
        top += heights[li] + layer_gap
    return heights, ycen, top


def _route_edges(h: _Hierarchy, x: list[float], sizes: list[tuple[float, float]],
                 heights: list[float], ycen: list[float], rank: list[int],
                 routes_in: list[_RouteIn]) -> list[EdgeRoute]:
    """Polylines for the edges, with ports spread along the top and bottom of each node."""
    n = len(sizes)
    layer, chain = h.layer, h.chain
    out_port = [_ports(v, h.down[v], h.width, x) for v in range(n)]
    in_port = [_ports(v, h.up[v], h.width, x) for v in range(n)]
    routes: list[EdgeRoute] = []
    for u, v, src, dst, label in routes_in:
        a, b = (u, v) if rank[u] < rank[v] else (v, u)
        span = layer[b] - layer[a]
        hops = [a, *chain[a][: span - 1], b] if span > 1 else [a, b]
        pts = [(x[a] + out_port[a][hops[1]], ycen[layer[a]] + sizes[a][1] / 2)]
        for d in hops[1:-1]:  # straight down through the layers it crosses
            li = layer[d]
            pts.append((x[d], ycen[li] - heights[li] / 2))
            pts.append((x[d], ycen[li] + heights[li] / 2))
        pts.append((x[b] + in_port[b][hops[-2]], ycen[layer[b]] - sizes[b][1] / 2))
        if (a, b) != (u, v):
            pts.reverse()
        routes.append(EdgeRoute(src, dst, label, pts))
    return routes


def _ports(v: int, nb: list[int], width: list[float], x: list[float]) -> dict[int, float]:
    """x offsets from the centre of node `v` where its edges to `nb` attach, in x order."""
    k = len(nb)
    if k <= 1:
        return {u: 0.0 for u in nb}
    step = min(14.0, 0.7 * width[v] / (k - 1))
    srt = sorted(nb, key=x.__getitem__)
    return {u: (i - (k - 1) / 2) * step for i, u in enumerate(srt)}
