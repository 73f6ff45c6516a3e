"""QtGraphView: a zoomable, searchable drawing of a LayerGraph with collapsible modules.

Drawing stays fast on 10,000-node graphs because it only uses built-in C++ items (no Python
`paint()`): one rounded path item per box, simple text items for labels, all edges and arrow
heads merged into a few path items per horizontal band (so the BSP index can cull them), labels
hidden below a zoom threshold, and, when zoomed far out, every box drawn by one path per colour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetricsF,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from workbench.core.graph.graph_layout import (
    DisplayGraph,
    DisplayNode,
    Layout,
    ModulePath,
    ancestor_groups,
    build_display_graph,
    collapsible_modules,
    constant_nodes,
    default_expanded,
    gc_paused,
    group_id,
    layered_layout,
)
from workbench.core.graph.layergraph import CATEGORIES, LayerGraph

log = logging.getLogger(__name__)

__all__ = ["CATEGORY_COLORS", "QtGraphView", "heat_color"]

#: (fill, border) per op category; fills are light so dark text stays readable.
CATEGORY_COLORS: dict[str, tuple[str, str]] = {
    "quantize": ("#eadcfb", "#7b4bc4"),
    "attention": ("#ffe2c6", "#d26a12"),
    "conv": ("#d6e6ff", "#3a6fc4"),
    "linear": ("#d3f0df", "#2c8a55"),
    "recurrent": ("#f3e3d3", "#8c5a2c"),
    "norm": ("#fff1bf", "#b08a00"),
    "activation": ("#fde0df", "#c8413b"),
    "pool": ("#d4f1f4", "#1e8791"),
    "elementwise": ("#e5ebd6", "#687a35"),
    "shape": ("#eceff3", "#8592a3"),
    "group": ("#e6e8f7", "#5361b8"),
    "other": ("#efefef", "#8a8a8a"),
}
assert set(CATEGORY_COLORS) == set(CATEGORIES)

_HEAT_STOPS = (QColor("#fff7d1"), QColor("#fdae61"), QColor("#e34a33"))
_NO_HEAT = QColor("#f3f3f3")
_ACCENT = QColor("#1f6feb")
_EDGE = QColor("#8c96a5")
_TEXT = QColor("#1f2328")
_SUBTEXT = QColor("#57606a")
_EDGE_TEXT = QColor("#6e7781")
_BACKGROUND = QColor("#fbfcfd")

_EDGE_SCALE = 0.05  # below: no edges (sub-pixel anyway, and costly when all are in view)
_OVERVIEW_SCALE = 0.2  # below: boxes drawn as one path per colour, no labels or arrows
_LABEL_SCALE = 0.42  # from here: node labels
_EDGE_LABEL_SCALE = 0.7  # from here: tensor shapes on edges
_MAX_SCALE = 4.0
_CHUNK = 400  # edges or boxes merged into one path item
_ARROW = 7.0


def heat_color(value: float) -> QColor:
    """Colour of a 0..1 heat value: pale yellow, orange, red."""
    v = min(max(float(value), 0.0), 1.0) * (len(_HEAT_STOPS) - 1)
    i = min(int(v), len(_HEAT_STOPS) - 2)
    t = v - i
    a, b = _HEAT_STOPS[i], _HEAT_STOPS[i + 1]
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def _short_op(op: str) -> str:
    """`aten.conv2d.default` -> `conv2d`; ONNX op types are kept."""
    parts = [p for p in op.split(".") if p not in {"aten", "default", "Tensor", "torch", "ops",
                                                    "prims", "nn", "functional", "int", "Scalar"}]
    return ".".join(parts) or op


def _rounded(w: float, h: float, r: float = 6.0) -> QPainterPath:
    path = QPainterPath()
    path.addRoundedRect(QRectF(-w / 2, -h / 2, w, h), r, r)
    return path


class _GraphicsView(QGraphicsView):
    """The canvas: wheel zoom under the mouse, drag to pan, clicks reported to the owner."""

    def __init__(self, owner: QtGraphView) -> None:
        super().__init__(owner)
        self._owner = owner
        self._press: QPoint | None = None
        self.horizontalScrollBar().valueChanged.connect(owner._populate_view)
        self.verticalScrollBar().valueChanged.connect(owner._populate_view)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState
                                  | QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setBackgroundBrush(_BACKGROUND)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._owner.zoom_by(1.0015 ** delta)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press is not None:
            moved = (event.position().toPoint() - self._press).manhattanLength()
            self._press = None
            if moved < 5:
                self._owner._on_click(self.mapToScene(event.position().toPoint()))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._owner._on_double_click(self.mapToScene(event.position().toPoint()))
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self._owner._on_context_menu(self.mapToScene(event.pos()), event.globalPos())

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self._owner._tooltip_at(self.mapToScene(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._owner._on_resized()
        self._owner._populate_view()


class QtGraphView(QWidget):
    """Interactive layer-graph viewer: pan, zoom, search, expand/collapse modules, select.

    Double-click a module box to expand it; double-click a node (or use the context menu) to
    collapse the module around it. `max_visible` bounds how many boxes a new graph starts with.
    """

    node_selected = Signal(str)
    """A node (its real name) or a module box (its `module:` id) was selected by the user."""

    def __init__(self, parent: QWidget | None = None, *, max_visible: int = 300) -> None:
        super().__init__(parent)
        self.max_visible = max_visible
        self._graph: LayerGraph | None = None
        self._dg: DisplayGraph | None = None
        self._layout: Layout | None = None
        self._groups: dict[ModulePath, int] = {}
        self._expanded: set[ModulePath] = set()
        self._selected: str | None = None
        self._highlight: tuple[set[str], QColor] | None = None
        self._heat: dict[str, float] | None = None
        self._matches: list[str] = []
        self._match_index = -1
        self._match_text = ""
        self._pending_view_reset = False
        self._lod: tuple[bool, ...] | None = None

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
        self._text_brush = QBrush(_TEXT)
        self._sub_brush = QBrush(_SUBTEXT)
        self._tag_brush = QBrush(_EDGE_TEXT)
        self._pill_brush = QBrush(QColor(_BACKGROUND.red(), _BACKGROUND.green(),
                                         _BACKGROUND.blue(), 235))
        self._no_pen = QPen(Qt.PenStyle.NoPen)
        self._brushes = {c: QBrush(QColor(f)) for c, (f, _) in CATEGORY_COLORS.items()}
        self._pens = {c: QPen(QColor(b), 1.2) for c, (_, b) in CATEGORY_COLORS.items()}
        group_pen = QPen(QColor(CATEGORY_COLORS["group"][1]), 1.4, Qt.PenStyle.DashLine)
        self._pens["group"] = group_pen

        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self._view = _GraphicsView(self)
        self._view.setScene(self._scene)
        self._reset_items()

        self._search = QLineEdit()
        self._search.setPlaceholderText("Search name or op…  (Enter: next match)")
        self._search.setClearButtonEnabled(True)
        self._search.textChanged.connect(self._on_search_text)
        self._search.returnPressed.connect(self.find_next)
        self._match_label = QLabel()
        self._match_label.setMinimumWidth(70)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 4, 4, 4)
        bar.setSpacing(4)
        bar.addWidget(self._search, 1)
        bar.addWidget(self._match_label)
        for text, tip, slot in (
            ("−", "Zoom out", self.zoom_out),
            ("+", "Zoom in", self.zoom_in),
            ("Fit", "Fit the whole graph", self.fit),
            ("Expand all", "Expand every module", self.expand_all),
            ("Collapse all", "Collapse every module", self.collapse_all),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            button.clicked.connect(slot)
            bar.addWidget(button)
        self._hide_constants = QCheckBox("Hide constants")
        self._hide_constants.setToolTip("Fold away nodes that only compute from weights "
                                        "(e.g. Unsqueeze of a scale), as Netron does")
        self._hide_constants.setChecked(True)
        self._hide_constants.toggled.connect(self._on_hide_constants)
        bar.addWidget(self._hide_constants)
        self._hidden: set[str] = set()
        self._legend = QLabel()
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        self._legend.setContentsMargins(6, 2, 6, 4)
        self._legend.setStyleSheet("color: #57606a;")
        self._status = QLabel()
        self._status.setStyleSheet("color: #57606a;")
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 6, 0)
        bottom.addWidget(self._legend, 1)
        bottom.addWidget(self._status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self._view, 1)
        layout.addLayout(bottom)

    # ---- public API -----------------------------------------------------------------------

    @property
    def view(self) -> QGraphicsView:
        """The underlying QGraphicsView (for tests and screenshots)."""
        return self._view

    @property
    def search_edit(self) -> QLineEdit:
        """The search box (Enter selects the next match)."""
        return self._search

    def graph(self) -> LayerGraph | None:
        return self._graph

    def display_graph(self) -> DisplayGraph | None:
        """The boxes and edges currently drawn."""
        return self._dg

    def current_layout(self) -> Layout | None:
        return self._layout

    def _on_hide_constants(self, on: bool) -> None:
        if self._graph is not None:
            self._hidden = constant_nodes(self._graph) if on else set()
            self._rebuild()

    def set_graph(self, graph: LayerGraph | None) -> None:
        """Show `graph` (modules collapsed so at most `max_visible` boxes), or clear on None."""
        self._graph = graph
        self._selected = None
        self._matches, self._match_index = [], -1
        if graph is None:
            self._groups, self._expanded = {}, set()
            self._dg = self._layout = None
            self._reset_items()
            self._update_legend()
            self._status.setText("")
            self._match_label.setText("")
            return
        self._groups = collapsible_modules(graph)
        self._expanded = default_expanded(graph, self.max_visible)
        self._hidden = constant_nodes(graph) if self._hide_constants.isChecked() else set()
        self._rebuild()
        self._on_search_text(self._search.text())
        self._reset_view()

    def expanded_modules(self) -> set[ModulePath]:
        return set(self._expanded)

    def set_expanded_modules(self, paths: Iterable[ModulePath]) -> None:
        """Expand exactly `paths` (other modules collapse)."""
        self._expanded = {tuple(p) for p in paths}
        self._rebuild()

    def expand(self, path: ModulePath) -> None:
        """Open the module box at `path`, keeping its place on screen."""
        if self._dg is None or path in self._expanded:
            return
        gid = group_id(path)
        anchor = self._anchor_of(gid)
        members = self._dg.node(gid).members if gid in self._dg else []
        if self._selected == gid:
            self._selected = None
        self._expanded.add(path)
        self._rebuild()
        if anchor is not None and members:
            self._restore_anchor(self._dg.display_of[members[0]], anchor)

    def collapse(self, path: ModulePath) -> None:
        """Close the module at `path` into one box, keeping its place on screen."""
        if self._dg is None or path not in self._groups:
            return
        gid = group_id(path)
        member = next((n.name for n in self._graph.nodes
                       if n.module_path[: len(path)] == path), None) if self._graph else None
        anchor = self._anchor_of(self._dg.display_of[member]) if member else None
        self._expanded.discard(path)
        for p in list(self._expanded):  # collapsing also hides modules inside it
            if p[: len(path)] == path:
                self._expanded.discard(p)
        self._rebuild()
        if anchor is not None:
            self._restore_anchor(gid, anchor)

    def expand_all(self) -> None:
        self._expanded = set(self._groups)
        self._rebuild()
        self._reset_view()

    def collapse_all(self) -> None:
        self._expanded = set()
        self._rebuild()
        self._reset_view()

    def selected_node(self) -> str | None:
        """The selected node's real name, a `module:` group id, or None."""
        return self._selected

    def select_node(self, name: str) -> bool:
        """Select and centre a node or group id, expanding modules as needed; never emits."""
        did = self._reveal(name)
        if did is None:
            return False
        self._set_selection(name)
        self._center_on(did)
        return True

    def set_highlight(self, names: Iterable[str], color: QColor | str = "#f59e0b") -> None:
        """Tint the boxes showing any of the real nodes `names` (a group shows its members)."""
        self._highlight = (set(names), QColor(color))
        self._apply_styles()

    def clear_highlight(self) -> None:
        self._highlight = None
        self._apply_styles()

    def set_heat(self, values: dict[str, float] | None) -> None:
        """Colour boxes by 0..1 values per real node (groups take their hottest member)."""
        self._heat = dict(values) if values is not None else None
        self._apply_styles()
        self._update_legend()

    def zoom_by(self, factor: float) -> None:
        """Zoom by `factor` (under the mouse when it is over the view, else about the centre)."""
        scale = self._view.transform().m11()
        lo = self._min_scale()
        target = min(max(scale * factor, lo), _MAX_SCALE)
        if abs(target - scale) > 1e-9:
            f = target / scale
            self._view.scale(f, f)
            self._update_lod()

    def zoom_in(self) -> None:
        self.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.zoom_by(0.8)

    def fit(self) -> None:
        """Fit the whole graph in the view (up to 100 %)."""
        rect = self._scene.sceneRect()
        if rect.isEmpty():
            return
        self._view.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self._view.transform().m11() > 1.0:
            self._view.setTransform(QTransform())
            self._view.centerOn(rect.center())
        self._update_lod()

    def search(self, text: str) -> list[str]:
        """Set the search text; returns the matching real node names in graph order."""
        self._search.setText(text)
        return list(self._matches)

    def find_next(self) -> str | None:
        """Select and centre the next search match (expanding modules); emits node_selected."""
        if not self._matches:
            return None
        self._match_index = (self._match_index + 1) % len(self._matches)
        name = self._matches[self._match_index]
        self._match_label.setText(f"{self._match_index + 1}/{len(self._matches)}")
        if self.select_node(name):
            if self._view.transform().m11() < _LABEL_SCALE:
                self._view.setTransform(QTransform())
                self._update_lod()
                self._center_on(self._dg.display_of[name] if self._dg else name)
            self.node_selected.emit(name)
        return name

    def node_scene_rect(self, display_id: str) -> QRectF | None:
        """Scene rectangle of a drawn box (a real name inside a group maps to the group)."""
        if self._layout is None or self._dg is None:
            return None
        did = self._dg.display_of.get(display_id, display_id)
        if did not in self._layout.positions:
            return None
        (x, y), (w, h) = self._layout.positions[did], self._layout.sizes[did]
        return QRectF(x - w / 2, y - h / 2, w, h)

    def box_color(self, name: str) -> QColor | None:
        """Fill colour of the box showing `name` (a real node or group id), if drawn."""
        did = self._display_id(name)
        item = self._node_items.get(did) if did is not None else None
        return item.brush().color() if item is not None else None

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
        self._tag_specs: dict[int, list[tuple[float, float, bool, str]]] = {}
        self._labelled = self._tagged = np.zeros(0, bool)
        self._overview_items: list[QGraphicsItem] = []
        self._overview_dirty = True
        self._ids: list[str] = []
        self._xs = self._ys = self._hw = self._hh = np.zeros(0)
        self._routes_of: dict[str, list[int]] = {}
        self._lod: tuple[bool, ...] | None = None
        self._marker = QGraphicsPathItem()
        pen = QPen(_ACCENT, 2.5)
        pen.setCosmetic(True)
        self._marker.setPen(pen)
        self._marker.setZValue(10)
        self._marker.setVisible(False)
        self._scene.addItem(self._marker)
        self._marker_edges = QGraphicsPathItem()
        pen = QPen(_ACCENT, 2.0)
        pen.setCosmetic(True)
        self._marker_edges.setPen(pen)
        self._marker_edges.setZValue(1.5)
        self._marker_edges.setVisible(False)
        self._scene.addItem(self._marker_edges)

    def _node_size(self, node: DisplayNode) -> tuple[float, float]:
        if node.is_group:
            title = self._op_fm.horizontalAdvance(".".join(node.module_path))
            sub = self._name_fm.horizontalAdvance(f"{node.op} · {len(node.members)} nodes")
            return min(max(max(title, sub) + 44, 130.0), 280.0), 48.0
        op = self._op_fm.horizontalAdvance(_short_op(node.op))
        name = self._name_fm.horizontalAdvance(node.label)
        return min(max(max(op, name) + 22, 96.0), 220.0), 40.0

    def _rebuild(self) -> None:
        """Collapse, lay out and draw the current graph, keeping the selection."""
        if self._graph is not None:
            with gc_paused():
                self._rebuild_now(self._graph)

    def _rebuild_now(self, graph: LayerGraph) -> None:
        dg = build_display_graph(graph, self._expanded, self._hidden)
        lay = layered_layout(dg, self._node_size)
        self._dg, self._layout = dg, lay
        self._reset_items()
        scene = self._scene
        margin = 40.0
        self._scene.setSceneRect(QRectF(-margin, -margin, lay.width + 2 * margin,
                                        lay.height + 2 * margin))
        n = len(dg.nodes)
        self._ids = [d.id for d in dg.nodes]
        pos = lay.positions
        size = lay.sizes
        self._xs = np.fromiter((pos[i][0] for i in self._ids), float, n)
        self._ys = np.fromiter((pos[i][1] for i in self._ids), float, n)
        self._hw = np.fromiter((size[i][0] / 2 for i in self._ids), float, n)
        self._hh = np.fromiter((size[i][1] / 2 for i in self._ids), float, n)

        group_pen = self._pens["group"]
        group_brush = self._brushes["group"]
        box = self._box_items
        for d in dg.nodes:
            x, y = pos[d.id]
            w, h = size[d.id]
            path = _rounded(w, h)
            if d.is_group:  # a second card behind: "there is more inside"
                shadow = QGraphicsPathItem(path)
                shadow.setPos(x + 4, y + 4)
                shadow.setBrush(group_brush)
                shadow.setPen(group_pen)
                shadow.setZValue(1.9)
                scene.addItem(shadow)
                box.append(shadow)
            item = QGraphicsPathItem(path)
            item.setPos(x, y)
            item.setZValue(2)
            scene.addItem(item)
            self._node_items[d.id] = item
            box.append(item)
        self._labelled = np.zeros(n, bool)
        self._tagged = np.zeros(n, bool)
        self._draw_edges(lay)
        self._apply_styles()
        self._update_legend()
        self._status.setText(f"{len(graph.nodes):,} nodes · {n:,} boxes")
        if self._selected is not None:
            self._set_selection(self._selected)
        self._update_lod()

    def _draw_edges(self, lay: Layout) -> None:
        pen = QPen(_EDGE, 1.1)
        pen.setCosmetic(True)
        arrow_brush = QBrush(_EDGE)
        no_pen = QPen(Qt.PenStyle.NoPen)
        routes = lay.edges
        for i, r in enumerate(routes):
            self._routes_of.setdefault(r.src, []).append(i)
            self._routes_of.setdefault(r.dst, []).append(i)
        order = sorted(range(len(routes)), key=lambda i: routes[i].points[0][1])
        for start in range(0, len(order), _CHUNK):
            path = QPainterPath()
            arrows = QPainterPath()
            for i in order[start:start + _CHUNK]:
                _add_route(path, arrows, routes[i].points)
            item = QGraphicsPathItem(path)
            item.setPen(pen)
            item.setZValue(0)
            self._scene.addItem(item)
            self._edge_items.append(item)
            head = QGraphicsPathItem(arrows)
            head.setPen(no_pen)
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
        """Make the labels and shape tags of boxes in (or near) the view that have none yet."""
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
        if lod[4]:
            todo = np.flatnonzero(near & ~self._tagged)
            if len(todo):
                self._tagged[todo] = True
                for k in todo.tolist():
                    self._make_tags(k)

    def _make_labels(self, k: int) -> None:
        assert self._dg is not None
        d = self._dg.nodes[k]
        x, y, hw = float(self._xs[k]), float(self._ys[k]), float(self._hw[k])
        op_h = self._op_fm.height()
        top = y - (op_h + self._name_fm.height()) / 2
        if d.is_group:
            title = ".".join(d.module_path)
            sub = f"{d.op} · {len(d.members)} nodes"
            t = QGraphicsSimpleTextItem(title)
            t.setPos(x - hw + 10, top)
            s = QGraphicsSimpleTextItem(sub)
            s.setPos(x - hw + 10, top + op_h)
            badge = QPainterPath()
            bx, r = x + hw - 14, 6.0
            badge.addEllipse(QPointF(bx, y), r, r)
            badge.moveTo(bx - 3.5, y)
            badge.lineTo(bx + 3.5, y)
            badge.moveTo(bx, y - 3.5)
            badge.lineTo(bx, y + 3.5)
            b = QGraphicsPathItem(badge)
            b.setPen(QPen(self._pens["group"].color(), 1.3))
            b.setBrush(QBrush(Qt.GlobalColor.white))
            items: tuple[QGraphicsItem, ...] = (t, s, b)
        else:
            op = _short_op(d.op)
            name = self._name_fm.elidedText(d.label, Qt.TextElideMode.ElideLeft, 2 * hw - 12)
            t = QGraphicsSimpleTextItem(op)
            t.setPos(x - self._op_fm.horizontalAdvance(op) / 2, top)
            s = QGraphicsSimpleTextItem(name)
            s.setPos(x - self._name_fm.horizontalAdvance(name) / 2, top + op_h)
            items = (t, s)
        t.setFont(self._op_font)
        t.setBrush(self._text_brush)
        s.setFont(self._name_font)
        s.setBrush(self._sub_brush)
        for it in items:
            it.setZValue(3)
            self._scene.addItem(it)
            self._label_items.append(it)

    def _make_tags(self, k: int) -> None:
        th = self._edge_fm.height()
        for cx, y0, down, label in self._tag_specs.get(k, ()):
            tw = self._edge_fm.horizontalAdvance(label)
            top = y0 + 6 if down else y0 - 6 - th
            path = QPainterPath()
            path.addRoundedRect(QRectF(cx - tw / 2 - 3, top, tw + 6, th), 3, 3)
            pill = QGraphicsPathItem(path)
            pill.setBrush(self._pill_brush)
            pill.setPen(self._no_pen)
            pill.setZValue(1.6)
            t = QGraphicsSimpleTextItem(label)
            t.setFont(self._edge_font)
            t.setBrush(self._tag_brush)
            t.setPos(cx - tw / 2, top)
            t.setZValue(1.7)
            self._scene.addItem(pill)
            self._scene.addItem(t)
            self._edge_label_items.append(pill)
            self._edge_label_items.append(t)

    # ---- styles and level of detail -------------------------------------------------------

    def _colors(self, d: DisplayNode) -> tuple[QBrush, QPen, QColor]:
        """Fill, outline, and the solid colour used when zoomed far out."""
        brush, pen = self._brushes[d.category], self._pens[d.category]
        far = pen.color()
        if self._heat is not None:
            vals = [self._heat[m] for m in d.members if m in self._heat]
            brush = QBrush(heat_color(max(vals)) if vals else _NO_HEAT)
            far = brush.color()
        if self._highlight is not None:
            names, color = self._highlight
            if names and any(m in names for m in d.members):
                brush = QBrush(_blend(QColor(Qt.GlobalColor.white), color, 0.4))
                pen = QPen(color.darker(115), 2.6)
                far = color
        return brush, pen, far

    def _apply_styles(self) -> None:
        if self._dg is None:
            return
        self._far_colors: list[QColor] = []
        for d in self._dg.nodes:
            brush, pen, far = self._colors(d)
            item = self._node_items[d.id]
            item.setBrush(brush)
            item.setPen(pen)
            self._far_colors.append(far)
        self._overview_dirty = True
        if self._lod is not None and self._lod[0]:
            self._build_overview()

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
        no_pen = QPen(Qt.PenStyle.NoPen)
        for key, ks in by_color.items():
            ks.sort(key=lambda k: self._ys[k])
            for start in range(0, len(ks), _CHUNK):
                path = QPainterPath()
                for k in ks[start:start + _CHUNK]:
                    path.addRect(self._xs[k] - self._hw[k], self._ys[k] - self._hh[k],
                                 2 * self._hw[k], 2 * self._hh[k])
                item = QGraphicsPathItem(path)
                item.setPen(no_pen)
                item.setBrush(brushes[key])
                item.setZValue(2)
                self._scene.addItem(item)
                self._overview_items.append(item)

    def _update_lod(self) -> None:
        """Show or hide item sets as the zoom crosses level-of-detail thresholds."""
        scale = self._view.transform().m11()
        overview = scale < _OVERVIEW_SCALE
        state = (
            overview,  # boxes as one path per colour
            not overview,  # box items and arrow heads
            scale >= _EDGE_SCALE,  # edges (invisible specks below)
            scale >= _LABEL_SCALE,  # box labels
            scale >= _EDGE_LABEL_SCALE,  # edge shape tags
        )
        if state == self._lod:
            self._populate_view()
            return
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

    def _min_scale(self) -> float:
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        if rect.isEmpty() or vp.isEmpty():
            return 0.01
        fit = min(vp.width() / rect.width(), vp.height() / rect.height())
        return min(fit * 0.5, 0.1)

    def _reset_view(self) -> None:
        """Initial view: the whole graph if readable, else the top of it at a readable zoom."""
        if not self._view.isVisible() or self._view.viewport().width() < 50:
            self._pending_view_reset = True
            return
        self._pending_view_reset = False
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        fit = min(vp.width() / rect.width(), vp.height() / rect.height())
        if fit >= _LABEL_SCALE + 0.08:
            self.fit()
            return
        scale = 0.8
        self._view.setTransform(QTransform.fromScale(scale, scale))
        top = rect.top() + vp.height() / (2 * scale)
        x = float(self._xs[0]) if len(self._xs) else rect.center().x()
        self._view.centerOn(QPointF(x, top))
        self._update_lod()

    def _on_resized(self) -> None:
        if self._pending_view_reset and self._graph is not None:
            self._reset_view()

    def showEvent(self, event: QEvent) -> None:
        super().showEvent(event)
        if self._pending_view_reset and self._graph is not None:
            self._reset_view()

    # ---- selection, hit testing, interaction ----------------------------------------------

    def _node_at(self, p: QPointF) -> str | None:
        if not len(self._ids):
            return None
        hit = np.flatnonzero((np.abs(self._xs - p.x()) <= self._hw)
                             & (np.abs(self._ys - p.y()) <= self._hh))
        return self._ids[int(hit[-1])] if len(hit) else None

    def _display_id(self, name: str) -> str | None:
        if self._dg is None:
            return None
        return self._dg.display_of.get(name) or (name if name in self._dg else None)

    def _set_selection(self, name: str | None) -> None:
        self._selected = name
        did = self._display_id(name) if name is not None else None
        if did is None or self._layout is None:
            self._marker.setVisible(False)
            self._marker_edges.setVisible(False)
            return
        (x, y), (w, h) = self._layout.positions[did], self._layout.sizes[did]
        self._marker.setPath(_rounded(w + 8, h + 8, 9))
        self._marker.setPos(x, y)
        self._marker.setVisible(True)
        path = QPainterPath()
        arrows = QPainterPath()
        for i in self._routes_of.get(did, []):
            _add_route(path, arrows, self._layout.edges[i].points)
        path.addPath(arrows)
        self._marker_edges.setPath(path)
        self._marker_edges.setVisible(True)

    def _center_on(self, did: str) -> None:
        if self._layout is not None and did in self._layout.positions:
            self._view.centerOn(QPointF(*self._layout.positions[did]))

    def _reveal(self, name: str) -> str | None:
        """The display id showing `name`, expanding (or collapsing to) modules as needed."""
        graph = self._graph
        if graph is None or self._dg is None:
            return None
        if name in self._dg.display_of:  # a real node
            if self._dg.display_of[name] != name:
                self._expanded |= ancestor_groups(graph, name)
                self._rebuild()
            return name
        if name in self._dg:
            return name
        path = next((p for p in self._groups if group_id(p) == name), None)
        if path is None:
            return None
        self._expanded |= {path[:i] for i in range(1, len(path)) if path[:i] in self._groups}
        self._expanded.discard(path)
        self._rebuild()
        return name if name in self._dg else None

    def _anchor_of(self, did: str) -> QPoint | None:
        if self._layout is None or did not in self._layout.positions:
            return None
        return self._view.mapFromScene(QPointF(*self._layout.positions[did]))

    def _restore_anchor(self, did: str, viewport_point: QPoint) -> None:
        """Scroll so that box `did` sits at `viewport_point`."""
        if self._layout is None or did not in self._layout.positions:
            return
        scale = self._view.transform().m11()
        centre = QPointF(self._view.viewport().rect().center())
        x, y = self._layout.positions[did]
        self._view.centerOn(QPointF(x - (viewport_point.x() - centre.x()) / scale,
                                    y - (viewport_point.y() - centre.y()) / scale))

    def _on_click(self, p: QPointF) -> None:
        did = self._node_at(p)
        if did is None:
            return
        self._set_selection(did)
        self.node_selected.emit(did)

    def _innermost_module(self, did: str) -> ModulePath | None:
        if self._dg is None:
            return None
        d = self._dg.node(did)
        path = d.module_path[:-1] if d.is_group else d.module_path
        for i in range(len(path), 0, -1):
            if path[:i] in self._groups:
                return path[:i]
        return None

    def _on_double_click(self, p: QPointF) -> None:
        did = self._node_at(p)
        if did is None or self._dg is None:
            return
        d = self._dg.node(did)
        if d.is_group:
            self.expand(d.module_path)
        else:
            path = self._innermost_module(did)
            if path is not None:
                self.collapse(path)

    def _on_context_menu(self, p: QPointF, global_pos: QPoint) -> None:
        menu = QMenu(self)
        did = self._node_at(p)
        if did is not None and self._dg is not None:
            d = self._dg.node(did)
            if d.is_group:
                menu.addAction(f"Expand {'.'.join(d.module_path)}").triggered.connect(
                    lambda: self.expand(d.module_path))
            path = self._innermost_module(did)
            if path is not None:
                menu.addAction(f"Collapse module {'.'.join(path)}").triggered.connect(
                    lambda: self.collapse(path))
            menu.addSeparator()
        menu.addAction("Fit").triggered.connect(self.fit)
        menu.addAction("Expand all").triggered.connect(self.expand_all)
        menu.addAction("Collapse all").triggered.connect(self.collapse_all)
        menu.exec(global_pos)

    def _tooltip_at(self, p: QPointF) -> str:
        did = self._node_at(p)
        if did is None or self._dg is None or self._graph is None:
            return ""
        d = self._dg.node(did)
        rows = []
        if d.is_group:
            rows += [f"<b>{'.'.join(d.module_path)}</b> ({d.op})", f"{len(d.members)} nodes",
                     "<i>double-click to expand</i>"]
        else:
            node = self._graph.node(did)
            rows += [f"<b>{node.name}</b>", f"op: {node.op}"]
            if node.module_path:
                rows.append(f"module: {'.'.join(node.module_path)}"
                            + (f" ({node.module_type})" if node.module_type else ""))
        if d.output_shape:
            rows.append(f"output: {d.output_shape}")
        if d.params:
            rows.append(f"params: {d.params:,}")
        if d.macs:
            rows.append(f"MACs: {d.macs:,}")
        if self._heat is not None:
            vals = [self._heat[m] for m in d.members if m in self._heat]
            if vals:
                rows.append(f"heat: {max(vals):.2f}")
        return "<br>".join(rows)

    def _on_search_text(self, text: str) -> None:
        self._match_text = text.strip().lower()
        self._match_index = -1
        if not self._match_text or self._graph is None:
            self._matches = []
            self._match_label.setText("")
            return
        q = self._match_text
        self._matches = [n.name for n in self._graph.nodes
                         if q in n.name.lower() or q in n.op.lower()]
        self._match_label.setText(f"{len(self._matches)} match"
                                  + ("" if len(self._matches) == 1 else "es"))

    def _update_legend(self) -> None:
        if self._dg is None:
            self._legend.setText("")
            return
        if self._heat is not None:
            stops = "".join(
                f"<span style='color:{heat_color(v).name()}'>&#9632;</span>"
                for v in (0.0, 0.25, 0.5, 0.75, 1.0))
            self._legend.setText(f"low {stops} high")
            return
        present = {d.category for d in self._dg.nodes}
        chips = [
            f"<span style='color:{CATEGORY_COLORS[c][1]}; font-size:13px'>&#9632;</span>&nbsp;{c}"
            for c in CATEGORIES if c in present
        ]
        self._legend.setText("&nbsp;&nbsp; ".join(chips))


def _add_route(path: QPainterPath, arrows: QPainterPath,
               points: list[tuple[float, float]]) -> None:
    """Append a smooth vertical-tangent curve through `points` and its arrow head."""
    (x0, y0) = points[0]
    path.moveTo(x0, y0)
    last = len(points) - 1
    for k in range(1, last + 1):
        x1, y1 = points[k]
        sign = 1.0 if y1 >= y0 else -1.0
        if k == last:
            arrows.moveTo(x1, y1)
            arrows.lineTo(x1 - _ARROW / 2, y1 - sign * _ARROW)
            arrows.lineTo(x1 + _ARROW / 2, y1 - sign * _ARROW)
            arrows.closeSubpath()
            y1 -= sign * _ARROW
        half = (y1 - y0) / 2
        path.cubicTo(x0, y0 + half, x1, y1 - half, x1, y1)
        x0, y0 = x1, y1
