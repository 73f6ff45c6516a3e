"""Drawing the graph scene: boxes, edges, module frames, lazily made labels, level of detail.

Drawing stays fast on 10,000-node graphs because it only uses built-in C++ items (no Python
`paint()`): one rounded path item per box, simple text items for labels, all edges and arrow
heads merged into a few path items per horizontal band (so the BSP index can cull them), labels
made only for boxes near the view and hidden below a zoom threshold, and, when zoomed far out,
every box drawn by one path per colour. This is a mixin of QtGraphView (it owns the state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem

from workbench.core.graph.graph_layout import (
    DisplayNode,
    Layout,
    build_display_graph,
    gc_paused,
    layered_layout,
)
from workbench.core.graph.layergraph import LayerGraph
from workbench.core.graph.module_frames import FRAME_TITLE, ModuleFrame, frame_layout
from workbench.gui.qt_graph_paths import BADGE_RADIUS, add_route, badge, pill, rounded, short_op
from workbench.gui.qt_graph_style import GraphColors

if TYPE_CHECKING:
    from workbench.gui.qt_graph_view import QtGraphView

    _Base = QtGraphView
else:
    _Base = object

__all__ = ["EDGE_LABEL_SCALE", "EDGE_SCALE", "LABEL_SCALE", "OVERVIEW_SCALE", "GraphSceneMixin"]

EDGE_SCALE = 0.05  # below: no edges (sub-pixel anyway, and costly when all are in view)
OVERVIEW_SCALE = 0.2  # below: boxes drawn as one path per colour, no labels or arrows
LABEL_SCALE = 0.42  # from here: node labels and frame titles
EDGE_LABEL_SCALE = 0.7  # from here: tensor shapes on edges
_CHUNK = 400  # edges or boxes merged into one path item
_MARGIN = 40.0


class GraphSceneMixin(_Base):
    """Builds and restyles the QGraphicsScene of a QtGraphView."""

    def _init_style(self) -> None:
        """Fonts (once) and every colour, from the widget's palette (again on a change)."""
        if not hasattr(self, "_op_font"):
            self._op_font = QFont()
            self._op_font.setPointSizeF(9.0)
            self._op_font.setBold(True)
            self._name_font = QFont()
            self._name_font.setPointSizeF(8.0)
            self._edge_font = QFont()
            self._edge_font.setPointSizeF(7.0)
            self._op_fm = QFontMetricsF(self._op_font)
            self._name_fm = QFontMetricsF(self._name_font)
            self._edge_fm = QFontMetricsF(self._edge_font)
        c = self._c = GraphColors.from_palette(self.palette())
        self._text_brush = QBrush(c.text)
        self._sub_brush = QBrush(c.subtext)
        self._tag_brush = QBrush(c.edge_text)
        self._io_text_brush = QBrush(c.io_text)
        pill_color = QColor(c.background)
        pill_color.setAlpha(235)
        self._pill_brush = QBrush(pill_color)
        self._no_pen = QPen(Qt.PenStyle.NoPen)
        self._brushes = {k: QBrush(v) for k, v in c.fills.items()}
        self._pens = {k: QPen(v, 1.2) for k, v in c.borders.items()}
        self._pens["group"] = QPen(c.borders["group"], 1.4, Qt.PenStyle.DashLine)
        self._view.setBackgroundBrush(c.background)

    # ---- building the scene ---------------------------------------------------------------

    def _reset_items(self) -> None:
        self._scene.clear()
        self._scene.setSceneRect(QRectF(0, 0, 1, 1))
        self._node_items: dict[str, QGraphicsPathItem] = {}
        self._label_items: list[QGraphicsItem] = []
        self._edge_label_items: list[QGraphicsItem] = []
        self._arrow_items: list[QGraphicsItem] = []
        self._edge_items: list[QGraphicsItem] = []
        self._box_items: list[QGraphicsItem] = []
        self._frame_items: list[QGraphicsItem] = []
        self._tag_specs: dict[int, list[tuple[float, float, bool, str]]] = {}
        self._labelled = self._tagged = self._titled = np.zeros(0, bool)
        self._overview_items: list[QGraphicsItem] = []
        self._overview_dirty = True
        self._far_colors: list[QColor] = []
        self._ids: list[str] = []
        self._xs = self._ys = self._hw = self._hh = np.zeros(0)
        self._frames: list[ModuleFrame] = []
        self._fl = self._ft = self._fr = self._fb = np.zeros(0)
        self._routes_of: dict[str, list[int]] = {}
        self._lod: tuple[bool, ...] | None = None
        self._marker = QGraphicsPathItem()
        pen = QPen(self._c.accent, 2.5)
        pen.setCosmetic(True)
        self._marker.setPen(pen)
        self._marker.setZValue(10)
        self._marker.setVisible(False)
        self._scene.addItem(self._marker)
        self._marker_edges = QGraphicsPathItem()
        pen = QPen(self._c.accent, 2.0)
        pen.setCosmetic(True)
        self._marker_edges.setPen(pen)
        self._marker_edges.setZValue(1.5)
        self._marker_edges.setVisible(False)
        self._scene.addItem(self._marker_edges)

    def _node_size(self, node: DisplayNode) -> tuple[float, float]:
        if node.io:
            return min(max(self._op_fm.horizontalAdvance(node.label) + 28, 64.0), 240.0), 30.0
        if node.is_group:
            title = self._op_fm.horizontalAdvance(".".join(node.module_path))
            sub = self._name_fm.horizontalAdvance(f"{node.op} · {len(node.members)} nodes")
            return min(max(max(title, sub) + 44, 130.0), 280.0), 48.0
        op = self._op_fm.horizontalAdvance(short_op(node.op))
        name = self._name_fm.horizontalAdvance(node.label)
        return min(max(max(op, name) + 22, 96.0), 220.0), 40.0

    def _rebuild(self) -> None:
        """Collapse, lay out and draw the current graph, keeping the selection."""
        if self._graph is not None:
            with gc_paused():
                self._rebuild_now(self._graph)

    def _rebuild_now(self, graph: LayerGraph) -> None:
        dg = build_display_graph(graph, self._expanded, self._hidden)
        lay, frames = frame_layout(dg, layered_layout(dg, self._node_size), self._groups)
        self._dg, self._layout = dg, lay
        self._reset_items()
        self._frames = frames
        left = min((f.left for f in frames), default=0.0)
        right = max((f.right for f in frames), default=lay.width)
        self._scene.setSceneRect(QRectF(min(left, 0.0) - _MARGIN, -_MARGIN,
                                        max(right, lay.width) - min(left, 0.0) + 2 * _MARGIN,
                                        lay.height + 2 * _MARGIN))
        n = len(dg.nodes)
        self._ids = [d.id for d in dg.nodes]
        pos, size = lay.positions, lay.sizes
        self._xs = np.fromiter((pos[i][0] for i in self._ids), float, n)
        self._ys = np.fromiter((pos[i][1] for i in self._ids), float, n)
        self._hw = np.fromiter((size[i][0] / 2 for i in self._ids), float, n)
        self._hh = np.fromiter((size[i][1] / 2 for i in self._ids), float, n)
        self._draw_boxes(lay)
        self._draw_frames(frames)
        self._labelled = np.zeros(n, bool)
        self._tagged = np.zeros(n, bool)
        self._draw_edges(lay)
        self._apply_styles()
        self._update_legend()
        self._status.setText(f"{len(graph.nodes):,} nodes · {n:,} boxes")
        if self._selected is not None:
            self._set_selection(self._selected)
        self._update_lod()

    def _draw_boxes(self, lay: Layout) -> None:
        assert self._dg is not None
        group_pen = self._pens["group"]
        group_brush = self._brushes["group"]
        for d in self._dg.nodes:
            x, y = lay.positions[d.id]
            w, h = lay.sizes[d.id]
            path = pill(w, h) if d.io else rounded(w, h)
            if d.is_group:  # a second card behind: "there is more inside"
                shadow = QGraphicsPathItem(path)
                shadow.setPos(x + 4, y + 4)
                shadow.setBrush(group_brush)
                shadow.setPen(group_pen)
                shadow.setZValue(1.9)
                self._scene.addItem(shadow)
                self._box_items.append(shadow)
            item = QGraphicsPathItem(path)
            item.setPos(x, y)
            item.setZValue(2)
            self._scene.addItem(item)
            self._node_items[d.id] = item
            self._box_items.append(item)

    def _draw_frames(self, frames: list[ModuleFrame]) -> None:
        """An outline per expanded module (titles come lazily with the labels)."""
        pen = QPen(self._c.frame, 1.2)
        pen.setCosmetic(True)
        tint = QColor(self._c.borders["group"])
        tint.setAlpha(22 if self._c.dark else 12)
        brush = QBrush(tint)
        for f in frames:
            path = QPainterPath()
            path.addRoundedRect(QRectF(f.left, f.top, f.width, f.height), 8, 8)
            item = QGraphicsPathItem(path)
            item.setPen(pen)
            item.setBrush(brush)
            item.setZValue(-1)
            self._scene.addItem(item)
            self._frame_items.append(item)
        self._fl = np.array([f.left for f in frames], float)
        self._ft = np.array([f.top for f in frames], float)
        self._fr = np.array([f.right for f in frames], float)
        self._fb = np.array([f.bottom for f in frames], float)
        self._titled = np.zeros(len(frames), bool)

    def frame_badge_center(self, k: int) -> QPointF:
        """Scene centre of frame `k`'s ⊖ (collapse) control."""
        f = self._frames[k]
        return QPointF(f.left + 8 + BADGE_RADIUS, f.top + 3 + FRAME_TITLE / 2)

    def _draw_edges(self, lay: Layout) -> None:
        pen = QPen(self._c.edge, 1.1)
        pen.setCosmetic(True)
        arrow_brush = QBrush(self._c.edge)
        routes = lay.edges
        for i, r in enumerate(routes):
            self._routes_of.setdefault(r.src, []).append(i)
            self._routes_of.setdefault(r.dst, []).append(i)
        order = sorted(range(len(routes)), key=lambda i: routes[i].points[0][1])
        for start in range(0, len(order), _CHUNK):
            path = QPainterPath()
            arrows = QPainterPath()
            for i in order[start:start + _CHUNK]:
                add_route(path, arrows, routes[i].points)
            item = QGraphicsPathItem(path)
            item.setPen(pen)
            item.setZValue(0)
            self._scene.addItem(item)
            self._edge_items.append(item)
            head = QGraphicsPathItem(arrows)
            head.setPen(self._no_pen)
            head.setBrush(arrow_brush)
            head.setZValue(1)
            self._scene.addItem(head)
            self._arrow_items.append(head)
        # Shape tags: one per source and shape, made lazily when their source comes into view.
        index = {d: k for k, d in enumerate(self._ids)}
        by_src: dict[str, dict[str, list[int]]] = {}
        for i, r in enumerate(routes):
            if r.label:
                by_src.setdefault(r.src, {}).setdefault(r.label, []).append(i)
        for src, labels in by_src.items():
            for label, idx in labels.items():
                (x0, y0), (_, y1) = routes[idx[0]].points[:2]
                # One edge: tag it; a fan-out with one shape: one tag under the box centre.
                cx = x0 if len(idx) == 1 or len(labels) > 1 else lay.positions[src][0]
                self._tag_specs.setdefault(index[src], []).append((cx, y0, y1 >= y0, label))

    # ---- lazily made labels ---------------------------------------------------------------

    def _populate_view(self) -> None:
        """Make the labels, shape tags and frame titles near the view that have none yet."""
        lod = self._lod
        if lod is None or not (lod[3] or lod[4]) or not len(self._ids):
            return
        r = self._view.mapToScene(self._view.viewport().rect()).boundingRect()
        mx, my = r.width() / 3, r.height() / 3
        near = ((self._xs + self._hw >= r.left() - mx) & (self._xs - self._hw <= r.right() + mx)
                & (self._ys + self._hh + 30 >= r.top() - my)
                & (self._ys - self._hh - 30 <= r.bottom() + my))
        if lod[3]:
            todo = np.flatnonzero(near & ~self._labelled)
            if len(todo):
                self._labelled[todo] = True
                for k in todo.tolist():
                    self._make_labels(k)
            titles = np.flatnonzero(
                ~self._titled & (self._fr >= r.left() - mx) & (self._fl <= r.right() + mx)
                & (self._fb >= r.top() - my) & (self._ft <= r.bottom() + my))
            if len(titles):
                self._titled[titles] = True
                for k in titles.tolist():
                    self._make_frame_title(k)
        if lod[4]:
            todo = np.flatnonzero(near & ~self._tagged)
            if len(todo):
                self._tagged[todo] = True
                for k in todo.tolist():
                    self._make_tags(k)

    def _add_labels(self, items: Iterable[QGraphicsItem], z: float = 3) -> None:
        for it in items:
            it.setZValue(z)
            self._scene.addItem(it)
            self._label_items.append(it)

    def _text(self, text: str, font: QFont, brush: QBrush, x: float, y: float
              ) -> QGraphicsSimpleTextItem:
        t = QGraphicsSimpleTextItem(text)
        t.setFont(font)
        t.setBrush(brush)
        t.setPos(x, y)
        return t

    def _make_labels(self, k: int) -> None:
        assert self._dg is not None
        d = self._dg.nodes[k]
        x, y, hw = float(self._xs[k]), float(self._ys[k]), float(self._hw[k])
        op_h = self._op_fm.height()
        top = y - (op_h + self._name_fm.height()) / 2
        if d.io:
            name = self._op_fm.elidedText(d.label, Qt.TextElideMode.ElideMiddle, 2 * hw - 16)
            self._add_labels([self._text(name, self._op_font, self._io_text_brush,
                                         x - self._op_fm.horizontalAdvance(name) / 2,
                                         y - op_h / 2)])
        elif d.is_group:
            b = QGraphicsPathItem(badge(QPointF(x + hw - 16, y), plus=True))
            b.setPen(QPen(self._pens["group"].color(), 1.3))
            b.setBrush(QBrush(self._c.background))
            self._add_labels([
                self._text(".".join(d.module_path), self._op_font, self._text_brush,
                           x - hw + 10, top),
                self._text(f"{d.op} · {len(d.members)} nodes", self._name_font,
                           self._sub_brush, x - hw + 10, top + op_h),
                b,
            ])
        else:
            op = short_op(d.op)
            name = self._name_fm.elidedText(d.label, Qt.TextElideMode.ElideLeft, 2 * hw - 12)
            self._add_labels([
                self._text(op, self._op_font, self._text_brush,
                           x - self._op_fm.horizontalAdvance(op) / 2, top),
                self._text(name, self._name_font, self._sub_brush,
                           x - self._name_fm.horizontalAdvance(name) / 2, top + op_h),
            ])

    def _make_frame_title(self, k: int) -> None:
        """A frame's ⊖ control and its title (module path and type) inside its top edge."""
        assert self._graph is not None
        f = self._frames[k]
        centre = self.frame_badge_center(k)
        b = QGraphicsPathItem(badge(centre, plus=False))
        b.setPen(QPen(self._c.frame, 1.3))
        b.setBrush(QBrush(self._c.background))
        mtype = self._graph.module_types.get(f.path)
        title = ".".join(f.path) + (f" · {mtype}" if mtype else "")
        x = centre.x() + BADGE_RADIUS + 5
        # A narrow frame's title may run past its right edge rather than lose its words.
        title = self._name_fm.elidedText(title, Qt.TextElideMode.ElideMiddle,
                                         max(f.right - x - 6, 260.0))
        t = self._text(title, self._name_font, self._sub_brush, x,
                       centre.y() - self._name_fm.height() / 2)
        self._add_labels([b, t], z=0.5)

    def _make_tags(self, k: int) -> None:
        th = self._edge_fm.height()
        for cx, y0, down, label in self._tag_specs.get(k, ()):
            tw = self._edge_fm.horizontalAdvance(label)
            top = y0 + 6 if down else y0 - 6 - th
            path = QPainterPath()
            path.addRoundedRect(QRectF(cx - tw / 2 - 3, top, tw + 6, th), 3, 3)
            back = QGraphicsPathItem(path)
            back.setBrush(self._pill_brush)
            back.setPen(self._no_pen)
            back.setZValue(1.6)
            t = self._text(label, self._edge_font, self._tag_brush, cx - tw / 2, top)
            t.setZValue(1.7)
            self._scene.addItem(back)
            self._scene.addItem(t)
            self._edge_label_items.append(back)
            self._edge_label_items.append(t)

    # ---- styles and level of detail -------------------------------------------------------

    def _colors(self, d: DisplayNode) -> tuple[QBrush, QPen, QColor]:
        """Fill, outline, and the solid colour used when zoomed far out (and in the minimap)."""
        c = self._c
        if d.io:
            return QBrush(c.io_fill), QPen(c.io_fill, 1.2), c.io_fill
        brush, pen = self._brushes[d.category], self._pens[d.category]
        far = pen.color()
        if self._heat is not None:
            vals = [self._heat[m] for m in d.members if m in self._heat]
            brush = QBrush(c.heat(max(vals)) if vals else c.neutral)
            far = brush.color()
        if self._highlight is not None:
            names, color = self._highlight
            if names and any(m in names for m in d.members):
                brush = QBrush(c.overlay(color))
                pen = QPen(c.overlay_border(color), 2.6)
                far = color
        return brush, pen, far

    def _apply_styles(self) -> None:
        if self._dg is None:
            return
        self._far_colors = []
        for d in self._dg.nodes:
            brush, pen, far = self._colors(d)
            item = self._node_items[d.id]
            item.setBrush(brush)
            item.setPen(pen)
            self._far_colors.append(far)
        self._overview_dirty = True
        if self._lod is not None and self._lod[0]:
            self._build_overview()
        self._minimap.set_boxes(self._scene.sceneRect(), self._xs, self._ys, self._hw,
                                self._hh, self._far_colors)

    def _build_overview(self) -> None:
        """One path per colour and band of boxes, for the far-zoomed-out view."""
        for it in self._overview_items:
            self._scene.removeItem(it)
        self._overview_items = []
        self._overview_dirty = False
        if self._dg is None:
            return
        by_color: dict[int, list[int]] = {}
        brushes: dict[int, QBrush] = {}
        for k, color in enumerate(self._far_colors):
            key = color.rgba()
            by_color.setdefault(key, []).append(k)
            brushes.setdefault(key, QBrush(color))
        for key, ks in by_color.items():
            ks.sort(key=lambda k: self._ys[k])
            for start in range(0, len(ks), _CHUNK):
                path = QPainterPath()
                for k in ks[start:start + _CHUNK]:
                    path.addRect(self._xs[k] - self._hw[k], self._ys[k] - self._hh[k],
                                 2 * self._hw[k], 2 * self._hh[k])
                item = QGraphicsPathItem(path)
                item.setPen(self._no_pen)
                item.setBrush(brushes[key])
                item.setZValue(2)
                self._scene.addItem(item)
                self._overview_items.append(item)

    def _update_lod(self) -> None:
        """Show or hide item sets as the zoom crosses level-of-detail thresholds."""
        scale = self._view.transform().m11()
        overview = scale < OVERVIEW_SCALE
        state = (
            overview,  # boxes as one path per colour
            not overview,  # box items and arrow heads
            scale >= EDGE_SCALE,  # edges (invisible specks below)
            scale >= LABEL_SCALE,  # box labels, frame titles
            scale >= EDGE_LABEL_SCALE,  # edge shape tags
        )
        if state != self._lod:
            old, self._lod = self._lod, state
            if overview and self._overview_dirty:
                self._build_overview()
            groups: tuple[Iterable[QGraphicsItem], ...] = (
                self._overview_items,
                [*self._box_items, *self._arrow_items],
                self._edge_items,
                self._label_items,
                self._edge_label_items,
            )
            for k, items in enumerate(groups):
                if old is None or old[k] != state[k]:
                    for it in items:
                        it.setVisible(state[k])
        self._populate_view()
        self._minimap.update()
