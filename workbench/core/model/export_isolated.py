"""Export a torch variant in a child process, under the job's memory ceiling.

Converting to ONNX or `.pt2` traces the whole model and can take much memory; the child
(`child_job.run_in_child`) writes the file itself (atomically, as in-process) and hands back
only the JSON summary. Cancel kills it at once. ONNX variants, which are only serialized,
and platforms without `fork` export in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.jobs import CancelToken
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

HINT = ("Try another format (safetensors needs the least), a smaller input shape, raise the "
        "ceiling (Settings ▸ Memory ceiling, or --max-memory), or use a machine with more "
        "memory.")


def export_isolated(variant: Variant, path: str | Path, fmt: str | None, opset: int,
                    cancel: CancelToken, step: Callable[[float | None, str], None],
                    memory_limit: int | None = None) -> dict[str, Any]:
    """`export_variant(...)`, in a child process when the variant is a torch model."""
    from workbench.core.child_job import can_isolate, run_in_child
    from workbench.core.memory_budget import effective_limit
    from workbench.core.model.export import export_variant

    def report(fraction: float | None, message: str) -> None:
        step(fraction, message)

    if variant.backend != "torch" or not can_isolate():
        return export_variant(variant, path, fmt, opset=opset, step=report)

    def work(folder: Path, child_report: Any) -> dict[str, Any]:
        return export_variant(variant, path, fmt, opset=opset, step=child_report)

    with run_in_child(f"Exporting {variant.name}", work, limit=effective_limit(memory_limit),
                      cancel=cancel, progress=report, hint=HINT) as (record, _folder):
        record.pop("peak_bytes", None)
        return record
