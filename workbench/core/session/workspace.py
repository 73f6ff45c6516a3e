"""The workspace: every open variant (a lineage tree), its analysis, and the selection.

It is an evented model; the GUI listens to it and keeps no second copy of the state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from workbench.core.graph.analysis import Analysis

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One variant in the workspace, with what has been measured of it."""

    analysis: Analysis
    name: str
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.analysis.variant.id


class Workspace:
    """Variants by id, in insertion order, plus the selected one."""

    added = Signal(str)
    removed = Signal(str)
    renamed = Signal(str, str)
    results_changed = Signal(str)  # id: a measurement (accuracy, latency, ...) was recorded
    selection_changed = Signal(object)  # id or None

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._selected: str | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, variant_id: object) -> bool:
        return variant_id in self._entries

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def get(self, variant_id: str) -> Entry:
        return self._entries[variant_id]

    def add(self, analysis: Analysis, select: bool = True, name: str | None = None,
            results: dict[str, Any] | None = None) -> Entry:
        entry = Entry(analysis, name or analysis.variant.name, dict(results or {}))
        self._entries[entry.id] = entry
        self.added.emit(entry.id)
        if select:
            self.select(entry.id)
        return entry

    def remove(self, variant_id: str) -> Entry:
        """Forget a variant; if it was selected, its parent is selected (or else the first
        variant left), never an unrelated one when the parent is still there."""
        entry = self._entries.pop(variant_id)
        if self._selected == variant_id:
            parent = entry.analysis.variant.parent
            self.select(parent if parent in self._entries else next(iter(self._entries), None))
        self.removed.emit(variant_id)
        return entry

    def rename(self, variant_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("A variant name cannot be empty.")
        self._entries[variant_id].name = name
        self.renamed.emit(variant_id, name)

    def set_result(self, variant_id: str, key: str, value: Any) -> None:
        """Record a measurement of a variant (the variant list shows accuracy and latency)."""
        self._entries[variant_id].results[key] = value
        self.results_changed.emit(variant_id)

    @property
    def selected(self) -> Entry | None:
        return self._entries.get(self._selected) if self._selected else None

    def select(self, variant_id: str | None) -> None:
        if variant_id is not None and variant_id not in self._entries:
            raise KeyError(variant_id)
        if variant_id != self._selected:
            self._selected = variant_id
            self.selection_changed.emit(variant_id)

    def children(self, variant_id: str) -> list[Entry]:
        return [e for e in self._entries.values() if e.analysis.variant.parent == variant_id]

    def subtree(self, variant_id: str) -> list[Entry]:
        """The entry and all its descendants, parents before children."""
        out = [self._entries[variant_id]]
        for child in self.children(variant_id):
            out.extend(self.subtree(child.id))
        return out

    def parent_of(self, variant_id: str) -> Entry | None:
        parent = self._entries[variant_id].analysis.variant.parent
        return self._entries.get(parent) if parent else None
