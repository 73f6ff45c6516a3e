"""Constructor arguments of an architecture: `--arch-kwargs '{"aux_logits": false}'` or the
inline form `torchvision.models:googlenet?aux_logits=false&num_classes=10`.

Only plain values (strings, numbers, booleans, null) are accepted, in bounded number and
size, so a recipe or a project can record and replay them as JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from workbench.core.errors import InvalidParameterError

MAX_ARCH_KWARGS = 32
MAX_KEY_CHARS = 100
MAX_TEXT_CHARS = 1000
MAX_JSON_CHARS = 10_000

__all__ = ["MAX_ARCH_KWARGS", "MAX_KEY_CHARS", "MAX_TEXT_CHARS", "check_arch_kwargs",
           "merge_arch_kwargs", "parse_arch", "parse_arch_kwargs"]


def check_arch_kwargs(value: Any, where: str = "arch kwargs") -> dict[str, Any]:
    """`value` as a dict of plain keyword arguments, or InvalidParameterError naming why not."""
    if not isinstance(value, dict):
        raise InvalidParameterError(f"{where} must be an object of name: value pairs, such as "
                                    '{"aux_logits": false}.')
    if len(value) > MAX_ARCH_KWARGS:
        raise InvalidParameterError(f"{where} holds {len(value)} arguments; at most "
                                    f"{MAX_ARCH_KWARGS} are allowed.")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.isidentifier() or len(key) > MAX_KEY_CHARS:
            raise InvalidParameterError(f"{where}: {str(key)[:40]!r} is not an argument name "
                                        "(letters, digits and underscores).")
        if isinstance(item, str):
            if len(item) > MAX_TEXT_CHARS:
                raise InvalidParameterError(f"{where}: the value of {key} is longer than "
                                            f"{MAX_TEXT_CHARS} characters.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidParameterError(f"{where}: the value of {key} is not a finite "
                                            "number.")
        elif item is not None and not isinstance(item, (bool, int)):
            raise InvalidParameterError(f"{where}: the value of {key} must be a string, a "
                                        "number, true, false or null, not a "
                                        f"{_json_kind(item)}.")
        out[key] = item
    return out


def parse_arch_kwargs(text: str) -> dict[str, Any]:
    """The `--arch-kwargs` JSON object, checked."""
    if len(text) > MAX_JSON_CHARS:
        raise InvalidParameterError(f"--arch-kwargs is longer than {MAX_JSON_CHARS} "
                                    "characters.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameterError(f"--arch-kwargs is not JSON ({str(exc).splitlines()[0]}); "
                                    'write an object such as {"aux_logits": false}.') from None
    return check_arch_kwargs(value, "--arch-kwargs")


def parse_arch(arch: str) -> tuple[str, dict[str, Any]]:
    """Split `name?k=v&k2=v2` into the name and its arguments (values read as JSON scalars:
    true, false, null and numbers; anything else is a string)."""
    name, sep, query = arch.partition("?")
    name = name.strip()
    if not sep:
        return name, {}
    if not name:
        raise InvalidParameterError(f"'{arch[:80]}' names no architecture before '?'.")
    kwargs: dict[str, Any] = {}
    for part in query.split("&") if query else []:
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidParameterError(f"'{part[:80]}' in {name}?... is not key=value.")
        if key in kwargs:
            raise InvalidParameterError(f"{key} is given twice in {name}?....")
        kwargs[key] = _scalar(raw.strip())
    return name, check_arch_kwargs(kwargs, name)


def merge_arch_kwargs(inline: dict[str, Any], explicit: dict[str, Any] | None,
                      name: str) -> dict[str, Any]:
    """The inline arguments and `--arch-kwargs` together; one key given both ways must agree."""
    explicit = check_arch_kwargs(explicit or {}, "arch_kwargs")
    for key, value in explicit.items():
        if key in inline and inline[key] != value:
            raise InvalidParameterError(f"{key} is given twice for {name} ({inline[key]!r} "
                                        f"inline, {value!r} in arch kwargs).")
    return check_arch_kwargs({**inline, **explicit}, name)


def _scalar(text: str) -> Any:
    if text in ("true", "false", "null"):
        return json.loads(text)
    try:
        number = json.loads(text)
    except ValueError:
        return text
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return number
    return text


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__
