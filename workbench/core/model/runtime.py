"""Run any variant on inputs: torch eager, or an ONNX Runtime session (cached per variant).

Inputs are matched to the model in order and cast to the dtypes it wants (an fp16 torch
model gets float16 tensors, an ONNX graph gets the element types its inputs declare).
Outputs come back as numpy arrays; floating outputs are float32 (numpy has no bfloat16).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

_SESSION_CACHE_SIZE = 6
_sessions: OrderedDict[tuple[str, int | None], Any] = OrderedDict()
_lock = threading.Lock()

# ONNX tensor type strings (as ORT reports them) to numpy dtypes.
_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def ort_session(model_proto: Any, threads: int | None = None) -> Any:
    """A CPU `onnxruntime.InferenceSession` built from an in-memory ModelProto.

    `threads` sets the intra-op thread count (None: ONNX Runtime's default, not spinning).
    Graphs holding float16 tensors are built without ORT's NCHWc layout transformer: in
    ORT 1.31 it crashes the process on some fp16 graphs (the fp16 transformer-tiny, for
    one), and it only ever speeds up float32 convolutions.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; ORT warns about unused initializers
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    else:
        # Outside benchmarks, idle pool threads sleep instead of spinning: spinning threads
        # take a busy machine's cores from everything else (torch, the GUI, other jobs).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if isinstance(model_proto, bytes):
        data, disabled = model_proto, []
    else:
        data = model_proto.SerializeToString()
        disabled = list(UNSAFE_FP16_OPTIMIZERS) if has_float16(model_proto) else []
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled or None)


UNSAFE_FP16_OPTIMIZERS = ("NchwcTransformer",)


def has_float16(model_proto: Any) -> bool:
    """Whether an ONNX graph stores or casts to float16 anywhere."""
    fp16 = 10  # onnx.TensorProto.FLOAT16
    graph = model_proto.graph
    if any(i.data_type == fp16 for i in graph.initializer):
        return True
    for node in graph.node:
        if node.op_type == "Cast" and any(a.name == "to" and a.i == fp16
                                          for a in node.attribute):
            return True
    return any(v.type.tensor_type.elem_type == fp16
               for v in (*graph.input, *graph.output, *graph.value_info))


def cached_session(variant: Variant, threads: int | None = None) -> Any:
    """The ORT session of an ONNX variant, built once per variant id (small LRU cache)."""
    key = (variant.id, threads)
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            _sessions.move_to_end(key)
            return session
    session = ort_session(variant.model, threads)
    with _lock:
        _sessions[key] = session
        while len(_sessions) > _SESSION_CACHE_SIZE:
            _sessions.popitem(last=False)
    return session


def clear_session_cache() -> None:
    with _lock:
        _sessions.clear()


def run_variant(variant: Variant, inputs: Sequence[Any]) -> np.ndarray:
    """Run `variant` on `inputs` (torch tensors or numpy arrays, in input order).

    Returns the first output as a numpy array (floating outputs as float32).
    """
    if variant.backend == "onnx":
        return run_session(cached_session(variant), inputs)
    return run_torch(variant, inputs)


def run_samples(run: Callable[[tuple[Any, ...]], np.ndarray],
                samples: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """Outputs for batch-1 `samples`: one stacked run, or one run each if that fails
    (a graph with a fixed batch of 1, say)."""
    from workbench.core.model.sample_inputs import stack_inputs

    if len(samples) > 1:
        try:
            out = run(stack_inputs(samples))
            if out.shape[:1] == (len(samples),):
                return out
        except Exception:  # fall back to one sample at a time
            log.debug("batched run failed; running samples one at a time", exc_info=True)
    return np.concatenate([run(tuple(s)) for s in samples], axis=0)


def run_onnx(model_proto: Any, inputs: Sequence[Any], threads: int | None = None
             ) -> np.ndarray:
    """Run an ONNX ModelProto (uncached session) on `inputs`; the first output."""
    return run_session(ort_session(model_proto, threads), inputs)


def run_session(session: Any, inputs: Sequence[Any]) -> np.ndarray:
    """Feed `inputs` to an ORT session's inputs in order, cast to the declared types."""
    out = np.asarray(session.run(None, session_feed(session, inputs))[0])
    return out.astype(np.float32, copy=False) if np.issubdtype(out.dtype, np.floating) else out


def session_feed(session: Any, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
    """The `{name: array}` feed of an ORT session for positional `inputs`."""
    wanted = session.get_inputs()
    if len(inputs) < len(wanted):
        raise ValueError(f"The model takes {len(wanted)} inputs "
                         f"({', '.join(i.name for i in wanted)}); got {len(inputs)}.")
    feed = {}
    for spec, value in zip(wanted, inputs, strict=False):
        array = to_numpy(value)
        dtype = _ORT_DTYPES.get(spec.type)
        if dtype is not None and array.dtype != dtype:
            array = array.astype(dtype)
        feed[spec.name] = np.ascontiguousarray(array)
    return feed


def run_torch(variant: Variant, inputs: Sequence[Any]) -> np.ndarray:
    """Run a torch variant eagerly under `no_grad` (the inputs go to the device its
    weights are on); the first tensor output as numpy."""
    import torch

    model = variant.model
    args = torch_inputs(variant, inputs)
    where = next((p.device for p in model.parameters()), None) \
        if isinstance(model, torch.nn.Module) else None
    if where is not None and where.type != "cpu":
        args = tuple(a.to(where) if isinstance(a, torch.Tensor) else a for a in args)
    with torch.no_grad():
        out = model(*args)
    return output_to_numpy(first_tensor(out))


def torch_inputs(variant: Variant, inputs: Sequence[Any]) -> tuple[Any, ...]:
    """`inputs` as torch tensors in the dtypes `variant` wants (its specs, else its weights)."""
    import torch

    float_dtype = model_float_dtype(variant.model)
    args = []
    for i, value in enumerate(inputs):
        t = value if isinstance(value, torch.Tensor) else torch.from_numpy(
            np.ascontiguousarray(value))
        spec = variant.inputs[i] if i < len(variant.inputs) else None
        if spec is not None and hasattr(torch, spec.dtype):
            want = getattr(torch, spec.dtype)
            if want.is_floating_point and float_dtype is not None:
                want = float_dtype  # the weights decide (a spec may lag behind a cast)
        elif t.is_floating_point() and float_dtype is not None:
            want = float_dtype
        else:
            want = t.dtype
        args.append(t.to(want) if t.dtype != want else t)
    return tuple(args)


def model_float_dtype(model: Any) -> Any:
    """The dtype of a module's first floating parameter (None if it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def first_tensor(out: Any) -> Any:
    """The first tensor in a model output (tensor, tuple, list, dict or ModelOutput)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) or hasattr(out, "values"):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for item in out:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def output_to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as numpy; floating tensors become float32."""
    import torch

    if t is None:
        raise ValueError("The model returned no tensor.")
    t = t.detach().cpu()
    return (t.to(torch.float32) if t.is_floating_point() else t).numpy()


def to_numpy(value: Any) -> np.ndarray:
    """A tensor or array-like as numpy (bfloat16 tensors go through float32)."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):
        import torch

        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        return t.numpy()
    return np.asarray(value)
