"""After a project opens: offer to resume the training runs a crash interrupted.

`offer_resume(window)` asks, for each resumable interrupted run (most recent first), whether
to resume it; on Yes the run continues from its last checkpoint in the window's worker, like
any training, and no more questions are asked (one job runs at a time).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QMessageBox

log = logging.getLogger(__name__)


def offer_resume(window: Any) -> None:
    """Ask to resume an interrupted training run of the window's project (if dialogs show)."""
    session = window.session
    if session.project is None or not window.show_dialogs:
        return
    runs = [r for r in reversed(session.interrupted_runs())
            if r.resumable and r.variant_id in session.workspace]
    for run in runs:
        name = session.workspace.get(run.variant_id).name
        epoch = run.checkpoint_epoch()
        at = f"at epoch {epoch} of {run.epochs}" if epoch else "before its first epoch ended"
        what = "Distillation into" if run.kind == "distill" else "Training of"
        answer = QMessageBox.question(
            window, "Resume training",
            f"{what} {name} was interrupted {at}. Resume?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            _resume(window, run.id)
            return


def _resume(window: Any, run_id: str) -> Any:
    def done(entry: Any) -> None:
        window.status_label.setText(f"Resumed training finished: {entry.name}.")
        window.training_finished.emit([entry.id])

    return window._launch(lambda: window.session.resume_run(run_id), done, "Training",
                          window.train_panel)


__all__ = ["offer_resume"]
