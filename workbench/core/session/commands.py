"""Undoable edits of the workspace (commands on the model, never on widgets).

The GUI wraps these in QUndoCommands; the logic lives here so it is testable headless.
"""

from __future__ import annotations

import logging
from typing import Any

from workbench.core.graph.analysis import Analysis
from workbench.core.session.workspace import Entry, Workspace

log = logging.getLogger(__name__)


class AddVariant:
    """Add a variant (the result of a pass or a load); undo removes it."""

    def __init__(self, workspace: Workspace, analysis: Analysis,
                 results: dict[str, Any] | None = None) -> None:
        self.workspace, self.analysis, self.results = workspace, analysis, results
        self.text = f"Add {analysis.variant.name}"

    def redo(self) -> None:
        self.workspace.add(self.analysis, results=self.results)

    def undo(self) -> None:
        self.workspace.remove(self.analysis.variant.id)


class DeleteVariant:
    """Delete a variant and its descendants; undo puts them all back with their names."""

    def __init__(self, workspace: Workspace, variant_id: str) -> None:
        self.workspace, self.variant_id = workspace, variant_id
        self.removed: list[Entry] = []
        self.text = f"Delete {workspace.get(variant_id).name}"

    def redo(self) -> None:
        self.removed = self.workspace.subtree(self.variant_id)
        for entry in reversed(self.removed):
            self.workspace.remove(entry.id)

    def undo(self) -> None:
        for entry in self.removed:
            self.workspace.add(entry.analysis, select=False, name=entry.name,
                               results=entry.results)
        self.workspace.select(self.variant_id)


class RenameVariant:
    def __init__(self, workspace: Workspace, variant_id: str, name: str) -> None:
        self.workspace, self.variant_id, self.name = workspace, variant_id, name
        self.old = workspace.get(variant_id).name
        self.text = f"Rename {self.old} to {name}"

    def redo(self) -> None:
        self.workspace.rename(self.variant_id, self.name)

    def undo(self) -> None:
        self.workspace.rename(self.variant_id, self.old)
