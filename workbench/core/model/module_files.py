"""A torch module changed in another process, brought back through files, not a pickle.

A pass that reshapes a model in place (structured pruning changes channel counts, and the
attributes that hold them) runs in a child process; the parent rebuilds the same starting
point (the pass's `skeleton`) and applies what the child wrote:

* ``module.json``: per module (by name) its class name, its plain attributes (numbers,
  strings, booleans, short tuples: ``out_channels``, ``num_heads``, ``training``) and which
  tensor each parameter, buffer or tensor attribute holds;
* ``tensors.safetensors``: every distinct tensor once (tied weights stay tied).

`read_module` refuses a skeleton whose modules differ (names or classes): only shapes and
plain attributes travel, never code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STRUCTURE = "module.json"
TENSORS = "tensors.safetensors"
_SCALARS = (bool, int, float, str, type(None))
_MAX_SEQ = 64


def write_module(model: Any, folder: Path) -> None:
    """Write `model`'s structure and tensors into `folder`."""
    import torch
    from safetensors.torch import save_file

    keys: dict[int, str] = {}
    tensors: dict[str, Any] = {}

    def store(t: Any) -> str:
        key = keys.get(id(t))
        if key is None:
            key = keys[id(t)] = f"t{len(keys)}"
            tensors[key] = t.detach().cpu().contiguous().clone()
        return key

    structure: dict[str, Any] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        attrs: dict[str, Any] = {}
        held: dict[str, Any] = {}
        for k, v in vars(m).items():
            if k in ("_parameters", "_buffers", "_modules"):
                continue
            if isinstance(v, torch.Tensor):
                held[k] = {"key": store(v)}
            elif _plain(v):
                attrs[k] = {"tuple": list(v)} if isinstance(v, tuple) else v
        params = {k: None if p is None else {"key": store(p), "grad": bool(p.requires_grad)}
                  for k, p in m._parameters.items()}
        buffers = {k: None if b is None else {"key": store(b)} for k, b in m._buffers.items()}
        structure[name] = {"type": type(m).__qualname__, "attrs": attrs, "params": params,
                           "buffers": buffers, "tensors": held}
    save_file(tensors, str(folder / TENSORS))
    (folder / STRUCTURE).write_text(json.dumps(structure), encoding="utf-8")


def read_module(skeleton: Any, folder: Path) -> Any:
    """`skeleton` (the model the child started from) changed as the child's files say."""
    import torch
    from safetensors.torch import load_file

    structure: dict[str, Any] = json.loads((folder / STRUCTURE).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / TENSORS))
    modules = dict(skeleton.named_modules(remove_duplicate=False))
    if set(modules) != set(structure):
        extra = sorted(set(structure) ^ set(modules))[:4]
        raise ValueError(f"the layers differ from the starting model's ({', '.join(extra)})")
    made: dict[str, Any] = {}
    for name, entry in structure.items():
        m = modules[name]
        if type(m).__qualname__ != entry["type"]:
            raise ValueError(f"layer {name!r} is a {entry['type']}, not a "
                             f"{type(m).__qualname__}")
        for k, v in entry["attrs"].items():
            m.__dict__[k] = tuple(v["tuple"]) if isinstance(v, dict) else v
        for k, spec in entry["tensors"].items():
            m.__dict__[k] = tensors[spec["key"]]
        for k, spec in entry["params"].items():
            if spec is None:
                m._parameters[k] = None
                continue
            if spec["key"] not in made:
                made[spec["key"]] = torch.nn.Parameter(tensors[spec["key"]],
                                                       requires_grad=spec["grad"])
            m._parameters[k] = made[spec["key"]]
        for k, spec in entry["buffers"].items():
            m._buffers[k] = None if spec is None else tensors[spec["key"]]
    return skeleton


def _plain(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, (tuple, list)) and len(value) <= _MAX_SEQ and all(
        isinstance(v, _SCALARS) for v in value)
