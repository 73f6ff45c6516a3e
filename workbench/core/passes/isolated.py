"""Run a heavy pass (`Pass.isolated`) in a child process under the job's memory ceiling.

The child runs `pass.run` on the variant it inherited and writes the new model to files
(`module_files` for torch, an `.onnx` file for ONNX) with its report as JSON; the parent
rebuilds the model from the pass's `skeleton` (the same starting point) and returns the
`PassOutput` the pass would have returned in-process. Cancel, the time limit and the memory
ceiling kill the child; the input variant and the workspace are never touched.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from workbench.core.child_job import run_in_child
from workbench.core.jobs import CancelToken, call_cancellable
from workbench.core.memory_budget import effective_limit, human
from workbench.core.model.variant import InputSpec, Variant

log = logging.getLogger(__name__)

HINT = ("Add the largest layers to the ignore list (param `ignore`), give a smaller input "
        "shape, raise the ceiling (Settings ▸ Memory ceiling, or --max-memory), or use a "
        "machine with more memory.")


def run_isolated(pass_obj: Any, variant: Variant, params: Any, ctx: Any,
                 time_limit: float | None) -> Any:
    """`pass_obj.run(variant, params, ctx)` in a child process; its PassOutput."""
    from workbench.core.passes.base import PassOutput, PassTimeoutError, _check_output

    name = pass_obj.name

    def work(folder: Path, report: Any) -> dict[str, Any]:
        inner = dataclasses.replace(ctx, progress=report, cancel=CancelToken())
        output = pass_obj.run(variant, params, inner)
        backend = _check_output(name, variant, output)
        if backend == "onnx":
            import onnx

            onnx.save(output.model, str(folder / "model.onnx"))
        else:
            from workbench.core.model.module_files import write_module

            report(None, "Handing the result back…")
            write_module(output.model, folder)
        return {"backend": output.backend, "format": output.format,
                "details": output.details, "warnings": list(output.warnings),
                "metadata": output.metadata,
                "inputs": None if output.inputs is None
                else [dataclasses.asdict(spec) for spec in output.inputs]}

    def timeout() -> BaseException:
        return PassTimeoutError(f"{name} took longer than {time_limit:g} s; it was stopped "
                                "and its result discarded.")

    limit = effective_limit(getattr(ctx, "memory_limit", None))
    with run_in_child(f"{name} on {variant.name}", work, limit=limit, cancel=ctx.cancel,
                      progress=ctx.progress, time_limit=time_limit, on_timeout=timeout,
                      hint=HINT) as (record, folder):
        backend = record["backend"] or variant.backend
        if backend == "onnx":
            import onnx

            model = onnx.load(str(folder / "model.onnx"))
        else:
            from workbench.core.model.module_files import read_module

            model = call_cancellable(lambda token: read_module(
                pass_obj.skeleton(variant, params), folder), ctx.cancel)
    inputs = record.get("inputs")
    details = dict(record["details"])
    details["peak_memory"] = human(record.get("peak_bytes", 0))
    return PassOutput(model, backend=record["backend"], format=record["format"],
                      details=details, warnings=record["warnings"],
                      metadata=record["metadata"],
                      inputs=None if inputs is None else tuple(
                          InputSpec(**{**spec, "shape": tuple(spec["shape"])})
                          for spec in inputs))
