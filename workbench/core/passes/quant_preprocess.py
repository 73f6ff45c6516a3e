"""`quant_pre_process` for the int8 passes, cached on disk like the export it starts from.

Pre-processing (ONNX shape inference, ONNX Runtime's graph optimisation, symbolic shape
inference) gives the same graph for the same float model, nodes kept in float and tool
versions, so its result is kept in the artifact cache (`artifact_cache.derived_key`): keyed
by a SHA-256 of the float model's bytes (a changed variant, or another exporter, misses),
the sorted `exclude` names (they may turn graph optimisation off), and the versions of
onnx, ONNX Runtime and Workbench. A hit is written to the pass's temporary folder, as a
fresh run would leave it, and `info["cached"]` says so.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from workbench.core.passes.base import PassError
from workbench.core.passes.quant_graph import is_transformer, node_names, quiet

log = logging.getLogger(__name__)

PREPROCESS_REVISION = 1  # bump when a change here changes the pre-processed bytes
FORMAT = "onnx-quant-preprocessed"


def preprocess(fp32: Any, folder: str, exclude: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The pre-processed `fp32` (a ModelProto) saved in `folder`: its path, and how it was
    run (`symbolic_shape`, `optimized`, `cached`)."""
    import onnx

    from workbench.core.model import artifact_cache

    key = preprocess_key(fp32, exclude)
    out = os.path.join(folder, "preprocessed.onnx")
    found = artifact_cache.load_onnx(key)
    if found is not None:
        model, extra = found
        try:
            info = dict(json.loads(extra["info"]))
        except (KeyError, ValueError, TypeError):
            log.debug("cached pre-processed model without its info; running again")
        else:
            onnx.save(model, out)
            return out, {**info, "cached": True}
    src = os.path.join(folder, "model.onnx")
    onnx.save(fp32, src)
    out, info = run_preprocess(src, folder, exclude)
    artifact_cache.store_onnx(key, onnx.load(out, load_external_data=False),
                              {"info": json.dumps(info, sort_keys=True)})
    return out, {**info, "cached": False}


def preprocess_key(fp32: Any, exclude: Sequence[str]) -> Any:
    """The artifact cache key of `fp32`'s pre-processed model with `exclude` kept."""
    from workbench.core.model.artifact_cache import derived_key, onnx_digest

    return derived_key(onnx_digest(fp32), FORMAT, _versions(),
                       {"exclude": json.dumps(sorted(set(exclude)))})


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import onnx
    import onnxruntime

    import workbench

    try:  # symbolic shape inference succeeds or not by sympy's version
        sympy = version("sympy")
    except PackageNotFoundError:
        sympy = "none"
    return {"workbench": workbench.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "sympy": sympy,
            "revision": str(PREPROCESS_REVISION)}


def run_preprocess(src: str, folder: str, exclude: Sequence[str]
                   ) -> tuple[str, dict[str, Any]]:
    """Run `quant_pre_process` on the model at `src`; returns the new path and how it ran.

    Symbolic shape inference is skipped for transformer-like graphs (it fails on their
    dynamic sequence axes) and retried without when it fails. Graph optimisation is turned
    off when it would fuse away a node named in `exclude`.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(src, load_external_data=False)
    skip_symbolic = is_transformer(model)
    out = os.path.join(folder, "preprocessed.onnx")
    info: dict[str, Any] = {"symbolic_shape": not skip_symbolic, "optimized": True}
    attempts = [(False, skip_symbolic), (False, True)]
    if skip_symbolic:
        attempts = attempts[1:]
    error: Exception | None = None
    for skip_opt, skip_sym in attempts:
        try:
            with quiet():
                quant_pre_process(src, out, skip_optimization=skip_opt,
                                  skip_symbolic_shape=skip_sym)
            info["symbolic_shape"] = not skip_sym
            error = None
            break
        except Exception as exc:  # symbolic shape inference gives up on some graphs
            log.debug("quant_pre_process attempt failed (skip_optimization=%s, "
                      "skip_symbolic_shape=%s)", skip_opt, skip_sym, exc_info=True)
            error = exc
    if error is not None:
        raise PassError(f"quant_pre_process failed: {type(error).__name__}: {error}")
    if exclude and not set(exclude) <= node_names(onnx.load(out, load_external_data=False)):
        with quiet():
            quant_pre_process(src, out, skip_optimization=True,
                              skip_symbolic_shape=not info["symbolic_shape"])
        info["optimized"] = False
    return out, info
