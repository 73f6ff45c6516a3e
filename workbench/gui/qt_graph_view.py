"""QtGraphView: a zoomable, searchable drawing of a LayerGraph with collapsible modules.

A collapsed module is a box with a ⊕ (click it to expand); an expanded module is a frame with
a ⊖ (click it to collapse). The model's inputs and outputs are drawn as pills. A minimap in
the corner shows the whole graph. Keys: Ctrl+F search, F fit, Ctrl+0 actual size, Ctrl+= and
Ctrl+- zoom. Drawing lives in `qt_graph_scene`, colours in `qt_graph_style`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeySequence,
    QPainterPath,
    QShortcut,
    QTextDocument,
    QTransform,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.graph.graph_layout import (
    DisplayGraph,
    Layout,
    ModulePath,
    ancestor_groups,
    collapsible_modules,
    constant_nodes,
    default_expanded,
    group_id,
)
from workbench.core.graph.layergraph import CATEGORIES, LayerGraph
from workbench.core.graph.module_frames import FRAME_TITLE
from workbench.gui.qt_graph_canvas import GraphCanvas
from workbench.gui.qt_graph_minimap import GraphMinimap
from workbench.gui.qt_graph_paths import BADGE_RADIUS, add_route, rounded
from workbench.gui.qt_graph_scene import LABEL_SCALE, GraphSceneMixin
from workbench.gui.qt_graph_style import CATEGORY_COLORS, CHANGED_HUE, heat_color

log = logging.getLogger(__name__)

__all__ = ["CATEGORY_COLORS", "QtGraphView", "heat_color"]

_MAX_SCALE = 4.0
_FIT_WHOLE = 0.2  # Fit shows the whole graph down to this zoom; below, the top at width fit
_FIT_MIN = 0.5  # ... at no less than this zoom (labels readable)
_HIT = BADGE_RADIUS + 3.0


class QtGraphView(GraphSceneMixin, QWidget):
    """Interactive layer-graph viewer: pan, zoom, search, expand/collapse modules, select.

    Click ⊕ on a module box (or double-click it) to expand it; click ⊖ on a module's frame
    to collapse it; double-click a node to collapse the module around it. `max_visible`
    bounds how many boxes a new graph starts with.
    """

    node_selected = Signal(str)
    """A node (its real name), a module (its `module:` id) or a model input or output
    (`input:` / `output:` + tensor name) was selected by the user."""

    def __init__(self, parent: QWidget | None = None, *, max_visible: int = 300) -> None:
        super().__init__(parent)
        self.max_visible = max_visible
        self._graph: LayerGraph | None = None
        self._dg: DisplayGraph | None = None
        self._layout: Layout | None = None
        self._groups: dict[ModulePath, int] = {}
        self._expanded: set[ModulePath] = set()
        self._hidden: AbstractSet[str] = frozenset()
        self._selected: str | None = None
        self._highlight: tuple[set[str], QColor] | None = None
        self._highlight_label = ""
        self._heat: dict[str, float] | None = None
        self._matches: list[str] = []
        self._match_index = -1
        self._match_text = ""
        self._pending_view_reset = False

        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self._view = GraphCanvas(self, self)
        self._view.setScene(self._scene)
        self._minimap = GraphMinimap(self._view, self._visible_scene_rect, self._view.centerOn)
        self._minimap.hide()
        self._init_style()
        self._reset_items()
        self._build_widgets()
        self._add_shortcuts()

    def _build_widgets(self) -> None:
        self._search = QLineEdit()
        self._search.setPlaceholderText("Search name or op…  (Ctrl+F; Enter: next match)")
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
            ("−", "Zoom out (Ctrl+-)", self.zoom_out),
            ("+", "Zoom in (Ctrl+=)", self.zoom_in),
            ("Fit", "Fit the graph (F): all of it, or its top at a readable zoom", self.fit),
            ("1:1", "Actual size (Ctrl+0)", self.actual_size),
            ("Expand all", "Expand every module", self.expand_all),
            ("Collapse all", "Collapse every module", self.collapse_all),
        ):
            bar.addWidget(self._tool_button(text, tip, slot))
        self._map_button = self._tool_button("Map", "Show the overview map", self._on_map_toggled)
        self._map_button.setCheckable(True)
        self._map_button.setChecked(True)
        bar.addWidget(self._map_button)
        self._hide_constants = QCheckBox("Hide constants")
        self._hide_constants.setToolTip("Fold away nodes that only compute from weights "
                                        "(e.g. Unsqueeze of a scale), as Netron does")
        self._hide_constants.setChecked(True)
        self._hide_constants.toggled.connect(self._on_hide_constants)
        bar.addWidget(self._hide_constants)
        self._legend = QLabel()
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        self._legend.setContentsMargins(6, 2, 6, 4)
        self._legend.setWordWrap(True)
        self._status = QLabel()
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

    @staticmethod
    def _tool_button(text: str, tip: str, slot: Callable[[], object]) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def _add_shortcuts(self) -> None:
        for keys, slot in (
            (("Ctrl+F",), self.focus_search),
            (("F",), self.fit),
            (("Ctrl+0",), self.actual_size),
            (("Ctrl+=", "Ctrl++"), self.zoom_in),
            (("Ctrl+-",), self.zoom_out),
        ):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(slot)

    # ---- public API -----------------------------------------------------------------------

    @property
    def view(self) -> QGraphicsView:
        """The underlying QGraphicsView (for tests and screenshots)."""
        return self._view

    @property
    def search_edit(self) -> QLineEdit:
        """The search box (Enter selects the next match)."""
        return self._search

    @property
    def minimap(self) -> GraphMinimap:
        """The overview in the corner of the view."""
        return self._minimap

    def graph(self) -> LayerGraph | None:
        return self._graph

    def display_graph(self) -> DisplayGraph | None:
        """The boxes and edges currently drawn."""
        return self._dg

    def current_layout(self) -> Layout | None:
        return self._layout

    def legend_text(self) -> str:
        """The legend under the graph, as plain text (what each colour means)."""
        return _plain(self._legend.text())

    def set_graph(self, graph: LayerGraph | None) -> None:
        """Show `graph` (modules collapsed so at most `max_visible` boxes), or clear on None.

        A different graph clears the search box.
        """
        if graph is not self._graph:
            self._search.clear()
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
            self._minimap.hide()
            return
        self._groups = collapsible_modules(graph)
        self._expanded = default_expanded(graph, self.max_visible)
        self._hidden = constant_nodes(graph) if self._hide_constants.isChecked() else set()
        self._rebuild()
        self._on_search_text(self._search.text())
        self._minimap.setVisible(self._map_button.isChecked())
        self._place_minimap()
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

    def set_highlight(self, names: Iterable[str], color: QColor | str = CHANGED_HUE,
                      label: str = "changed from the parent variant") -> None:
        """Tint the boxes showing any of the real nodes `names` (a group shows its members).

        `label` says in the legend what the tint means.
        """
        self._highlight = (set(names), QColor(color))
        self._highlight_label = label
        self._apply_styles()
        self._update_legend()

    def clear_highlight(self) -> None:
        self._highlight = None
        self._apply_styles()
        self._update_legend()

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

    def actual_size(self) -> None:
        """Zoom to 100 % about the centre of the view."""
        centre = self._visible_scene_rect().center()
        self._view.setTransform(QTransform())
        self._view.centerOn(centre)
        self._update_lod()

    def fit(self) -> None:
        """Fit the whole graph (up to 100 %); a graph too big for that shows its top instead,
        fitted to the width at a readable zoom, and the minimap gives the overview."""
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        if rect.isEmpty() or vp.isEmpty():
            return
        whole = min(vp.width() / rect.width(), vp.height() / rect.height())
        if whole >= _FIT_WHOLE:
            self._view.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            if self._view.transform().m11() > 1.0:
                self._view.setTransform(QTransform())
                self._view.centerOn(rect.center())
            self._update_lod()
            return
        self._show_top(min(max(vp.width() / rect.width(), _FIT_MIN), 1.0))

    def focus_search(self) -> None:
        """Put the cursor in the search box with its text selected (Ctrl+F)."""
        self._search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._search.selectAll()

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
            if self._view.transform().m11() < LABEL_SCALE:
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

    def expand_control(self, path: ModulePath) -> QPointF | None:
        """Scene centre of the ⊕ on the collapsed module box at `path`, if drawn."""
        rect = self.node_scene_rect(group_id(path))
        return None if rect is None else QPointF(rect.right() - 16, rect.center().y())

    def collapse_control(self, path: ModulePath) -> QPointF | None:
        """Scene centre of the ⊖ on the frame of the expanded module at `path`, if drawn."""
        k = next((i for i, f in enumerate(self._frames) if f.path == path), None)
        return None if k is None else self.frame_badge_center(k)

    def frame_paths(self) -> list[ModulePath]:
        """The expanded modules drawn as frames (outer ones first)."""
        return [f.path for f in self._frames]

    def box_color(self, name: str) -> QColor | None:
        """Fill colour of the box showing `name` (a real node or group id), if drawn."""
        did = self._display_id(name)
        item = self._node_items.get(did) if did is not None else None
        return item.brush().color() if item is not None else None

    def fill_color(self, category: str) -> QColor:
        """The fill of a box of op `category` under the current palette (no overlay)."""
        return QColor(self._c.fills[category])

    # ---- view -----------------------------------------------------------------------------

    def _visible_scene_rect(self) -> QRectF:
        return self._view.mapToScene(self._view.viewport().rect()).boundingRect()

    def _show_top(self, scale: float) -> None:
        """Zoom to `scale` and show the top of the graph (centred if it fits the width)."""
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        self._view.setTransform(QTransform.fromScale(scale, scale))
        x = rect.center().x()
        if rect.width() * scale > vp.width() and len(self._xs):
            x = float(self._xs[0])
        self._view.centerOn(QPointF(x, rect.top() + vp.height() / (2 * scale)))
        self._update_lod()

    def _min_scale(self) -> float:
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        if rect.isEmpty() or vp.isEmpty():
            return 0.01
        fit = min(vp.width() / rect.width(), vp.height() / rect.height())
        return min(fit * 0.5, 0.1)

    def _reset_view(self) -> None:
        """Initial view: the whole graph if readable, else its top at a readable zoom."""
        if not self._view.isVisible() or self._view.viewport().width() < 50:
            self._pending_view_reset = True
            return
        self._pending_view_reset = False
        rect = self._scene.sceneRect()
        vp = self._view.viewport().size()
        fit = min(vp.width() / rect.width(), vp.height() / rect.height())
        if fit >= LABEL_SCALE + 0.08:
            self.fit()
        else:
            self._show_top(min(max(vp.width() / rect.width(), _FIT_MIN), 1.0))

    def _place_minimap(self) -> None:
        vp = self._view.viewport().geometry()
        self._minimap.set_limit(QSize(int(min(220, vp.width() * 0.3)), vp.height() - 16))
        self._minimap.move(vp.right() - self._minimap.width() - 8, vp.top() + 8)

    def _on_map_toggled(self) -> None:
        self._minimap.setVisible(self._map_button.isChecked() and self._graph is not None)

    def _on_resized(self) -> None:
        self._place_minimap()
        if self._pending_view_reset and self._graph is not None:
            self._reset_view()
        self._populate_view()

    def _on_scrolled(self) -> None:
        self._populate_view()
        self._minimap.update()

    def showEvent(self, event: QEvent) -> None:
        super().showEvent(event)
        if self._pending_view_reset and self._graph is not None:
            self._reset_view()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._init_style()
            if self._graph is not None:
                transform, centre = self._view.transform(), self._visible_scene_rect().center()
                self._rebuild()
                self._view.setTransform(transform)
                self._view.centerOn(centre)
            self._update_legend()

    def _on_hide_constants(self, on: bool) -> None:
        if self._graph is not None:
            self._hidden = constant_nodes(self._graph) if on else set()
            self._rebuild()

    # ---- selection, hit testing, interaction ----------------------------------------------

    def _node_at(self, p: QPointF) -> str | None:
        if not len(self._ids):
            return None
        hit = np.flatnonzero((np.abs(self._xs - p.x()) <= self._hw)
                             & (np.abs(self._ys - p.y()) <= self._hh))
        return self._ids[int(hit[-1])] if len(hit) else None

    def _frame_at(self, p: QPointF) -> int | None:
        """The innermost frame around scene point `p`."""
        best = None
        for k, f in enumerate(self._frames):
            if f.left <= p.x() <= f.right and f.top <= p.y() <= f.bottom and (
                    best is None or len(f.path) > len(self._frames[best].path)):
                best = k
        return best

    def _frame_control_at(self, p: QPointF) -> int | None:
        """The frame whose ⊖ is under `p`."""
        k = self._frame_at(p)
        if k is None:
            return None
        c = self.frame_badge_center(k)
        return k if abs(c.x() - p.x()) <= _HIT and abs(c.y() - p.y()) <= _HIT else None

    def _expand_control_at(self, p: QPointF) -> ModulePath | None:
        """The collapsed module whose ⊕ is under `p`."""
        did = self._node_at(p)
        if did is None or self._dg is None or not self._dg.node(did).is_group:
            return None
        path = self._dg.node(did).module_path
        c = self.expand_control(path)
        hit = c is not None and abs(c.x() - p.x()) <= _HIT and abs(c.y() - p.y()) <= _HIT
        return path if hit else None

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
        self._marker.setPath(rounded(w + 8, h + 8, 9))
        self._marker.setPos(x, y)
        self._marker.setVisible(True)
        path = QPainterPath()
        arrows = QPainterPath()
        for i in self._routes_of.get(did, []):
            add_route(path, arrows, self._layout.edges[i].points)
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
        frame = self._frame_control_at(p)
        if frame is not None:
            self.collapse(self._frames[frame].path)
            return
        path = self._expand_control_at(p)
        if path is not None:
            self.expand(path)
            return
        did = self._node_at(p)
        if did is None:
            k = self._frame_at(p)
            f = self._frames[k] if k is not None else None
            if f is None or p.y() > f.top + FRAME_TITLE + 6:
                return
            did = group_id(f.path)  # the frame's title row selects the module
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
        elif not d.io:
            path = self._innermost_module(did)
            if path is not None:
                self.collapse(path)

    def context_menu_at(self, p: QPointF) -> QMenu:
        """The context menu for scene point `p`: items that fit what is there."""
        menu = QMenu(self)
        did = self._node_at(p)
        d = self._dg.node(did) if did is not None and self._dg is not None else None
        if d is not None and d.is_group:
            path = d.module_path
            menu.addAction(f"Expand {'.'.join(path)}").triggered.connect(
                lambda: self.expand(path))
        elif d is not None:
            name = d.label if d.io else d.id
            menu.addAction(f"Copy name “{name}”").triggered.connect(
                lambda: QApplication.clipboard().setText(name))
            if not d.io:
                op = d.op
                menu.addAction(f"Find every {op}").triggered.connect(
                    lambda: (self.search(op), self.find_next()))
        else:
            k = self._frame_at(p)
            if k is not None:
                fpath = self._frames[k].path
                menu.addAction(f"Collapse {'.'.join(fpath)}").triggered.connect(
                    lambda: self.collapse(fpath))
        if menu.actions():
            menu.addSeparator()
        menu.addAction("Fit\tF").triggered.connect(self.fit)
        menu.addAction("Actual size\tCtrl+0").triggered.connect(self.actual_size)
        menu.addAction("Expand all").triggered.connect(self.expand_all)
        menu.addAction("Collapse all").triggered.connect(self.collapse_all)
        return menu

    def _on_context_menu(self, p: QPointF, global_pos: QPoint) -> None:
        self.context_menu_at(p).exec(global_pos)

    def _tooltip_at(self, p: QPointF) -> str:
        if self._frame_control_at(p) is not None:
            return "Collapse this module"
        if self._expand_control_at(p) is not None:
            return "Expand this module"
        did = self._node_at(p)
        if did is None or self._dg is None or self._graph is None:
            return ""
        d = self._dg.node(did)
        rows = []
        if d.io:
            rows.append(f"<b>{d.label}</b> (model {d.io})")
        elif d.is_group:
            rows += [f"<b>{'.'.join(d.module_path)}</b> ({d.op})", f"{len(d.members)} nodes",
                     "<i>click ⊕ or double-click to expand</i>"]
        else:
            node = self._graph.node(did)
            rows += [f"<b>{node.name}</b>", f"op: {node.op}"]
            if node.module_path:
                rows.append(f"module: {'.'.join(node.module_path)}"
                            + (f" ({node.module_type})" if node.module_type else ""))
        if d.output_shape:
            rows.append(f"{'shape' if d.io else 'output'}: {d.output_shape}")
        if d.params:
            rows.append(f"params: {d.params:,}")
        if d.macs:
            rows.append(f"MACs: {d.macs:,}")
        if self._heat is not None:
            vals = [self._heat[m] for m in d.members if m in self._heat]
            if vals:
                rows.append(f"heat: {max(vals):.2f} of the slowest")
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

    # ---- legend ---------------------------------------------------------------------------

    def _update_legend(self) -> None:
        """Say what every colour on screen means: overlays first, then op categories."""
        c = self._c
        self._status.setStyleSheet(f"color: {c.subtext.name()};")
        if self._dg is None:
            self._legend.setText("")
            return

        def chip(color: QColor) -> str:
            return f"<span style='color:{color.name()}; font-size:13px'>&#9632;</span>"

        parts = []
        if self._highlight is not None and self._highlight[0]:
            names, color = self._highlight
            boxes = sum(1 for d in self._dg.nodes if any(m in names for m in d.members))
            parts.append(f"{chip(c.overlay(color))}&nbsp;{self._highlight_label} "
                         f"({boxes} box{'' if boxes == 1 else 'es'})")
        if self._heat is not None:
            stops = "".join(chip(c.heat(v)) for v in (0.0, 0.25, 0.5, 0.75, 1.0))
            parts.append(f"Heat, time per layer: short {stops} longest &nbsp;"
                         f"{chip(c.neutral)}&nbsp;not measured")
        else:
            present = {d.category for d in self._dg.nodes if not d.io}
            parts += [f"{chip(c.borders[k])}&nbsp;{k}" for k in CATEGORIES if k in present]
        self._legend.setText(f"<span style='color:{c.subtext.name()}'>"
                             + "&nbsp;&nbsp; ".join(parts) + "</span>")


def _plain(html: str) -> str:
    """Rich text as plain text."""
    doc = QTextDocument()
    doc.setHtml(html)
    return doc.toPlainText()
