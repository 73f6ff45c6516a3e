"""Outlines around expanded modules: the rectangle that holds every box of a module.

An expanded module is drawn as a frame around its boxes, with a title row (and a control that
collapses it) inside its top edge. Frames nest: an outer frame leaves a title row and some
padding around the frames inside it. Where frames need more room than the gap between two
layers, `frame_layout` moves the lower layers down (the layered layout itself is unchanged).
Work is O(boxes × depth + route points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.core.graph.display_graph import DisplayGraph, ModulePath
from workbench.core.graph.graph_layout import EdgeRoute, Layout

__all__ = ["FRAME_TITLE", "ModuleFrame", "frame_layout", "frame_pads"]

FRAME_TITLE = 16.0
"""Height of a frame's title row (scene units)."""


@dataclass(frozen=True)
class ModuleFrame:
    """The outline of an expanded module, in scene units; `level` counts the frames inside."""

    path: ModulePath
    left: float
    top: float
    right: float
    bottom: float
    level: int
    boxes: int

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def frame_pads(level: int) -> tuple[float, float, float]:
    """Side, top (title rows included) and bottom padding of a frame with `level` inside."""
    return 8.0 + 8.0 * level, 6.0 + (FRAME_TITLE + 4.0) * level + FRAME_TITLE, 6.0 + 6.0 * level


def frame_layout(dg: DisplayGraph, layout: Layout, groups: dict[ModulePath, int] | set[
        ModulePath], *, edge_room: float = 10.0) -> tuple[Layout, list[ModuleFrame]]:
    """`layout` with room between layers for the frames, and the frames (outer ones first).

    A box's frames are the collapsible modules on its path above it: all of them for a node,
    the strict ancestors for a collapsed module's box. Between two layers there stays at
    least `edge_room` of bare edge besides the frames' padding.
    """
    members: dict[ModulePath, list[str]] = {}
    for d in dg.nodes:
        if d.io or d.id not in layout.positions:
            continue
        mp = d.module_path[:-1] if d.is_group else d.module_path
        for i in range(1, len(mp) + 1):
            if mp[:i] in groups:
                members.setdefault(mp[:i], []).append(d.id)
    if not members:
        return layout, []
    level = dict.fromkeys(members, 0)
    for p in sorted(members, key=len, reverse=True):  # inner frames first
        parent = next((p[:i] for i in range(len(p) - 1, 0, -1) if p[:i] in members), None)
        if parent is not None:
            level[parent] = max(level[parent], level[p] + 1)
    spaced = _spaced(layout, members, level, edge_room)
    frames = []
    for p in sorted(members, key=lambda q: (len(q), q)):
        side, top, bottom = frame_pads(level[p])
        xs = [spaced.positions[i][0] for i in members[p]]
        ys = [spaced.positions[i][1] for i in members[p]]
        ws = [spaced.sizes[i][0] / 2 for i in members[p]]
        hs = [spaced.sizes[i][1] / 2 for i in members[p]]
        frames.append(ModuleFrame(
            p, min(x - w for x, w in zip(xs, ws, strict=True)) - side,
            min(y - h for y, h in zip(ys, hs, strict=True)) - top,
            max(x + w for x, w in zip(xs, ws, strict=True)) + side,
            max(y + h for y, h in zip(ys, hs, strict=True)) + bottom, level[p], len(xs)))
    return spaced, frames


def _spaced(layout: Layout, members: dict[ModulePath, list[str]], level: dict[ModulePath, int],
            edge_room: float) -> Layout:
    """Move layers down where the frames that open above or close below one need room."""
    nlayers = max(layout.layers.values(), default=-1) + 1
    tops = [float("inf")] * nlayers
    bottoms = [float("-inf")] * nlayers
    for did, li in layout.layers.items():
        y, h = layout.positions[did][1], layout.sizes[did][1]
        tops[li] = min(tops[li], y - h / 2)
        bottoms[li] = max(bottoms[li], y + h / 2)
    for li in range(nlayers):  # (a layer without boxes keeps its neighbour's place)
        if tops[li] == float("inf"):
            tops[li] = bottoms[li] = bottoms[li - 1] if li else 0.0
    above = [0.0] * nlayers
    below = [0.0] * nlayers
    for p, ids in members.items():
        layers = [layout.layers[i] for i in ids]
        _, top, bottom = frame_pads(level[p])
        above[min(layers)] = max(above[min(layers)], top)
        below[max(layers)] = max(below[max(layers)], bottom)
    shift = [0.0] * nlayers
    for li in range(1, nlayers):
        gap = tops[li] - bottoms[li - 1]
        need = above[li] + below[li - 1] + edge_room
        shift[li] = shift[li - 1] + max(0.0, need - gap)
    if not any(shift):
        return layout
    positions = {d: (x, y + shift[layout.layers[d]]) for d, (x, y) in layout.positions.items()}
    # A route point moves with the layer it touches (one vectorised lookup for all points).
    counts = [len(r.points) for r in layout.edges]
    ys = np.fromiter((y for r in layout.edges for _, y in r.points), float, sum(counts))
    at = np.clip(np.searchsorted(np.asarray(tops), ys + 1e-6, side="right") - 1, 0, None)
    new_ys = (ys + np.asarray(shift)[at]).tolist()
    edges = []
    k = 0
    for r, c in zip(layout.edges, counts, strict=True):
        edges.append(EdgeRoute(r.src, r.dst, r.label,
                               [(x, new_ys[k + i]) for i, (x, _) in enumerate(r.points)]))
        k += c
    return Layout(positions, dict(layout.sizes), dict(layout.layers), edges, layout.width,
                  layout.height + shift[-1])
