"""`--max-memory`: the memory ceiling of a command's heavy steps, for this run only."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.core.errors import InvalidParameterError


def add_memory_option(p: argparse.ArgumentParser) -> None:
    """`--max-memory SIZE` on a command that runs heavy steps."""
    p.add_argument("--max-memory", metavar="SIZE", type=_memory_size,
                   help="memory ceiling of the heavy steps (structured pruning, export), "
                        "e.g. 10G, 512M or 60%%; default: Settings, else 60%% of the "
                        "machine's memory")


def _memory_size(text: str) -> int:
    from workbench.core.memory_budget import parse_memory

    try:
        return parse_memory(text)
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def set_max_memory(session: Any, args: argparse.Namespace) -> None:
    """`--max-memory` for this command only (the saved setting is left alone)."""
    if getattr(args, "max_memory", None):
        session.settings.max_memory_bytes = args.max_memory
