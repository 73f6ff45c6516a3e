"""A content-addressed cache on disk for artifacts derived from a variant (ONNX exports).

An entry is keyed by what changes its bytes: the variant's content hash (model structure,
weights and input specs; never its session id), the format, opset, input specs, dynamic
batch, and the versions of Workbench, torch and the exporters. Artifacts derived from
other bytes (the int8 passes' pre-processed model, a parent's reference outputs) are keyed
by `derived_key`: a SHA-256 of their source, the step's versions and its options. Each entry
is one plain ONNX file, `<sha256 of the key>.onnx`, written atomically. Its metadata carries
the key and extra strings, and it ends with a SHA-256 of everything before it, so a
truncated or damaged entry is detected, logged at debug, deleted and rebuilt; reading one
only parses protobuf.

The folder is `set_cache_dir(path)` (a Session points it at `<project>/cache`), otherwise
`$WORKBENCH_CACHE_DIR/artifacts` or platformdirs' user cache folder. Entries past the size
cap (`set_cache_limit`, 2 GB by default) are evicted least recently used first; a hit
refreshes the entry's modification time. Failing to read or write the cache is never an
error: the caller just exports again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the entry layout changes
DEFAULT_LIMIT = 2 << 30
SUFFIX = ".onnx"
_PREFIX = "workbench.cache."
_KEY_PROP = _PREFIX + "key"
_SEAL_PROP = _PREFIX + "sha256"

_lock = threading.RLock()
_dir_override: Path | None = None
_limit = DEFAULT_LIMIT
_last_stamp = 0


# location and size -------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """`$WORKBENCH_CACHE_DIR/artifacts`, or platformdirs' user cache folder + `artifacts`."""
    override = os.environ.get("WORKBENCH_CACHE_DIR")
    if override:
        return Path(override) / "artifacts"
    import platformdirs

    return Path(platformdirs.user_cache_dir("workbench", appauthor=False)) / "artifacts"


def set_cache_dir(path: str | os.PathLike[str] | None) -> None:
    """Keep entries in `path` from now on; None goes back to `default_cache_dir()`."""
    global _dir_override
    with _lock:
        _dir_override = Path(path) if path is not None else None


def cache_dir() -> Path:
    """The folder entries are read from and written to."""
    with _lock:
        return _dir_override if _dir_override is not None else default_cache_dir()


def set_cache_limit(nbytes: int) -> None:
    """Cap the folder at `nbytes` (0 turns storing off) and evict down to it now."""
    global _limit
    with _lock:
        _limit = max(0, int(nbytes))
    evict()


def cache_limit() -> int:
    return _limit


# keys -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactKey:
    """Everything that decides the bytes of a derived artifact."""

    content: str  # Variant.content_hash
    format: str  # "onnx"
    opset: int
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]
    dynamic_batch: bool
    versions: tuple[tuple[str, str], ...]
    # settings of the step that derived the artifact (e.g. the nodes a pre-processing kept)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """The key as canonical JSON (stored inside the entry and checked on load)."""
        fields: dict[str, Any] = {
            "cache_format": CACHE_FORMAT, "content": self.content, "format": self.format,
            "opset": self.opset, "inputs": [list(i) for i in self.inputs],
            "dynamic_batch": self.dynamic_batch, "versions": dict(self.versions)}
        if self.options:  # absent otherwise, so export keys stay what they were
            fields["options"] = dict(self.options)
        return json.dumps(fields, sort_keys=True)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def artifact_key(variant: Any, fmt: str, opset: int, dynamic_batch: bool,
                 versions: dict[str, str]) -> ArtifactKey | None:
    """The key of `variant`'s `fmt` artifact, or None when it cannot be cached (an ONNX
    variant, or a model whose content cannot be hashed)."""
    content = variant.content_hash
    if content is None:
        return None
    inputs = tuple((s.name, tuple(s.shape), s.dtype) for s in variant.inputs)
    return ArtifactKey(content, fmt, opset, inputs, dynamic_batch,
                       tuple(sorted(versions.items())))


def derived_key(content: str, fmt: str, versions: dict[str, str],
                options: dict[str, str] | None = None, opset: int = 0) -> ArtifactKey:
    """The key of an artifact derived from bytes whose SHA-256 is `content` (a model's
    `onnx_digest`, say) by a step with these `versions` and `options`."""
    return ArtifactKey(content, fmt, opset, (), False, tuple(sorted(versions.items())),
                       tuple(sorted((options or {}).items())))


def onnx_digest(model: Any) -> str:
    """SHA-256 of an ONNX ModelProto's serialized bytes."""
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def variant_content_hash(variant: Any) -> str | None:
    """SHA-256 of a torch variant's module tree, plain module attributes, class source files,
    parameter and buffer bytes, and input specs; None for ONNX or when it cannot be hashed.
    Read it through `Variant.content_hash`, which computes it once."""
    if variant.backend != "torch":
        return None
    try:
        return _hash_torch(variant)
    except Exception as exc:  # a meta or otherwise unreadable tensor: just do not cache
        log.debug("cannot hash %s for the artifact cache: %s", variant.name, exc)
        return None


def _hash_torch(variant: Any) -> str:
    import torch

    h = hashlib.sha256(b"workbench-variant-1\0")

    def feed(*parts: object) -> None:
        h.update(repr(parts).encode("utf-8", "backslashreplace"))
        h.update(b"\0")

    for spec in variant.inputs:
        feed("input", spec.name, tuple(spec.shape), spec.dtype, spec.low, spec.high)
    model = variant.model
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} is not an nn.Module")
    files: set[str] = set()
    for name, module in model.named_modules(remove_duplicate=False):
        cls = type(module)
        code = getattr(module, "code", None)  # TorchScript and fx GraphModules
        feed("module", name, cls.__module__, cls.__qualname__, _plain_attrs(module),
             module.extra_repr(), code if isinstance(code, str) else None)
        files.update(_class_files(cls))
    for path in sorted(files):
        feed("source", path, _file_digest(path))
    tensors = [*model.named_parameters(remove_duplicate=False),
               *model.named_buffers(remove_duplicate=False)]
    for name, tensor in tensors:
        feed("tensor", name, str(tensor.dtype), tuple(tensor.shape))
        _feed_tensor(h, tensor)
    return h.hexdigest()


_SCALARS = (bool, int, float, str, bytes, type(None))


def _plain_attrs(module: Any) -> tuple[tuple[str, str], ...]:
    """Public attributes that may change what forward does: scalars (and tuples of them)
    by value, functions and classes by qualified name, anything else by type."""
    out = []
    for key, value in sorted(vars(module).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, _SCALARS) or (isinstance(value, (tuple, list)) and all(
                isinstance(v, _SCALARS) for v in value)):
            out.append((key, repr(value)))
        elif callable(value) and hasattr(value, "__qualname__"):
            out.append((key, f"{getattr(value, '__module__', '')}.{value.__qualname__}"))
        else:
            out.append((key, type(value).__qualname__))
    return tuple(out)


def _class_files(cls: type) -> list[str]:
    files = []
    for base in cls.__mro__:
        module = sys.modules.get(base.__module__)
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            files.append(path)
    return files


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: str) -> str:
    """SHA-256 of a source file (memoized by path, size and mtime); "" if unreadable."""
    try:
        st = os.stat(path)
        memo = (path, st.st_size, st.st_mtime_ns)
        if memo not in _FILE_DIGESTS:
            _FILE_DIGESTS[memo] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return _FILE_DIGESTS[memo]
    except OSError:
        return ""


def _feed_tensor(h: Any, tensor: Any) -> None:
    import torch

    t = tensor.detach()
    if t.is_sparse:
        t = t.to_dense()
    if t.is_quantized:
        if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            h.update(repr((t.q_scale(), t.q_zero_point())).encode())
        else:
            _feed_tensor(h, t.q_per_channel_scales())
            _feed_tensor(h, t.q_per_channel_zero_points())
        t = t.int_repr()
    t = t.cpu().contiguous().reshape(-1)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    h.update(memoryview(t.view(torch.uint8).numpy()))


# entries ----------------------------------------------------------------------------------
def entry_path(key: ArtifactKey) -> Path:
    return cache_dir() / f"{key.digest}{SUFFIX}"


def _seal(digest: str) -> bytes:
    """A serialized ModelProto holding only the checksum property (fixed length)."""
    import onnx

    tail = onnx.ModelProto()
    tail.metadata_props.add(key=_SEAL_PROP, value=digest)
    return tail.SerializeToString()


def load_onnx(key: ArtifactKey) -> tuple[Any, dict[str, str]] | None:
    """The cached model for `key` and the extra strings stored with it, or None on a miss.
    A damaged entry is deleted and counts as a miss."""
    import onnx

    path = entry_path(key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.debug("cannot read cache entry %s: %s", path, exc)
        return None
    try:
        size = len(_seal("0" * 64))
        body, tail = data[:-size], data[-size:]
        if len(data) <= size or tail != _seal(hashlib.sha256(body).hexdigest()):
            raise ValueError("its checksum does not match (truncated or damaged)")
        model = onnx.load_model_from_string(data)
        props = {p.key: p.value for p in model.metadata_props}
        if props.get(_KEY_PROP) != key.text:
            raise ValueError("it holds another key")
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
            raise ValueError("it refers to external data")
    except Exception as exc:
        log.debug("ignoring cache entry %s: %s", path, exc)
        _unlink(path)
        return None
    kept = [p for p in model.metadata_props if not p.key.startswith(_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    _touch(path)
    extra = {k.removeprefix(_PREFIX + "extra."): v for k, v in props.items()
             if k.startswith(_PREFIX + "extra.")}
    return model, extra


def store_onnx(key: ArtifactKey, model: Any, extra: dict[str, str] | None = None
               ) -> Path | None:
    """Write `model` (not changed) under `key`, then evict down to the cap; the entry's
    path, or None when it was not stored (too big, or the folder is not writable)."""
    import onnx

    from workbench.core.fileio import atomic_path

    path = entry_path(key)
    try:
        props = onnx.ModelProto()
        props.metadata_props.add(key=_KEY_PROP, value=key.text)
        for k, v in (extra or {}).items():
            props.metadata_props.add(key=f"{_PREFIX}extra.{k}", value=v)
        # Concatenated protobuf messages parse as one: the model, then our properties.
        body = model.SerializeToString() + props.SerializeToString()
        data = body + _seal(hashlib.sha256(body).hexdigest())
        if len(data) > _limit:
            log.debug("not caching %s: %d bytes is over the cap", path.name, len(data))
            return None
        with _lock, atomic_path(path) as tmp:
            tmp.write_bytes(data)
        _touch(path)
    except Exception as exc:  # a full or read-only disk: the export itself still stands
        log.debug("cannot write cache entry %s: %s", path, exc)
        return None
    evict(keep=path)
    return path


def evict(keep: Path | None = None) -> list[Path]:
    """Delete least recently used entries until the folder fits the cap; return them."""
    removed: list[Path] = []
    with _lock:
        folder, limit = cache_dir(), _limit
        try:
            entries = [(e.stat().st_mtime_ns, e.name, e.stat().st_size, Path(e.path))
                       for e in os.scandir(folder)
                       if e.name.endswith(SUFFIX) and e.is_file(follow_symlinks=False)]
        except OSError:
            return removed
        total = sum(e[2] for e in entries)
        for _, _, size, path in sorted(entries):
            if total <= limit:
                break
            if keep is not None and path == keep:
                continue
            if _unlink(path):
                removed.append(path)
                total -= size
    if removed:
        log.debug("evicted %d cache entries from %s", len(removed), folder)
    return removed


def clear_disk_cache() -> None:
    """Delete every entry in the current cache folder."""
    with _lock, contextlib.suppress(OSError):
        for e in os.scandir(cache_dir()):
            if e.name.endswith(SUFFIX):
                _unlink(Path(e.path))


def _touch(path: Path) -> None:
    """Mark `path` as just used (strictly later than any entry this process touched)."""
    global _last_stamp
    with _lock:
        _last_stamp = max(time.time_ns(), _last_stamp + 1000)
        stamp = _last_stamp
    with contextlib.suppress(OSError):
        os.utime(path, ns=(stamp, stamp))


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.debug("cannot delete cache entry %s: %s", path, exc)
        return False
