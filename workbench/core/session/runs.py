"""Training runs recorded in a project, so a run a crash cut short can be resumed.

A run is recorded when its job starts (status `running`) and ended when its result is
committed (`finished`, `stopped`) or its job fails (`failed`). A run still `running` when a
project is opened belongs to a process that died: it is *interrupted*, and resumable when
its checkpoint folder holds a `last.pt`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUN_KINDS = ("train", "distill", "prune")
RUN_STATUSES = ("running", "finished", "stopped", "failed")
RESUMABLE_KINDS = ("train", "distill")  # prune-and-fine-tune reuses one folder per round


@dataclass(frozen=True)
class RunRecord:
    """One training run of a project, as recorded in its `runs` table."""

    id: str
    variant_id: str  # the source variant (the trained variant becomes its child)
    kind: str
    dataset: str
    config: dict[str, Any]  # TrainConfig fields, checkpoint_dir relative to the project
    options: dict[str, Any] = field(default_factory=dict)  # distill/prune options
    checkpoint_dir: Path = Path()  # absolute
    status: str = "running"
    started: float = 0.0
    ended: float | None = None

    @property
    def epochs(self) -> int:
        return int(self.config.get("epochs", 0))

    @property
    def resumable(self) -> bool:
        """A train or distill run with a last checkpoint on disk."""
        return self.kind in RESUMABLE_KINDS and (self.checkpoint_dir / "last.pt").is_file()

    def checkpoint_epoch(self) -> int | None:
        """Epochs completed by the last checkpoint (None when there is none or it is
        unreadable)."""
        return checkpoint_epoch(self.checkpoint_dir)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variant_id": self.variant_id, "kind": self.kind,
                "dataset": self.dataset, "config": self.config, "options": self.options,
                "checkpoint_dir": str(self.checkpoint_dir), "status": self.status,
                "started": self.started, "ended": self.ended, "epochs": self.epochs,
                "epoch": self.checkpoint_epoch(), "resumable": self.resumable}


def checkpoint_epoch(folder: Path) -> int | None:
    """How many epochs `folder/last.pt` holds, or None."""
    import torch

    path = Path(folder) / "last.pt"
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["epoch"]) + 1
    except Exception:  # truncated or tampered: reported as unreadable
        return None


def record_of(row: dict[str, Any], project_folder: Path) -> RunRecord:
    """A RunRecord from a `runs` row (JSON columns decoded, folder made absolute)."""
    config = json.loads(row["config"])
    options = json.loads(row["options"])
    folder = Path(row["checkpoint_dir"])
    return RunRecord(
        id=row["id"], variant_id=row["variant_id"], kind=row["kind"], dataset=row["dataset"],
        config=config if isinstance(config, dict) else {},
        options=options if isinstance(options, dict) else {},
        checkpoint_dir=folder if folder.is_absolute() else project_folder / folder,
        status=row["status"], started=float(row["started"]),
        ended=None if row["ended"] is None else float(row["ended"]))


__all__ = ["RESUMABLE_KINDS", "RUN_KINDS", "RUN_STATUSES", "RunRecord", "checkpoint_epoch",
           "record_of"]
