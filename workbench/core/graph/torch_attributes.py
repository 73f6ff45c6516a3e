"""Name the literal arguments of a captured torch op, as Netron names ONNX attributes.

An exported `aten.conv2d` call records its arguments by position (`x, w, b, [2, 2], [1, 1]`);
the op's schema (`torch.ops.aten.conv2d.default._schema`) names them `stride`, `padding`, ...
A plain Python callable (torch.fx) is named from its signature; a module call (torch.fx
`call_module`) shows the module's declared constants (`__constants__`: kernel size, stride, ...).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["argument_names", "literal_attributes", "module_attributes"]


def argument_names(target: Any) -> list[str]:
    """Positional argument names of a torch op or Python callable; [] when unknown."""
    schema = getattr(target, "_schema", None)
    if schema is not None:
        return [a.name for a in schema.arguments if not getattr(a, "kwarg_only", False)]
    signature: inspect.Signature | None
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a C builtin such as torch.flatten: ask torch.fx
        signature = _torch_signature(target)
    if signature is None:
        return []
    return [p.name for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _torch_signature(target: Any) -> inspect.Signature | None:
    """The first signature torch.fx knows for a torch builtin (overloads share their names)."""
    try:
        from torch.fx.operator_schemas import get_signature_for_torch_op

        signatures = get_signature_for_torch_op(target)
    except Exception:
        log.debug("no torch signature for %r", target, exc_info=True)
        return None
    return signatures[0] if signatures else None


def _literal(value: Any) -> Any | None:
    """`value` as shown in the Inspector if it is a plain literal (not a tensor), else None."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(
            isinstance(x, (bool, int, float)) for x in value):
        return list(value)
    return None


def literal_attributes(target: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The literal (non-tensor) arguments of a call, named from `target`'s schema.

    An argument past the known names keeps a positional name (`arg5`).
    """
    names = argument_names(target)
    attrs: dict[str, Any] = {}
    for i, a in enumerate(args):
        value = _literal(a)
        if value is not None:
            attrs[names[i] if i < len(names) else f"arg{i}"] = value
    for k, a in kwargs.items():
        value = _literal(a)
        if value is not None:
            attrs[k] = value
    return attrs


def module_attributes(module: Any) -> dict[str, Any]:
    """A module's declared constants (`nn.Conv2d.__constants__`: stride, padding, ...)."""
    attrs: dict[str, Any] = {}
    for name in getattr(type(module), "__constants__", ()) or ():
        value = _literal(getattr(module, name, None))
        if value is not None:
            attrs[name] = value
    return dict(sorted(attrs.items()))
