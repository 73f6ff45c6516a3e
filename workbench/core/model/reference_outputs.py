"""A parent's outputs on sample inputs, computed once per (variant, inputs).

Every int8 trial of the same parent (quantize.ort_dynamic with other settings, the
candidates of quantize.auto, a re-run after undo) compares against the parent's outputs on
the same real samples. Variants never change once made (the ONNX export cache relies on
that too), so those outputs are memoised by the variant's id and a digest of the inputs'
bytes, shapes and dtypes; the array handed out is read-only. A few entries are kept, and
outputs past `MAX_BYTES` are not kept at all.

They are also kept on disk in the artifact cache, for a later process (the window opened
again): keyed by the model's content (a SHA-256 of an ONNX model's bytes, or a torch
variant's `content_hash`, when its export already computed it), the inputs' digest, and
the runtime's version. Other torch variants are only memoised.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.core.model.runtime import run_samples, run_variant, to_numpy
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)
ENTRIES = 8
REVISION = 1  # bump when a change here changes the outputs (their disk cache key)
FORMAT = "reference-outputs"
MAX_BYTES = 64 << 20
_memo: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def reference_outputs(variant: Variant, inputs: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """`variant`'s first output on each batch-1 input tuple, stacked (read-only)."""
    key = (variant.id, inputs_digest(inputs))
    with _lock:
        hit = _memo.get(key)
        if hit is not None:
            _memo.move_to_end(key)
            return hit
    digest = key[1]
    out = _load(variant, digest, len(inputs))
    if out is None:
        out = run_samples(lambda batch: run_variant(variant, batch), inputs)
        if out.nbytes <= MAX_BYTES:
            _store(variant, digest, out)
    out.flags.writeable = False
    with _lock:
        if out.nbytes <= MAX_BYTES:
            _memo[key] = out
            while len(_memo) > ENTRIES:
                _memo.popitem(last=False)
    return out


def clear_reference_outputs() -> None:
    """Forget every memoised output."""
    with _lock:
        _memo.clear()


def inputs_digest(inputs: Sequence[tuple[Any, ...]]) -> str:
    """SHA-256 of the samples' values, shapes and dtypes."""
    h = hashlib.sha256()
    for sample in inputs:
        for value in sample:
            arr = np.ascontiguousarray(to_numpy(value))
            h.update(f"{arr.dtype.str}{arr.shape};".encode())
            h.update(arr.view(np.uint8).reshape(-1).data if arr.size else b"")
        h.update(b"|")
    return h.hexdigest()


def disk_key(variant: Variant, digest: str) -> Any:
    """The artifact cache key of `variant`'s outputs on inputs with `digest` (None for a
    torch variant whose content hash is not known yet)."""
    from workbench.core.model.artifact_cache import derived_key, onnx_digest

    # a torch variant's hash only when already known (its export computed it): hashing every
    # weight of a large model just for this would cost more than it saves
    content: str | None = vars(variant).get("content_hash")
    runtime = _version("torch")
    if variant.backend == "onnx":
        content, runtime = onnx_digest(variant.model), _version("onnxruntime")
    if content is None:
        return None
    import workbench

    return derived_key(content, FORMAT, {"workbench": workbench.__version__,
                                         "revision": str(REVISION), "runtime": runtime},
                       {"backend": variant.backend, "inputs": digest})


@functools.cache
def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist} none"


def _load(variant: Variant, digest: str, samples: int) -> np.ndarray | None:
    """The outputs stored on disk for `variant` and these inputs, or None."""
    from onnx import numpy_helper

    from workbench.core.model import artifact_cache

    try:
        key = disk_key(variant, digest)
        found = artifact_cache.load_onnx(key) if key is not None else None
        if found is None or len(found[0].graph.initializer) != 1:
            return None
        out = numpy_helper.to_array(found[0].graph.initializer[0])
    except Exception:  # the cache is a shortcut: run the model instead
        log.debug("cannot read cached reference outputs of %s", variant.name, exc_info=True)
        return None
    return out if out.shape[:1] == (samples,) else None


def _store(variant: Variant, digest: str, out: np.ndarray) -> None:
    """Keep `out` on disk as an ONNX file whose only content is one initializer."""
    import onnx
    from onnx import numpy_helper

    from workbench.core.model import artifact_cache

    try:
        key = disk_key(variant, digest)
        if key is None:
            return
        holder = onnx.ModelProto()
        holder.graph.name = FORMAT
        holder.graph.initializer.append(numpy_helper.from_array(out, "outputs"))
        artifact_cache.store_onnx(key, holder)
    except Exception:
        log.debug("cannot cache reference outputs of %s", variant.name, exc_info=True)
