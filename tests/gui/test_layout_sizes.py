"""Every tab at 1280×800, 1400×900 and 1920×1080: forms scroll vertically only, every
button shows its whole text, no tab pushes the side panels, the Pareto plot keeps 300 px,
plot titles fit, and long variant names elide in the middle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QStyleOptionButton,
)

from tests.gui.window_checks import LONG, visible, window_with_variants
from workbench.gui.plots import Plot
from workbench.gui.qt_main_window import TABS
from workbench.gui.qt_param_form import QtParamForm

SIZES = [(1280, 800), (1400, 900), (1920, 1080)]


def _text_fits(button: QPushButton) -> bool:
    """The text's advance plus the style's margins fit in the button's width."""
    text = button.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    option = QStyleOptionButton()
    button.initStyleOption(option)
    margin = button.style().pixelMetric(QStyle.PixelMetric.PM_ButtonMargin, option, button)
    frame = button.style().pixelMetric(QStyle.PixelMetric.PM_DefaultFrameWidth, option, button)
    icon = option.iconSize.width() + 4 if not button.icon().isNull() else 0
    need = QFontMetrics(button.font()).horizontalAdvance(text) + margin + 2 * frame + icon
    return need <= button.width()


def _check_tab(window: Any, tab: str, docks: dict[str, int],
               size: tuple[int, int]) -> list[str]:
    problems = []
    if (window.width(), window.height()) != size:
        problems.append(f"{tab}: the window grew to {window.width()}×{window.height()}")
    if window.tabs.currentWidget().minimumSizeHint().width() > window.tabs.width():
        problems.append(f"{tab}: the tab needs more width than the window leaves it")
    for scroll in visible(window, QScrollArea):
        inner = scroll.widget()
        if inner is None or not inner.isVisible():
            continue
        if scroll.horizontalScrollBar().isVisible() or \
                inner.width() > scroll.viewport().width():
            problems.append(f"{tab}: {type(inner).__name__} in a scroll area is "
                            f"{inner.width()} px wide in a {scroll.viewport().width()} px view")
    for form in visible(window, QtParamForm):
        if form.width() < form.minimumSizeHint().width():
            problems.append(f"{tab}: a form is squeezed below its minimum")
    for button in visible(window, QPushButton):
        if button.text() and not _text_fits(button):
            problems.append(f"{tab}: button '{button.text()}' is {button.width()} px, "
                            "too narrow for its text")
    for plot in visible(window, Plot):
        title = plot.drawn_title()
        room = plot.title_room()
        if title and QFontMetrics(plot.title_font()).horizontalAdvance(title) > room + 1:
            problems.append(f"{tab}: plot title '{title}' does not fit {room:.0f} px")
        if plot.width() < plot.getPlotItem().minimumWidth():
            problems.append(f"{tab}: plot '{title}' is squeezed below its content")
    for name, width in docks.items():
        now = getattr(window, name).width()
        if abs(now - width) > 2:
            problems.append(f"{tab}: the {name} went from {width} to {now} px")
    return problems


def _squeezed(qtbot: Any, window: Any, tab: str, docks: dict[str, int],
              size: tuple[int, int]) -> list[str]:
    """Drag every splitter of the tab to each extreme in turn: nothing clips even then."""
    problems = []
    for splitter in visible(window.tabs.currentWidget(), QSplitter):
        state = splitter.saveState()
        n = splitter.count()
        for squeezed in range(n):
            splitter.setSizes([1 if i == squeezed else 10_000 for i in range(n)])
            qtbot.wait(10)
            problems += [f"{p} (splitter pane {squeezed} at its minimum)"
                         for p in _check_tab(window, tab, docks, size)]
        splitter.restoreState(state)
    return problems


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_tab_holds_up(qtbot: Any, main_window: Any, tmp_path: Path,
                            size: tuple[int, int]) -> None:
    window_with_variants(qtbot, main_window, tmp_path)
    main_window.resize(*size)
    main_window.show_tab("graph")
    qtbot.wait(100)
    docks = {name: getattr(main_window, name).width()
             for name in ("variants_dock", "inspector_dock")}
    assert all(w >= 200 for w in docks.values())
    problems = []
    for tab in TABS:
        main_window.show_tab(tab)
        qtbot.wait(60)
        problems += _check_tab(main_window, tab, docks, size)
        problems += _squeezed(qtbot, main_window, tab, docks, size)
        if tab == "compare":
            assert main_window.compare_panel.pareto.width() >= 300
    # the Passes dock (its generated form) at the same size
    main_window.passes_dock.raise_()
    main_window.passes_panel.select_pass("prune.structured")
    qtbot.wait(60)
    problems += _check_tab(main_window, "passes", docks, size)
    assert not problems, "\n".join(problems)
    # back on the first tab, the docks are where they were: Compare took nothing for good
    main_window.show_tab("graph")
    qtbot.wait(30)
    assert {n: getattr(main_window, n).width() for n in docks} == pytest.approx(docks, abs=2)


def test_forms_put_labels_above_fields_when_narrow(qtbot: Any, main_window: Any) -> None:
    from PySide6.QtWidgets import QFormLayout

    form = main_window.train_panel.form
    layout = form.layout()
    main_window.resize(1920, 1080)
    main_window.show_tab("train")
    qtbot.wait(50)
    assert layout.rowWrapPolicy() == QFormLayout.RowWrapPolicy.WrapLongRows
    form.resize(150, form.height())  # as a narrow splitter would leave it (a synchronous event)
    assert layout.rowWrapPolicy() == QFormLayout.RowWrapPolicy.WrapAllRows
    assert form.minimumSizeHint().width() <= 150 + 40  # wrapped, it asks for little width
    form.resize(700, form.height())
    assert layout.rowWrapPolicy() == QFormLayout.RowWrapPolicy.WrapLongRows


def test_lineage_tree_elides_in_the_middle_with_the_full_name_as_tooltip(
        qtbot: Any, main_window: Any, tmp_path: Path) -> None:
    window_with_variants(qtbot, main_window, tmp_path)
    tree = main_window.variant_list
    assert tree.textElideMode() == Qt.TextElideMode.ElideMiddle
    item = next(tree._items[e.id] for e in main_window.workspace.entries() if LONG in e.name)
    assert LONG in item.toolTip(0)
    # the name column takes what the figures leave (it stretches), and the full text is kept
    assert LONG in item.text(0)
    assert tree.columnWidth(0) >= 120


def test_layer_diff_is_a_sortable_table_with_normal_rows(qtbot: Any, main_window: Any,
                                                        tmp_path: Path) -> None:
    from workbench.core.graph.analysis import analyse
    from workbench.core.jobs import run_job
    from workbench.core.model.zoo import build_zoo
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover
    from workbench.core.session.commands import AddVariant

    base = run_job(analyse(build_zoo("resnet-mini", input_shape=(1, 1, 8, 8))))
    child = apply_pass(discover().get("prune.structured"), base, {"ratio": 0.5}).analysis
    for a in (base, child):
        main_window.push(AddVariant(main_window.workspace, a, {}))
    main_window.resize(1400, 900)
    main_window.show_tab("compare")
    panel = main_window.compare_panel
    panel.diff_a.setCurrentIndex(0)
    panel.diff_b.setCurrentIndex(1)
    panel.show_diff()
    qtbot.wait(50)
    table = panel.diff_view.table
    assert table.rowCount() > 5
    assert table.isSortingEnabled()
    font_h = table.fontMetrics().height()
    assert all(table.rowHeight(r) <= font_h * 2 for r in range(table.rowCount()))
    # columns do not run into each other: each is at least as wide as its header text
    header = table.horizontalHeader()
    for c in range(table.columnCount() - 1):
        text = table.horizontalHeaderItem(c).text()
        assert header.sectionSize(c) >= QFontMetrics(header.font()).horizontalAdvance(text)
    # "Params A" sorts as numbers, not as text
    col = 5
    table.sortItems(col, Qt.SortOrder.DescendingOrder)
    values = [table.item(r, col).data(Qt.ItemDataRole.DisplayRole)
              for r in range(table.rowCount())]
    assert values == sorted(values, reverse=True)
    assert max(values) >= 1000  # text sorting would have put e.g. "9216" before "18432"


def test_point_labels_never_overlap() -> None:
    import random

    from workbench.gui.plots import place_labels

    rng = random.Random(0)
    points = [(rng.uniform(100, 300), rng.uniform(100, 200)) for _ in range(25)]
    sizes = [(rng.uniform(60, 160), 16.0) for _ in points]
    spots = place_labels(points, [8.0] * len(points), sizes, (0, 0, 600, 400))
    rects = [(x, y, w, h) for spot, (w, h) in zip(spots, sizes, strict=True)
             if spot is not None for x, y in [spot]]
    assert 5 <= len(rects) < len(points)  # crowded: some labels give way (hover shows them)
    for i, a in enumerate(rects):
        assert a[0] >= 0
        assert a[1] >= 0
        assert a[0] + a[2] <= 600
        assert a[1] + a[3] <= 400
        for b in rects[i + 1:]:
            assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2]
                        and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])


def test_name_axis_shows_only_names_that_fit(qtbot: Any) -> None:

    from workbench.gui.plots import NameAxis, elide_middle

    axis = NameAxis("bottom", max_chars=14)
    names = [f"features.{i}.conv" for i in range(100)]
    axis.set_names(names)
    (_, shown), = axis.tickValues(-0.5, 99.5, 300.0)
    labels = axis.tickStrings(shown, 1.0, 1.0)
    metrics: QFontMetrics = axis._metrics()
    width = max(metrics.horizontalAdvance(s) for s in labels)
    assert len(shown) * width <= 300  # side by side, they fit the axis
    assert 2 <= len(shown) < 100
    assert elide_middle("a" * 30, 10) == "aaaa…aaaaa"
    assert labels[0] == elide_middle(names[int(shown[0])], 14)


def test_pareto_names_do_not_overlap(qtbot: Any, main_window: Any, tmp_path: Path) -> None:
    window_with_variants(qtbot, main_window, tmp_path)
    main_window.resize(1400, 900)
    main_window.show_tab("compare")
    qtbot.wait(100)
    rects = main_window.compare_panel.visible_label_rects()
    assert rects
    for i, a in enumerate(rects):
        assert not any(a.intersects(b) for b in rects[i + 1:])
