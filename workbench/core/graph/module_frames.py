"""Outlines around expanded modules: the rectangle that holds every box of a module.

An expanded module is drawn as a frame around its boxes (with a control that collapses it).
Frames nest: an outer frame is padded further than the frames inside it so their borders
and titles do not sit on top of each other. One pass over the boxes: O(boxes × depth).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.graph.display_graph import DisplayGraph, ModulePath
from workbench.core.graph.graph_layout import Layout

__all__ = ["ModuleFrame", "module_frames"]


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


def module_frames(dg: DisplayGraph, layout: Layout, groups: dict[ModulePath, int] | set[
        ModulePath], *, pad: float = 8.0, step: float = 8.0) -> list[ModuleFrame]:
    """A frame for every collapsible module shown expanded (outer frames first).

    A box's frames are the collapsible modules on its path above it: all of them for a node,
    the strict ancestors for a collapsed module's box. A frame holding `k` levels of frames
    is padded by `pad + k * step` around the bounding box of its boxes.
    """
    bounds: dict[ModulePath, list[float]] = {}
    counts: dict[ModulePath, int] = {}
    for d in dg.nodes:
        if d.io or d.id not in layout.positions:
            continue
        (x, y), (w, h) = layout.positions[d.id], layout.sizes[d.id]
        mp = d.module_path[:-1] if d.is_group else d.module_path
        for i in range(1, len(mp) + 1):
            p = mp[:i]
            if p not in groups:
                continue
            b = bounds.get(p)
            if b is None:
                bounds[p] = [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
                counts[p] = 1
            else:
                b[0] = min(b[0], x - w / 2)
                b[1] = min(b[1], y - h / 2)
                b[2] = max(b[2], x + w / 2)
                b[3] = max(b[3], y + h / 2)
                counts[p] += 1
    level = dict.fromkeys(bounds, 0)
    for p in sorted(bounds, key=len, reverse=True):  # inner frames first
        parent = next((p[:i] for i in range(len(p) - 1, 0, -1) if p[:i] in bounds), None)
        if parent is not None:
            level[parent] = max(level[parent], level[p] + 1)
    frames = []
    for p in sorted(bounds, key=lambda q: (len(q), q)):
        left, top, right, bottom = bounds[p]
        m = pad + step * level[p]
        frames.append(ModuleFrame(p, left - m, top - m, right + m, bottom + m, level[p],
                                  counts[p]))
    return frames
