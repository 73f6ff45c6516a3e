"""Safe terminal output for the CLI: no control characters from files, strict JSON.

A model file can hold any text (an op type of `ESC]0;…` retitles a terminal and clears the
screen), so every line the CLI prints goes through a stream that escapes control
characters. JSON is strict: non-finite numbers, which strict parsers reject, become `null`
and a note says so.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from typing import Any, TextIO

from workbench.cli_json import Unsupported, indented_json

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SAFE_ASCII = b"\t\n" + bytes(range(0x20, 0x7f))


def printable(text: str) -> str:
    """`text` with control characters (all but newline and tab) shown as `\\xNN`."""
    if text.isascii() and not text.encode("ascii").translate(None, _SAFE_ASCII):
        return text  # the usual case (JSON text, for one), checked at C speed
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeStream:
    """A text stream wrapper that escapes control characters in everything written."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def install_safe_streams() -> None:
    """Wrap stdout and stderr (once); `raw_stderr()` keeps the original for progress bars."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, SafeStream):
            setattr(sys, name, SafeStream(stream))


def raw_stderr() -> TextIO:
    """The unwrapped stderr, for progress bars that redraw a line with a carriage return."""
    stream = sys.stderr
    return stream.stream if isinstance(stream, SafeStream) else stream


def strict_json(value: Any) -> tuple[Any, int]:
    """`value` with every non-finite float replaced by None, and how many were replaced."""
    count = 0

    def walk(v: Any) -> Any:
        nonlocal count
        if isinstance(v, float) and not math.isfinite(v):
            count += 1
            return None
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value), count


def dumps(value: Any) -> str:
    """Strict JSON text: non-finite numbers become null, with a `json_notes` entry."""
    try:  # the usual case, one encoding; NaN or Inf somewhere takes the cleaning path
        try:
            return indented_json(value)  # the same text, faster, for plain values
        except (Unsupported, RecursionError):
            return json.dumps(value, default=str, indent=2, allow_nan=False)
    except ValueError:
        pass
    clean, replaced = strict_json(json.loads(json.dumps(value, default=str)))
    if replaced and isinstance(clean, dict):
        clean.setdefault("json_notes", []).append(
            f"{replaced} non-finite number(s) (NaN or infinity) were written as null.")
    return json.dumps(clean, indent=2, allow_nan=False)


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value) + "\n")
