"""Small ONNX graph helpers the int8 passes share: node names, transformer detection, and
silencing the quantization tools."""

from __future__ import annotations

from typing import Any

from workbench.core.job_scope import quiet_stdout


def node_names(model: Any) -> set[str]:
    """The names of `model`'s nodes (unnamed nodes left out)."""
    return {n.name for n in model.graph.node if n.name}


def is_transformer(model: Any) -> bool:
    """Whether the graph looks like a transformer (attention, or softmax with a norm)."""
    ops = {n.op_type for n in model.graph.node}
    return "Attention" in ops or ("Softmax" in ops and bool(
        ops & {"LayerNormalization", "ReduceMean", "SkipLayerNormalization"}))


def quiet() -> Any:
    """The quantization tools' chatter: their root-logger records and warnings are dropped
    by the app's logging set-up (workbench.core.logs); the progress lines the histogram
    calibrators print need the job scope's stdout redirect."""
    return quiet_stdout()
