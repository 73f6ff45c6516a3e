"""A tab or dock content holder that builds its panel when first shown.

The window starts with holders in place of the panels that are not visible (weights plots,
training, benchmark, compare, passes): their modules, pyqtgraph with them, are imported when
the user first looks at one (or code asks for the panel). Until then the window's updates
are kept, the last one per method, and replayed in order on the new panel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

log = logging.getLogger(__name__)


class LazyPanel(QWidget):
    """Holds the place of `factory()`'s panel; builds it on the first show or `widget()`."""

    built = Signal(object)  # the panel, once, right after it is built and brought up to date

    def __init__(self, factory: Callable[[], QWidget], waiting: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._panel: QWidget | None = None
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._ready = True  # False while the panel cannot be built yet (see `hold`)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._waiting = QLabel(waiting)
        self._waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._waiting.setWordWrap(True)
        self._layout.addWidget(self._waiting)

    @property
    def panel(self) -> QWidget | None:
        """The panel if it is built, else None (never builds it)."""
        return self._panel

    def widget(self) -> QWidget:
        """The panel, built now if it is not yet."""
        if self._panel is None:
            self._build()
        assert self._panel is not None
        return self._panel

    def hold(self, text: str) -> None:
        """Show `text` and do not build on show until `release()` (such as while the passes
        load in the background); `widget()` still builds at once."""
        self._ready = False
        self._waiting.setText(text)

    def release(self) -> None:
        """Allow building on show again, and build now if the holder is visible."""
        self._ready = True
        if self.isVisible() and self._panel is None:
            self._build()

    def call(self, method: str, *args: Any) -> Any:
        """`panel.method(*args)` now if the panel is built; otherwise kept (the last call per
        method) to be replayed on the panel when it is built. Returns None when kept."""
        if self._panel is not None:
            return getattr(self._panel, method)(*args)
        self._pending.pop(method, None)  # replayed in the order of the last calls
        self._pending[method] = args
        return None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._panel is None and self._ready:
            self._build()

    def put(self, panel: QWidget) -> None:
        """Hold `panel` in place of the one the factory makes (or has made)."""
        if self._panel is not None:
            self._layout.removeWidget(self._panel)
            self._panel.hide()
            self._panel = None
        self._build(panel)

    def _build(self, given: QWidget | None = None) -> None:
        panel = given if given is not None else self._factory()
        self._panel = panel
        self._waiting.hide()
        self._layout.addWidget(panel)
        panel.show()  # a child added to a shown widget stays hidden until told
        pending, self._pending = self._pending, {}
        for method, args in pending.items():
            getattr(panel, method)(*args)
        log.debug("built %s", type(panel).__name__)
        self.built.emit(panel)
