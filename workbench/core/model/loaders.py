"""Load a model from a file or the zoo into a `Variant`.

Nothing is unpickled unless the caller opts in with `trust=True`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import weakref
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import (
    ArchitectureMismatchError,
    ArchitectureRequiredError,
    CorruptModelError,
    InvalidParameterError,
    ModelNotFoundError,
    TrustRequiredError,
    UnsupportedFormatError,
    WorkbenchError,
    first_line,
)
from workbench.core.model.arch_spec import check_arch_kwargs, merge_arch_kwargs, parse_arch
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import ZOO, build_zoo

log = logging.getLogger(__name__)

ARCHITECTURE_GROUP = "workbench.architectures"
PROTOBUF_LIMIT = 2**31
DEFAULT_MAX_MODEL_MB = 8192.0
MAX_LISTED_KEYS = 50
# The first byte of a serialized ModelProto is the tag of one of its fields (ir_version,
# producer, domain, model_version, doc_string, graph, opset_import, metadata, ...).
ONNX_FIRST_TAGS = frozenset({0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2,
                             0xCA, 0xD2})
ONNX_EXTENSIONS = (".onnx",)
TORCH_EXTENSIONS = (".pt2", ".pt", ".pth", ".ts", ".bin", ".safetensors")
SUPPORTED_EXTENSIONS = ONNX_EXTENSIONS + TORCH_EXTENSIONS
FILE_FILTER = (
    "Models (*.onnx *.pt2 *.pt *.pth *.ts *.safetensors);;ONNX (*.onnx);;"
    "PyTorch export (*.pt2);;TorchScript (*.pt *.ts);;State dict (*.pt *.pth *.safetensors);;"
    "All files (*)"
)


def load_model(
    source: str,
    *,
    arch: str | None = None,
    trust: bool = False,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    strict: bool = True,
) -> Variant:
    """Load `source` (a path or `zoo:NAME`) as a variant.

    `arch` names the architecture a state dict is joined to: a zoo name, a registered name,
    or `package.module:Name` (a class or a function returning a module), optionally with
    inline constructor arguments `?key=value&...`; `arch_kwargs` adds more. `strict=False`
    loads the tensors that match by name and shape and lists the rest in the variant's
    metadata "load_warnings". `trust` allows a full pickle, or an import path, to be loaded.
    """
    kwargs: dict[str, Any] = {}
    if arch:
        arch, inline = parse_arch(arch)
        kwargs = merge_arch_kwargs(inline, arch_kwargs, arch)
    elif arch_kwargs:
        check_arch_kwargs(arch_kwargs)
    spec = _ArchSpec(arch or None, kwargs, bool(strict))
    variant = _load(source, spec, trust, input_shape, num_classes)
    options = {"arch": spec.name, "trust": trust, "input_shape": input_shape,
               "num_classes": num_classes, "arch_kwargs": kwargs or None}
    recorded = {k: v for k, v in options.items() if v not in (None, False)}
    if not strict:
        recorded["strict"] = False
    variant.metadata["load_options"] = recorded
    return variant


@dataclass(frozen=True)
class _ArchSpec:
    """How a state dict is joined: the architecture's name, its arguments, strictness."""

    name: str | None
    kwargs: dict[str, Any]
    strict: bool = True


def _load(source: str, arch: _ArchSpec, trust: bool, input_shape: tuple[int, ...] | None,
          num_classes: int | None) -> Variant:
    if source.startswith("zoo:"):
        return build_zoo(source, input_shape, num_classes)
    path = Path(source).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ModelNotFoundError(f"Cannot open {_short(str(path))}: "
                                 f"{exc.strerror or first_line(exc)}.") from exc
    if not exists:
        raise ModelNotFoundError(f"No such file: {_short(str(path))}")
    if path.is_dir():
        raise UnsupportedFormatError(f"{path} is a folder, not a model file.")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFormatError(
            f"Unknown model format '{ext or path.name}'. Workbench opens "
            f"{', '.join(SUPPORTED_EXTENSIONS)} files.")
    if path.stat().st_size == 0:
        raise CorruptModelError(f"{path.name} is empty.")
    if ext == ".onnx":
        return _load_onnx(path)
    if ext == ".pt2":
        return _load_exported(path, trust)
    if ext == ".safetensors":
        return _join_state_dict(path, _read_safetensors(path), arch, input_shape, num_classes,
                                trust)
    if _is_torchscript(path):
        return _load_torchscript(path, input_shape)
    return _load_pickle(path, arch, trust, input_shape, num_classes)


def max_model_bytes() -> int:
    """The largest model (with its external data) Workbench reads: `$WORKBENCH_MAX_MODEL_MB`,
    or 8 GB."""
    text = os.environ.get("WORKBENCH_MAX_MODEL_MB", "")
    try:
        mb = float(text) if text else DEFAULT_MAX_MODEL_MB
    except ValueError:
        mb = DEFAULT_MAX_MODEL_MB
    return int(mb * 1024 * 1024) if mb > 0 else int(DEFAULT_MAX_MODEL_MB * 1024 * 1024)


def _check_onnx_file(path: Path) -> None:
    """Refuse, before parsing, a file that cannot be an ONNX model or is too big to read."""
    size = path.stat().st_size
    if size >= PROTOBUF_LIMIT:
        raise CorruptModelError(
            f"{path.name} is {size / 2**30:.1f} GB; ONNX files over 2 GB must keep their "
            "weights as external data (a protobuf cannot exceed 2 GB).")
    limit = max_model_bytes()
    if size > limit:
        raise CorruptModelError(
            f"{path.name} is {size / 2**20:,.0f} MB, over the {limit / 2**20:,.0f} MB limit "
            "(raise it with WORKBENCH_MAX_MODEL_MB).")
    with path.open("rb") as f:
        head = f.read(2)
    if not head or head[0] not in ONNX_FIRST_TAGS:
        raise CorruptModelError(f"{path.name} is not an ONNX file (it does not start like "
                                "an ONNX model).")


def _load_onnx(path: Path) -> Variant:
    import onnx
    from google.protobuf.message import DecodeError

    _check_onnx_file(path)
    try:
        model = _read_onnx(path)
    except DecodeError as exc:
        raise CorruptModelError(f"{path.name} is not a valid ONNX file (corrupt or truncated)."
                                ) from exc
    except FileNotFoundError as exc:
        raise CorruptModelError(
            f"{path.name} refers to an external data file that is missing: "
            f"{Path(str(exc.filename or exc)).name}.") from exc
    except Exception as exc:  # onnx raises many types for bad files
        if "should be stored in" in str(exc) or "external" in str(exc).lower():
            raise CorruptModelError(
                f"{path.name} refers to external data that is missing or unreadable: "
                f"{first_line(exc)}") from exc
        raise CorruptModelError(f"{path.name} could not be read as ONNX: {first_line(exc)}"
                                ) from exc
    if not model.graph.node:
        raise CorruptModelError(f"{path.name} holds no ONNX graph (corrupt or not ONNX).")
    _check_names_are_text(path, model)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise CorruptModelError(f"{path.name} is not a valid ONNX model: {first_line(exc)}"
                                ) from exc
    return Variant(name=path.stem, backend="onnx", model=model, format="onnx",
                   inputs=onnx_input_specs(model), source=str(path))


def _read_onnx(path: Path) -> Any:
    """`onnx.load(path, load_external_data=True)`, without its walk over every tensor of the
    graph (node attributes included) when the file names no external data file: only an
    external tensor has a "location" entry."""
    import onnx

    if path.suffix != ".onnx":  # onnx picks a text format by other suffixes
        return onnx.load(str(path), load_external_data=True)
    data = path.read_bytes()
    model = onnx.load_model_from_string(data)
    if b"location" in data or any(i.data_location == onnx.TensorProto.EXTERNAL
                                  for i in model.graph.initializer):
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    return model


def _check_names_are_text(path: Path, model: Any) -> None:
    """Refuse names that are not UTF-8: protobuf hands them over as bytes (ONNX forbids them)."""
    graph = model.graph
    values = (*graph.input, *graph.output, *graph.value_info)
    names = [*(i.name for i in graph.initializer), *(v.name for v in values)]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
    if bytes in set(map(type, names)):
        raise CorruptModelError(f"{path.name} holds names that are not valid UTF-8 text "
                                "(corrupt, or not written by an ONNX tool).")


def onnx_input_specs(model: Any) -> tuple[InputSpec, ...]:
    """Input specs of an ONNX graph's real inputs (initializers excluded, free dims set to 1)."""
    from onnx import helper

    inits = {i.name for i in model.graph.initializer}
    specs = []
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        t = inp.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                     for d in t.shape.dim)
        np_dtype = helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else None
        dtype = str(np_dtype) if np_dtype is not None else "float32"
        specs.append(InputSpec(inp.name, dims, dtype))
    return tuple(specs)


def _load_exported(path: Path, trust: bool) -> Variant:
    from workbench.core.model.pt2_safety import load_exported_program

    program = load_exported_program(path, trust)  # TrustRequiredError or CorruptModelError
    specs = []
    args = program.example_inputs[0] if program.example_inputs else ()
    user_inputs = set(program.graph_signature.user_inputs)
    declared = [node.meta.get("val") for node in program.graph.nodes
                if node.op == "placeholder" and node.name in user_inputs]
    if args:
        for i, a in enumerate(args):
            val = declared[i] if i < len(declared) else None
            fixed_batch = val is not None and val.ndim and isinstance(val.shape[0], int)
            # a dynamic batch is declared as 1; a fixed one must stay what the program takes
            shape = (1, *a.shape[1:]) if a.ndim and not fixed_batch else tuple(a.shape)
            specs.append(InputSpec(f"input{i}", shape, str(a.dtype).removeprefix("torch.")))
    else:
        for node in program.graph.nodes:
            if node.op == "placeholder" and node.name in user_inputs:
                val = node.meta.get("val")
                if val is not None:
                    shape = tuple(int(d) if isinstance(d, int) else 1 for d in val.shape)
                    specs.append(InputSpec(node.name, shape, str(val.dtype).removeprefix(
                        "torch.")))
    try:
        module = program.module()
    except Exception as exc:
        raise CorruptModelError(f"{path.name} holds a program that cannot be rebuilt: "
                                f"{first_line(exc)}") from exc
    _PROGRAMS[module] = program
    return Variant(name=path.stem, backend="torch", model=module, format="pt2",
                   inputs=tuple(specs), source=str(path))


# The exported program behind each module rebuilt from a `.pt2`. Weak keys: a pass works on a
# copy (a new object, so never paired with a stale program), and a dropped variant frees it.
_PROGRAMS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def exported_program_of(model: Any) -> Any:
    """The `torch.export` program a `.pt2` variant's module was rebuilt from, if any.

    Such a module cannot switch to eval mode or be exported again; its program can."""
    try:
        return _PROGRAMS.get(model)
    except TypeError:  # not weak-referenceable
        return None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def _load_torchscript(path: Path, input_shape: tuple[int, ...] | None) -> Variant:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise CorruptModelError(f"{path.name} is not a readable TorchScript file: "
                                f"{first_line(exc)}") from exc
    module.eval()
    specs = (InputSpec("input", tuple(input_shape)),) if input_shape else ()
    return Variant(name=path.stem, backend="torch", model=module, format="torchscript",
                   inputs=specs, source=str(path))


def _load_pickle(path: Path, arch: _ArchSpec, trust: bool,
                 input_shape: tuple[int, ...] | None, num_classes: int | None) -> Variant:
    import pickle

    import torch

    if not _pickle_or_torch_zip(path):
        raise CorruptModelError(
            f"{path.name} is not a PyTorch file: it is neither a torch.save archive nor a "
            "pickle (corrupt, or another format).")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust:
            raise TrustRequiredError(
                f"{path.name} is a full Python pickle, which can run arbitrary code when "
                "opened. Open it only if you trust its author (--trust in the CLI).") from exc
        obj = _load_trusted(path)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError,
            zipfile.BadZipFile) as exc:
        raise CorruptModelError(f"{path.name} is not a readable PyTorch file: "
                                f"{first_line(exc)}") from exc
    if isinstance(obj, torch.nn.Module):
        return _module_variant(obj, path, "pickle", input_shape)
    state = _extract_state_dict(obj)
    if state is None:
        raise UnsupportedFormatError(
            f"{path.name} holds a {type(obj).__name__}, not a model or a state dict.")
    return _join_state_dict(path, state, arch, input_shape, num_classes, trust)


def _pickle_or_torch_zip(path: Path) -> bool:
    """Whether the file starts like `torch.save` output: a zip, or a pickle (protocol 2+)."""
    with path.open("rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80
                                                and 2 <= head[1] <= 5)


def _load_trusted(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CorruptModelError(f"{path.name} could not be unpickled: {first_line(exc)}"
                                ) from exc


def _module_variant(module: Any, path: Path, fmt: str,
                    input_shape: tuple[int, ...] | None) -> Variant:
    module.eval()
    specs = (InputSpec("input", tuple(input_shape)),) if input_shape else ()
    return Variant(name=path.stem, backend="torch", model=module, format=fmt, inputs=specs,
                   source=str(path))


def _extract_state_dict(obj: Any) -> dict[str, Any] | None:
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    return None


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise CorruptModelError(f"{path.name} is not a readable safetensors file: "
                                f"{first_line(exc)}") from exc


def _join_state_dict(path: Path, state: dict[str, Any], arch: _ArchSpec,
                     input_shape: tuple[int, ...] | None, num_classes: int | None,
                     trust: bool = False) -> Variant:
    if not arch.name:
        raise ArchitectureRequiredError(
            f"{path.name} is a state dict (weights only). Name its architecture: a zoo model "
            f"({', '.join(k for k in ZOO if k != 'minilm')}) or package.module:Name, with "
            "constructor arguments as ?key=value&... if it needs them (--arch in the CLI).")
    base = build_architecture(arch.name, input_shape, num_classes, trust, arch.kwargs)
    module = base.model
    fit = _fit_state(module, state)
    label = arch.name + (f" {json.dumps(arch.kwargs)}" if arch.kwargs else "")
    warnings: list[str] = []
    if arch.strict and fit.misfit:
        raise ArchitectureMismatchError(
            f"{path.name} does not fit {label}: {fit.summary()} Load what matches with "
            "--strict false (strict=False), or pass constructor arguments with --arch-kwargs "
            f"or {arch.name}?key=value.")
    if arch.strict:
        error = _load_strictly(module, state)
        if error:
            raise ArchitectureMismatchError(f"{path.name} does not fit {label}: {error}")
    else:
        if not fit.matched:
            raise ArchitectureMismatchError(
                f"{path.name} does not fit {label}: none of its {len(state)} tensors matches "
                f"the model by name and shape ({fit.summary()})")
        module.load_state_dict({k: state[k] for k in fit.matched}, strict=False)
        warnings = fit.warnings()
        for w in warnings:
            log.info("%s: %s", path.name, w)
    fmt = "safetensors" if path.suffix.lower() == ".safetensors" else "state_dict"
    metadata = {**base.metadata, "architecture": arch.name}
    if arch.kwargs:
        metadata["arch_kwargs"] = dict(arch.kwargs)
    if warnings:
        metadata["load_warnings"] = warnings
    return Variant(name=path.stem, backend="torch", model=module.eval(), format=fmt,
                   inputs=base.inputs, source=str(path), metadata=metadata)


def build_architecture(arch: str, input_shape: tuple[int, ...] | None = None,
                       num_classes: int | None = None, trust: bool = False,
                       kwargs: dict[str, Any] | None = None) -> Variant:
    """An untrained model of architecture `arch`, to join a state dict to.

    `arch` is a zoo name, a name registered under the `workbench.architectures` entry-point
    group, or `package.module:Name`. Importing a module runs its code, so the last needs
    `trust` (never read from a file). It names an `nn.Module` subclass or a function that
    returns a module (torchvision's builders), called with `kwargs`.
    """
    kwargs = check_arch_kwargs(kwargs or {})
    name = arch.removeprefix("zoo:")
    if name in ZOO:
        if kwargs:
            raise InvalidParameterError(
                f"The zoo model {name} takes no constructor arguments (use --num-classes or "
                "--input-shape).")
        return build_zoo(name, input_shape, num_classes, trained=False)  # the file's weights
    registered = registered_architectures()
    if name in registered:
        try:
            cls = registered[name].load()
        except Exception as exc:
            raise ModelNotFoundError(f"The registered architecture '{name}' failed to import: "
                                     f"{first_line(exc)}") from exc
    elif ":" in arch:
        if not trust:
            raise TrustRequiredError(
                f"The architecture '{arch}' is named by an import path: importing it runs that "
                "module's code. Use a zoo or registered architecture, or pass --trust if you "
                "trust the module.")
        cls = _import_class(arch)
    else:
        known = [k for k in ZOO if k != "minilm"] + sorted(registered)
        raise ModelNotFoundError(f"Unknown architecture '{arch}': use one of "
                                 f"{', '.join(known)}, or package.module:ClassName.")
    import torch

    is_class = isinstance(cls, type)
    if (is_class and not issubclass(cls, torch.nn.Module)) or not callable(cls):
        raise ArchitectureMismatchError(
            f"'{arch}' is not a model class (an nn.Module subclass) or a function that "
            "returns a model.")
    given = "with " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) if kwargs else (
        "without arguments")
    try:
        module = cls(**kwargs)
    except TypeError as exc:
        raise ArchitectureMismatchError(
            f"{arch} cannot be built {given}: {first_line(exc)}") from exc
    except Exception as exc:
        raise ArchitectureMismatchError(f"{arch} failed to build {given}: {first_line(exc)}"
                                        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ArchitectureMismatchError(
            f"{arch} returned a {type(module).__name__}, not a model (an nn.Module).")
    specs = (InputSpec("input", tuple(input_shape)),) if input_shape else ()
    return Variant(name=getattr(cls, "__name__", name), backend="torch", model=module,
                   format="state_dict", inputs=specs, source=arch)


def registered_architectures() -> dict[str, Any]:
    """Architectures that installed packages register under `workbench.architectures`."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ARCHITECTURE_GROUP)}


def _import_class(arch: str) -> Any:
    mod_name, _, cls_name = arch.partition(":")
    if not mod_name or not cls_name.isidentifier():
        raise ModelNotFoundError(f"'{arch}' is not package.module:Name.")
    try:
        from workbench.core.model.torchvision_shim import prepare_torchvision

        # torchvision's CUDA wheel beside the CPU torch needs a hand, and model packages
        # (timm, transformers) import it
        prepare_torchvision()
        return getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelNotFoundError(f"Cannot import architecture '{arch}': {first_line(exc)}"
                                 ) from exc


@dataclass(frozen=True)
class _Fit:
    """How a state dict's keys meet a module's: matched, missing, unexpected, wrong shape."""

    matched: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    wrong_shape: tuple[str, ...]  # "key (checkpoint shape) vs (model shape)"

    @property
    def misfit(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    def summary(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing key(s) ({_few(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected key(s) "
                         f"({_few(self.unexpected)})")
        if self.wrong_shape:
            parts.append(f"{len(self.wrong_shape)} shape mismatch(es) "
                         f"({_few(self.wrong_shape)})")
        return "; ".join(parts) + "."

    def warnings(self) -> list[str]:
        """One line per kind of misfit, naming every key (up to a bound)."""
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} model tensor(s) not in the checkpoint kept their "
                       f"initial values: {_few(self.missing, MAX_LISTED_KEYS)}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} checkpoint tensor(s) not in the model were "
                       f"ignored: {_few(self.unexpected, MAX_LISTED_KEYS)}")
        if self.wrong_shape:
            out.append(f"{len(self.wrong_shape)} checkpoint tensor(s) of the wrong shape were "
                       f"ignored: {_few(self.wrong_shape, MAX_LISTED_KEYS)}")
        return out


def _fit_state(module: Any, state: dict[str, Any]) -> _Fit:
    own = module.state_dict()
    wrong = tuple(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    return _Fit(
        matched=tuple(k for k in own if k in state
                      and tuple(state[k].shape) == tuple(own[k].shape)),
        missing=tuple(k for k in own if k not in state),
        unexpected=tuple(k for k in state if k not in own),
        wrong_shape=wrong)


def _load_strictly(module: Any, state: dict[str, Any]) -> str:
    """Load `state` strictly; return '' on success or the first line of torch's complaint."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        return first_line(exc)
    return ""


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit // 2] + "…" + text[-limit // 2:]


def _few(items: Sequence[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", …" if len(items) > n else "")



__all__ = ["FILE_FILTER", "SUPPORTED_EXTENSIONS", "WorkbenchError", "load_model",
           "onnx_input_specs"]
